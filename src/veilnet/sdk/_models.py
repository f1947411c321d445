"""Value types of the SDK: the network description, wallets, Registry records, verified results.
``NetworkConfig`` reads ``network.json``; results carry the block and worker that vouch for them."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Self

from eth_account import Account
from eth_account.messages import encode_defunct

from veilnet.crypto import Address, TransactionSigner
from veilnet.errors import VeilnetError
from veilnet.sdk.constants import (
    DEFAULT_COMMITMENT_INTERVAL,
    DEFAULT_FINALITY,
    DEFAULT_NETWORK_FILE,
    MAX_NETWORK_FILE,
    NETWORK_ENV,
)
from veilnet.sdk.errors import ChainUnavailable, NetworkConfigInvalid

__all__ = [
    "AuditEntry",
    "ClusterRecord",
    "CommandResult",
    "ContractKey",
    "ContractRecord",
    "NetworkConfig",
    "QueryResult",
    "Wallet",
    "WorkerRecord",
    "WorkerVerification",
    "find_network_file",
]


def find_network_file(network: str | os.PathLike[str] | None = None) -> Path:
    """``network``, else ``$VEIL_NETWORK``, else ``.devnet/network.json`` (of cwd or a parent).

    Raises:
        NetworkConfigInvalid: none of them exists.
    """
    if network is not None:
        path = Path(network)
        if not path.is_file():
            raise NetworkConfigInvalid(f"network file {path} not found")
        return path
    env = os.environ.get(NETWORK_ENV)
    if env:
        path = Path(env)
        if not path.is_file():
            raise NetworkConfigInvalid(f"${NETWORK_ENV} names {path}, which does not exist")
        return path
    cwd = Path.cwd()
    for base in (cwd, *cwd.parents):
        candidate = base / DEFAULT_NETWORK_FILE
        if candidate.is_file():
            return candidate
    raise NetworkConfigInvalid(
        f"no network given: pass --network, set ${NETWORK_ENV}, or start `veil devnet` "
        f"(it writes {DEFAULT_NETWORK_FILE})"
    )


def _address(value: Any, what: str) -> Address:
    try:
        return Address.parse(str(value))
    except (ValueError, TypeError, VeilnetError) as exc:
        raise NetworkConfigInvalid(f"network.json: {what} is not an address") from exc


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _hex(value: Any, what: str) -> bytes:
    try:
        text = str(value)
        return bytes.fromhex(text[2:] if text.startswith("0x") else text)
    except ValueError as exc:
        raise NetworkConfigInvalid(f"network.json: {what} is not hex") from exc


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkConfig:
    """What a client needs to know about a network (the contents of ``network.json``).

    ``insecure_dev_tee`` (devnets only) makes the client accept the development attestation
    root, derived from ``network_seed`` or given as ``attestation_root_ca``; otherwise workers
    must attest under Intel's root.
    """

    chain_id: int
    rpc_url: str
    registry: Address
    bus: Address
    genesis_block: int = 0
    admin: Address | None = None
    workers: dict[Address, str] = field(default_factory=dict)
    gatekeepers: dict[Address, str] = field(default_factory=dict)
    """Gatekeeper nodes' API URLs (they answer ``/v1/attestation`` too; devnets list them)."""
    gateway_url: str | None = None
    dev_accounts: dict[Address, bytes] = field(default_factory=dict, repr=False)
    clusters: tuple[bytes, ...] = ()
    finality: int = DEFAULT_FINALITY
    commitment_interval: int = DEFAULT_COMMITMENT_INTERVAL
    """Members post state commitments every this many blocks (0: never)."""
    block_time: float | None = None
    insecure_dev_tee: bool = False
    network_seed: bytes | None = field(default=None, repr=False)
    attestation_root_ca: bytes | None = field(default=None, repr=False)
    config_digest: bytes = b""
    """The network digest of the enclave configuration every worker must attest to (``0x``-hex
    ``config_digest`` in ``network.json``); a registration bound to another is not verified."""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def load(
        cls, network: str | os.PathLike[str] | Mapping[str, Any] | None = None
    ) -> NetworkConfig:
        """From a path, a parsed document, or the default search (see ``find_network_file``).

        Raises:
            NetworkConfigInvalid: missing file, bad JSON, or missing/invalid fields.
        """
        if isinstance(network, Mapping):
            return cls.from_json(network)
        path = find_network_file(network)
        try:
            if path.stat().st_size > MAX_NETWORK_FILE:
                raise NetworkConfigInvalid(f"{path} is too large")
            document = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise NetworkConfigInvalid(f"cannot read {path}: {exc}") from exc
        if not isinstance(document, dict):
            raise NetworkConfigInvalid(f"{path} is not a JSON object")
        return cls.from_json(document)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> NetworkConfig:
        if doc.get("stopped"):
            raise NetworkConfigInvalid(
                f"network.json describes a devnet that stopped at {doc.get('stopped_at', '?')}: "
                "start it again (veil devnet)"
            )
        try:
            contracts = doc.get("contracts") or {}
            registry = contracts.get("Registry", contracts.get("registry"))
            bus = contracts.get("Bus", contracts.get("bus"))
            if registry is None or bus is None:
                raise NetworkConfigInvalid("network.json: contracts.Registry and .Bus are required")
            seed = doc.get("network_seed")
            root = doc.get("attestation_root_ca")
            digest = doc.get("config_digest")
            return cls(
                chain_id=int(doc["chain_id"]),
                rpc_url=str(doc["rpc_url"]),
                registry=_address(registry, "contracts.Registry"),
                bus=_address(bus, "contracts.Bus"),
                genesis_block=int(doc.get("genesis_block", 0)),
                admin=_address(doc["admin"], "admin") if doc.get("admin") else None,
                workers={
                    _address(a, "a worker address"): str(url)
                    for a, url in (doc.get("workers") or {}).items()
                },
                gatekeepers={
                    _address(a, "a gatekeeper address"): str(url)
                    for a, url in _mapping(doc.get("gatekeepers")).items()
                },
                gateway_url=str(doc["gateway_url"]) if doc.get("gateway_url") else None,
                dev_accounts={
                    _address(a, "a dev account"): _hex(k, "a dev account key")
                    for a, k in (doc.get("dev_accounts") or {}).items()
                },
                clusters=tuple(_hex(c, "a cluster id") for c in doc.get("clusters") or ()),
                finality=int(doc.get("finality", DEFAULT_FINALITY)),
                commitment_interval=int(
                    doc.get("commitment_interval", DEFAULT_COMMITMENT_INTERVAL)
                ),
                block_time=float(doc["block_time"]) if doc.get("block_time") else None,
                insecure_dev_tee=bool(doc.get("insecure_dev_tee", False)),
                network_seed=_hex(seed, "network_seed") if seed else None,
                attestation_root_ca=_hex(root, "attestation_root_ca") if root else None,
                config_digest=_hex(digest, "config_digest") if digest else b"",
                raw=dict(doc),
            )
        except KeyError as exc:
            raise NetworkConfigInvalid(f"network.json: missing field {exc.args[0]}") from exc
        except (TypeError, ValueError, AttributeError) as exc:
            raise NetworkConfigInvalid(f"network.json: bad value ({exc})") from exc

    def default_wallet_key(self) -> bytes | None:
        """The first dev account's key (devnets), used when no wallet is given."""
        return next(iter(self.dev_accounts.values()), None)

    def admin_key(self) -> bytes | None:
        """The governance key, when the network is a devnet that lists it among dev accounts."""
        if self.admin is None:
            return None
        return self.dev_accounts.get(self.admin)


class Wallet:
    """An Ethereum account that signs transactions and EIP-191 texts (query certificates).

    Build with ``from_key`` (32-byte private key or hex). The key never appears in ``repr``.
    """

    __slots__ = ("_account", "address", "signer")

    def __init__(self, account: Any, signer: TransactionSigner) -> None:
        self._account = account
        self.signer = signer
        """Signs the wallet's EIP-1559 transactions (``TransactionSigner``)."""
        self.address = signer.address

    @classmethod
    def from_key(cls, key: bytes | str) -> Wallet:
        if isinstance(key, str):
            key = bytes.fromhex(key.removeprefix("0x"))
        if len(key) != 32:
            raise ValueError("a private key is 32 bytes")
        return cls(Account.from_key(key), TransactionSigner(key))

    def sign_text(self, text: str) -> bytes:
        """EIP-191 ``personal_sign`` signature (65 bytes, v in {27, 28})."""
        return bytes(self._account.sign_message(encode_defunct(text=text)).signature)

    def __repr__(self) -> str:
        return f"Wallet({self.address.hex})"

    def __reduce__(self) -> Any:
        raise TypeError("wallets are not picklable")


# ---- Registry records ------------------------------------------------------------------
# The Registry's public getters return its structs as ABI tuples, in declaration order
# (``contracts/Registry.vy``). Each record below mirrors one struct field for field, and
# ``from_getter`` is the one place such a tuple is read: clients fetch, this decodes.

ZERO_ADDRESS = Address(b"\x00" * 20)
NO_CLUSTER = b"\x00" * 32
"""What ``Registry.workers(addr).cluster`` holds for a worker in no cluster."""


def _abi_value(abi_type: str, value: Any) -> Any:
    """One struct field as the ABI decoder returned it, checked against its type."""
    if abi_type == "address":
        if not isinstance(value, str | bytes):
            raise TypeError("an address is hex text or 20 bytes")
        return Address.parse(value)
    if abi_type == "bool":
        if not isinstance(value, bool):
            raise TypeError("a bool is True or False")
        return value
    if abi_type == "bytes32":
        if not isinstance(value, bytes) or len(value) != 32:
            raise ValueError("a bytes32 is 32 bytes")
        return value
    bits = int(abi_type.removeprefix("uint"))  # the records name no other types
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**bits:
        raise ValueError(f"a {abi_type} is an integer in [0, 2**{bits})")
    return value


class _RegistryRecord:
    """Decoding shared by the records: arity and each field's ABI type checked, in order."""

    __slots__ = ()
    getter: ClassVar[str]
    contract: ClassVar[str] = "Registry"
    """The contract whose getter returns the struct (agent contracts live in the Bus)."""
    """The Registry view function that returns this struct."""
    abi_types: ClassVar[tuple[str, ...]]
    """The struct's field types, in its (and the dataclass's) field order; a test checks them
    against the compiled Registry's ABI."""

    @classmethod
    def from_getter(cls, values: Any) -> Self:
        """Decode the value of ``Registry.<getter>(key)`` as the ABI decoder returned it.

        Raises:
            ChainUnavailable: wrong arity or a field of the wrong type or size (the node
                answered something that is not this struct).
        """
        names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
        if not isinstance(values, Sequence) or isinstance(values, str | bytes):
            raise ChainUnavailable(
                f"{cls.contract}.{cls.getter}: the node's answer is not a struct", getter=cls.getter
            )
        if len(values) != len(cls.abi_types):
            raise ChainUnavailable(
                f"{cls.contract}.{cls.getter}: the node's answer has {len(values)} fields, "
                f"not {len(cls.abi_types)}",
                getter=cls.getter,
            )
        decoded: dict[str, Any] = {}
        for name, abi_type, value in zip(names, cls.abi_types, values, strict=True):
            try:
                decoded[name] = _abi_value(abi_type, value)
            except (TypeError, ValueError, VeilnetError) as exc:
                raise ChainUnavailable(
                    f"{cls.contract}.{cls.getter}: field {name} does not decode ({exc})",
                    getter=cls.getter,
                    field=name,
                ) from exc
        return cls(**decoded)


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerRecord(_RegistryRecord):
    """``Registry.workers(address)``: a worker's registration (all zero when it has none)."""

    getter: ClassVar[str] = "workers"
    abi_types: ClassVar[tuple[str, ...]] = (
        "address",
        "bytes32",
        "uint8",
        "bytes32",
        "uint8",
        "bytes32",
        "bytes32",
        "bytes32",
    )

    operator: Address
    hpke_key_hash: bytes
    """keccak256 of the worker's HPKE key (the key itself is in ``WorkerRegistered``)."""
    tee_kind: int
    measurement: bytes
    confidence: int
    """Endorsement confidence level, 1 (best) .. 5; 0 until the gatekeepers endorse."""
    quote_hash: bytes
    collateral_hash: bytes
    cluster: bytes
    """The cluster the worker serves, or ``NO_CLUSTER``."""

    @property
    def is_registered(self) -> bool:
        return self.operator != ZERO_ADDRESS

    @property
    def in_cluster(self) -> bool:
        return self.cluster != NO_CLUSTER


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterRecord(_RegistryRecord):
    """``Registry.clusters(id)``: a cluster's owner, current key and size."""

    getter: ClassVar[str] = "clusters"
    abi_types: ClassVar[tuple[str, ...]] = (
        "address",
        "uint64",
        "address",
        "bytes32",
        "uint64",
        "uint256",
    )

    owner: Address
    key_epoch: int
    key_address: Address
    key_hash: bytes
    """keccak256 of the cluster's public key; the key itself is in the ``ClusterKeySet``
    event of block ``key_block`` (a hybrid post-quantum key costs no more storage)."""
    key_block: int
    worker_count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ContractRecord(_RegistryRecord):
    """``Bus.contracts(id)``: an agent contract (all zero for an unknown id)."""

    getter: ClassVar[str] = "contracts"
    contract: ClassVar[str] = "Bus"
    abi_types: ClassVar[tuple[str, ...]] = (
        "bytes32",
        "bytes32",
        "address",
        "address",
        "uint64",
        "address",
        "bytes32",
        "uint64",
        "bool",
    )

    cluster: bytes
    code_hash: bytes
    owner: Address
    controller: Address
    key_epoch: int
    """0 until the cluster has posted the contract's key."""
    key_address: Address
    key_hash: bytes
    """keccak256 of the contract's public key, which is in the ``ContractKeySet`` event of
    block ``key_block``."""
    key_block: int
    paused: bool

    @property
    def exists(self) -> bool:
        return self.owner != ZERO_ADDRESS


@dataclass(frozen=True, slots=True, kw_only=True)
class ContractKey:
    """A contract's current public key and key epoch, as the Registry reports them."""

    contract_id: bytes
    cluster: bytes
    owner: Address
    epoch: int
    public_key: bytes
    paused: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryResult:
    """A verified query answer: the agent's value and the proof of where it came from."""

    value: Any
    worker: Address
    block_number: int
    block_hash: bytes
    state_commitment: bytes
    events: list[Any] = field(default_factory=list)
    fuel: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "events": self.events,
            "fuel": self.fuel,
            "worker": self.worker.hex,
            "block_number": self.block_number,
            "block_hash": "0x" + self.block_hash.hex(),
            "state_commitment": "0x" + self.state_commitment.hex(),
            "verified": True,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandResult:
    """A command sent on chain; with ``wait``, its outcome as a verified query reported it."""

    contract_id: bytes
    seq: int
    tx_hash: bytes
    block_number: int
    applied: bool = False
    ok: bool | None = None
    result: Any = None
    events: list[Any] = field(default_factory=list)
    fuel: int = 0
    error: dict[str, Any] | None = None
    proof: QueryResult | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "contract_id": "0x" + self.contract_id.hex(),
            "seq": self.seq,
            "tx_hash": "0x" + self.tx_hash.hex(),
            "block_number": self.block_number,
            "applied": self.applied,
            "ok": self.ok,
            "result": self.result,
            "events": self.events,
            "fuel": self.fuel,
            "error": self.error,
            "verified_by": None if self.proof is None else self.proof.worker.hex,
            "verified_at_block": None if self.proof is None else self.proof.block_number,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerVerification:
    """Why the client trusts a worker: registry entry plus a fresh, verified attestation."""

    address: Address
    url: str | None
    cluster: bytes
    confidence: int
    measurement: bytes
    tee: str
    trust_root: str
    verified_at: int
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address.hex,
            "url": self.url,
            "cluster": "0x" + self.cluster.hex(),
            "confidence": self.confidence,
            "measurement": "0x" + self.measurement.hex(),
            "tee": self.tee,
            "trust_root": self.trust_root,
            "verified_at": self.verified_at,
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """One ``WorkerRegistered`` record re-verified now: ``passed`` or the reasons it fails."""

    worker: Address
    block_number: int
    tee_kind: int
    measurement: bytes
    measurement_allowed: bool
    confidence_on_chain: int
    passed: bool
    confidence: int | None
    reasons: tuple[str, ...]
    collateral_expires_at: int | None
    kind: str = "registration"
    """``registration`` (``WorkerRegistered``) or ``reattestation`` (``WorkerReattested``)."""
    collateral_source: str = "registrant"
    """Where the collateral it was judged under came from: ``registrant`` (the copy the worker
    posted) or the URL of the PCCS-compatible service the verifier asked itself."""

    def to_json(self) -> dict[str, Any]:
        return {
            "worker": self.worker.hex,
            "kind": self.kind,
            "collateral_source": self.collateral_source,
            "block_number": self.block_number,
            "tee_kind": self.tee_kind,
            "measurement": "0x" + self.measurement.hex(),
            "measurement_allowed": self.measurement_allowed,
            "confidence_on_chain": self.confidence_on_chain,
            "passed": self.passed,
            "confidence": self.confidence,
            "reasons": list(self.reasons),
            "collateral_expires_at": self.collateral_expires_at,
        }
