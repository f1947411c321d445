"""Worker registration on the wire: TEE kinds, the report data a quote binds, the request fields.
Shared by the core (which builds them), gatekeepers and the SDK (which check them)."""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from veilnet.codec import Record, abi_encode, encode, record
from veilnet.crypto import keccak
from veilnet.protocol.hosts import normalize_host

MAX_API_URL: Final = 256
"""Longest API address a worker registers with (``Registry.MAX_API_URL``)."""


def check_api_url(url: str) -> str:
    """``url`` if it can be a worker's public API address: empty (the worker serves no queries)
    or an ``http``/``https`` URL with a host, printable ASCII, at most ``MAX_API_URL`` bytes,
    without credentials, query or fragment. Raises ``ValueError`` naming what is wrong.

    The chain keeps whatever a worker registers and clients dial it, so the core refuses to
    sign an address that no client could use rather than publish it."""
    if not url:
        return url
    if len(url) > MAX_API_URL or not url.isascii() or not url.isprintable() or " " in url:
        raise ValueError(f"an API URL is printable ASCII of at most {MAX_API_URL} bytes")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError("an API URL starts with http:// or https://")
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:  # a port out of range or not a number
        raise ValueError(f"an API URL needs a valid port: {exc}") from None
    if host is None or normalize_host(host) is None or port == 0:
        raise ValueError("an API URL names a DNS host or an IP address")
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        raise ValueError("an API URL has no credentials, query or fragment")
    return url


class TEEKind(enum.IntEnum):
    """The ``tee_kind`` of ``Registry.register_worker``. Unknown values are refused, never
    read as ``DEV``: ``TEEKind(7)`` raises ``ValueError`` and ``TEEKind.parse`` a ``ValueError``
    naming the choices."""

    DEV = 0
    TDX = 1
    SGX = 2

    @classmethod
    def parse(cls, value: str | int) -> TEEKind:
        """``"tdx"`` / ``1`` → ``TEEKind.TDX``; anything else raises ``ValueError``."""
        if isinstance(value, str):
            try:
                return cls[value.upper()]
            except KeyError:
                raise ValueError(
                    f"unknown TEE kind {value!r} (expected one of dev, tdx, sgx)"
                ) from None
        return cls(value)

    @property
    def label(self) -> str:
        return self.name.lower()


def registration_report_data(
    *,
    worker: bytes,
    operator: bytes,
    hpke_key: bytes,
    chain_id: int,
    registry: bytes,
    config_digest: bytes,
    attested_hash: bytes,
) -> bytes:
    """64 bytes of report_data binding a quote to one registration (and nothing else): the
    identity, operator and HPKE key, the network, and the network digest of the configuration
    the enclave was built from (``EnclaveConfig.network_digest``); then the hash of a recent
    block (the core's head when it made the quote), which the Registry requires to be one of
    its last 256: a quote is fresh, never one kept from long ago."""
    digest = hashlib.sha256(
        encode(["veil/v1/register", worker, operator, hpke_key, chain_id, registry, config_digest])
    ).digest()
    return digest + attested_hash


def attestation_report_data(*, worker: bytes, nonce: bytes, config_digest: bytes) -> bytes:
    """64 bytes of report_data of a live attestation (``/v1/attestation``): the worker's address
    (32-byte padded), then a hash of the client's nonce and the network digest of the enclave's
    configuration, so a client also learns that the worker runs the network's configuration."""
    bound = hashlib.sha256(encode(["veil/v1/attest", nonce, config_digest])).digest()
    return worker.rjust(32, b"\x00") + bound


@record("registration.request")
@dataclass(frozen=True, slots=True, kw_only=True)
class RegistrationRequest(Record):
    """What the host needs to register this worker on chain (``Registry.register_worker``).

    ``tee_kind`` must be a ``TEEKind`` value; an unknown one is refused when the record is made.
    """

    worker: bytes
    operator: bytes
    hpke_key: bytes
    tee_kind: int
    measurement: bytes
    quote: bytes
    collateral: bytes
    collateral_hash: bytes
    attested_block: int
    """The block whose hash the quote's report data binds (the core's head, or its trust
    anchor before its first block); the Registry takes it only within its last 256 blocks."""
    api_url: str = ""
    """Where the worker serves its API (``WorkerRegistered.api_url``; empty: nowhere), so that
    clients find it from the chain. Discovery only: every answer still proves itself."""

    def __post_init__(self) -> None:
        TEEKind(self.tee_kind)  # raises ValueError for a kind that does not exist
        check_api_url(self.api_url)


REGISTER_WORKER_SIGNATURE: Final = (
    "register_worker(address,bytes,uint8,bytes32,bytes,bytes32,uint256,string)"
)
REATTEST_WORKER_SIGNATURE: Final = "reattest_worker(bytes,bytes32,uint256)"


def register_worker_calldata(request: RegistrationRequest) -> bytes:
    """The calldata of ``Registry.register_worker`` for ``request`` (the only transaction a
    worker identity ever signs; built in the enclave core)."""
    selector = keccak(REGISTER_WORKER_SIGNATURE.encode())[:4]
    return selector + abi_encode(
        ["address", "bytes", "uint8", "bytes32", "bytes", "bytes32", "uint256", "string"],
        [
            "0x" + request.operator.hex(),
            request.hpke_key,
            request.tee_kind,
            request.measurement,
            request.quote,
            request.collateral_hash,
            request.attested_block,
            request.api_url,
        ],
    )


def reattest_worker_calldata(request: RegistrationRequest) -> bytes:
    """The calldata of ``Registry.reattest_worker``: the fresh quote and collateral hash of
    ``request`` (the same registration; the only other transaction the identity signs)."""
    selector = keccak(REATTEST_WORKER_SIGNATURE.encode())[:4]
    return selector + abi_encode(
        ["bytes", "bytes32", "uint256"],
        [request.quote, request.collateral_hash, request.attested_block],
    )
