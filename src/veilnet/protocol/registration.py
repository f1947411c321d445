"""Worker registration on the wire: TEE kinds, the report data a quote binds, the request fields.
Shared by the core (which builds them), gatekeepers and the SDK (which check them)."""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from typing import Final

from eth_hash.auto import keccak

from veilnet.codec import Record, abi_encode, encode, record


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

    def __post_init__(self) -> None:
        TEEKind(self.tee_kind)  # raises ValueError for a kind that does not exist


REGISTER_WORKER_SIGNATURE: Final = (
    "register_worker(address,bytes,uint8,bytes32,bytes,bytes32,uint256)"
)
REATTEST_WORKER_SIGNATURE: Final = "reattest_worker(bytes,bytes32,uint256)"


def register_worker_calldata(request: RegistrationRequest) -> bytes:
    """The calldata of ``Registry.register_worker`` for ``request`` (the only transaction a
    worker identity ever signs; built in the enclave core)."""
    selector = keccak(REGISTER_WORKER_SIGNATURE.encode())[:4]
    return selector + abi_encode(
        ["address", "bytes", "uint8", "bytes32", "bytes", "bytes32", "uint256"],
        [
            "0x" + request.operator.hex(),
            request.hpke_key,
            request.tee_kind,
            request.measurement,
            request.quote,
            request.collateral_hash,
            request.attested_block,
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
