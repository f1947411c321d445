"""Pure chain data model: block headers, raw logs, typed Veilnet events and ``decode_log``.
Imports only stdlib, eth-abi, eth-hash and ``veilnet.crypto.Address``: safe for the sans-IO runtime.

Theory of operation: the follower hands the runtime one ``Block`` per finalized block. Its
``header`` carries what the runtime may depend on (number, hash, parent hash, timestamp,
receipts root); its ``events`` are the decoded Registry and Bus logs of that block in log-index
order, already proven against the receipts root. ``decode_log`` checks that a log comes from
the contract that defines its event (a ``Command`` emitted by any other address is rejected).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Final

from eth_abi.abi import decode as abi_decode
from eth_abi.exceptions import DecodingError

from veilnet.chain.artifacts import load_artifact
from veilnet.chain.errors import EventDecodeError
from veilnet.codec import decode_event_data
from veilnet.crypto import Address, keccak

__all__ = [
    "EVENT_TYPES",
    "MAX_LOG_DATA",
    "Block",
    "BlockHeader",
    "BusSet",
    "ChainAddresses",
    "ChainEvent",
    "ClusterCreated",
    "ClusterKeySet",
    "ClusterWorkerAdded",
    "ClusterWorkerRemoved",
    "Command",
    "ContractControllerChanged",
    "ContractDeployed",
    "ContractInitFailed",
    "ContractKeySet",
    "ContractOwnerChanged",
    "ContractPaused",
    "ContractUpgraded",
    "DeployPolicySet",
    "Egress",
    "EgressHostSet",
    "EgressRejected",
    "FeesWithdrawn",
    "GatekeeperAdded",
    "GatekeeperRemoved",
    "HeartbeatRecorded",
    "JobRequested",
    "JobScheduled",
    "MasterKeyRotated",
    "MasterKeySet",
    "MeasurementSet",
    "OwnershipTransferStarted",
    "OwnershipTransferred",
    "ParamsChanged",
    "RawLog",
    "RegistrationDepositSet",
    "ReplicaDiverged",
    "RotationAborted",
    "RotationConfirmed",
    "RotationLocked",
    "RotationProposed",
    "RotationThresholdSet",
    "ScheduleCancelled",
    "WorkerEndorsed",
    "WorkerFlagged",
    "WorkerKeyPublished",
    "WorkerReattested",
    "WorkerRegistered",
    "decode_log",
    "event_topic",
]

MAX_LOG_DATA: Final = 128 * 1024
"""Largest log data ``decode_log`` accepts (the biggest event, ContractDeployed, is ~29 KiB)."""
_MAX_TOPICS: Final = 4


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainAddresses:
    """Where a network's contracts live; events from any other address are not Veilnet's."""

    chain_id: int
    registry: Address
    bus: Address

    def by_name(self, contract: str) -> Address:
        return self.registry if contract == "Registry" else self.bus

    def to_json(self) -> dict[str, Any]:
        return {"chain_id": self.chain_id, "registry": self.registry.hex, "bus": self.bus.hex}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ChainAddresses:
        return cls(
            chain_id=int(doc["chain_id"]),
            registry=Address.parse(doc["registry"]),
            bus=Address.parse(doc["bus"]),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class BlockHeader:
    """The header fields the runtime may use. ``timestamp`` is the only clock of the core."""

    number: int
    hash: bytes
    parent_hash: bytes
    timestamp: int
    receipts_root: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class RawLog:
    """A log as the node reported it (after proof), before ABI decoding."""

    address: bytes
    topics: tuple[bytes, ...]
    data: bytes
    block_number: int
    log_index: int
    tx_hash: bytes

    @classmethod
    def from_rpc(cls, doc: dict[str, Any]) -> RawLog:
        """A log as ``eth_getLogs`` returns it (hex fields).

        Raises:
            KeyError / TypeError / ValueError: the node's answer is not a log.
        """
        return cls(
            address=bytes.fromhex(doc["address"][2:]),
            topics=tuple(bytes.fromhex(t[2:]) for t in doc["topics"]),
            data=bytes.fromhex(doc["data"][2:]),
            block_number=int(doc["blockNumber"], 16),
            log_index=int(doc["logIndex"], 16),
            tx_hash=bytes.fromhex(doc["transactionHash"][2:]),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainEvent:
    """Base of every decoded event: where it was emitted and its position in the chain."""

    CONTRACT: ClassVar[str] = ""
    emitter: Address
    block_number: int
    log_index: int
    tx_hash: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Block:
    """One finalized block: its header and its proven Veilnet events in log-index order."""

    header: BlockHeader
    events: tuple[ChainEvent, ...]
    raw_header: bytes = b""
    """The RLP header, for the core to re-hash (the follower fills it)."""
    raw_receipts: tuple[bytes, ...] = ()
    """Every receipt of the block (EIP-2718), or none where the bloom rules out our logs."""

    @property
    def logs(self) -> tuple[ChainEvent, ...]:
        return self.events


@dataclass(frozen=True, slots=True, kw_only=True)
class BusSet(ChainEvent):
    """Registry: the Bus address was fixed at genesis (once)."""

    CONTRACT: ClassVar[str] = "Registry"
    bus: Address


@dataclass(frozen=True, slots=True, kw_only=True)
class MeasurementSet(ChainEvent):
    """Registry: governance allowed or disallowed a TEE measurement."""

    CONTRACT: ClassVar[str] = "Registry"
    measurement: bytes
    allowed: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class GatekeeperAdded(ChainEvent):
    """Registry: governance named a registered worker as gatekeeper (genesis names the first)."""

    CONTRACT: ClassVar[str] = "Registry"
    gatekeeper: Address


@dataclass(frozen=True, slots=True, kw_only=True)
class GatekeeperRemoved(ChainEvent):
    """Registry: governance removed a gatekeeper."""

    CONTRACT: ClassVar[str] = "Registry"
    gatekeeper: Address


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerRegistered(ChainEvent):
    """Registry: a worker asked to join, with its quote (kept in the log for re-verification)."""

    CONTRACT: ClassVar[str] = "Registry"
    worker: Address
    operator: Address
    hpke_key: bytes
    tee_kind: int
    measurement: bytes
    quote_hash: bytes
    collateral_hash: bytes
    quote: bytes
    attested_block: int
    attested_hash: bytes
    registration: bytes
    api_url: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerEndorsed(ChainEvent):
    """Registry: the master key (egress) set the worker's confidence level (0 = rejected)."""

    CONTRACT: ClassVar[str] = "Registry"
    worker: Address
    confidence: int
    registration: bytes
    valid_until: int


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerReattested(ChainEvent):
    """Registry: a registered worker posted a fresh quote of the same registration."""

    CONTRACT: ClassVar[str] = "Registry"
    worker: Address
    quote_hash: bytes
    collateral_hash: bytes
    quote: bytes
    attested_block: int
    attested_hash: bytes
    registration: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class HeartbeatRecorded(ChainEvent):
    """Registry: a worker's heartbeat (routed egress) landed: its height, boot id, sealed height."""

    CONTRACT: ClassVar[str] = "Registry"
    worker: Address
    height: int
    boot_id: bytes
    sealed_height: int


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerFlagged(ChainEvent):
    """Registry: the worker identity was caught running twice (reason 1); flagged for good."""

    CONTRACT: ClassVar[str] = "Registry"
    worker: Address
    reason: int


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerKeyPublished(ChainEvent):
    """Registry: a worker published its encryption key number ``index`` (routed egress)."""

    CONTRACT: ClassVar[str] = "Registry"
    worker: Address
    index: int
    public_key: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplicaDiverged(ChainEvent):
    """Registry: a member's state commitment differs from the majority's for ``height`` (it is
    de-endorsed), or from the first one posted while no majority exists (``majority`` empty)."""

    CONTRACT: ClassVar[str] = "Registry"
    cluster_id: bytes
    worker: Address
    height: int
    commitment: bytes
    majority: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class MasterKeySet(ChainEvent):
    """Registry: the first gatekeeper published the master key's address and HPKE key."""

    CONTRACT: ClassVar[str] = "Registry"
    gatekeeper: Address
    key_address: Address
    public_key: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class RotationLocked(ChainEvent):
    """Registry: governance took the rotation lock for rotation number ``rotation``."""

    CONTRACT: ClassVar[str] = "Registry"
    rotation: int
    attempt: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RotationProposed(ChainEvent):
    """Registry: first proposal of a new master key landed (confirmation 1)."""

    CONTRACT: ClassVar[str] = "Registry"
    rotation: int
    proposer: Address
    key_address: Address
    public_key: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class RotationConfirmed(ChainEvent):
    """Registry: one gatekeeper switched to the proposed key (confirmation 2, per gatekeeper)."""

    CONTRACT: ClassVar[str] = "Registry"
    rotation: int
    gatekeeper: Address
    confirmations: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MasterKeyRotated(ChainEvent):
    """Registry: every gatekeeper confirmed; the new master key is live, the lock released."""

    CONTRACT: ClassVar[str] = "Registry"
    rotation: int
    key_address: Address
    public_key: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class RotationAborted(ChainEvent):
    """Registry: governance released the lock without a new key."""

    CONTRACT: ClassVar[str] = "Registry"
    rotation: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterCreated(ChainEvent):
    """Registry: governance created a cluster with an owner and a key suite."""

    CONTRACT: ClassVar[str] = "Registry"
    cluster_id: bytes
    owner: Address
    suite: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterWorkerAdded(ChainEvent):
    """Registry: the cluster owner added an endorsed worker."""

    CONTRACT: ClassVar[str] = "Registry"
    cluster_id: bytes
    worker: Address


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterWorkerRemoved(ChainEvent):
    """Registry: the cluster owner removed a worker."""

    CONTRACT: ClassVar[str] = "Registry"
    cluster_id: bytes
    worker: Address


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterKeySet(ChainEvent):
    """Registry: gatekeepers (master-key egress) published a cluster key epoch."""

    CONTRACT: ClassVar[str] = "Registry"
    cluster_id: bytes
    epoch: int
    key_address: Address
    public_key: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ContractDeployed(ChainEvent):
    """Registry: an agent was deployed (public code, opaque init args) into a cluster."""

    CONTRACT: ClassVar[str] = "Bus"
    contract_id: bytes
    cluster_id: bytes
    owner: Address
    controller: Address
    code_hash: bytes
    code: bytes
    init_args: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ContractKeySet(ChainEvent):
    """Registry: the cluster (cluster-key egress) published the contract key of an epoch."""

    CONTRACT: ClassVar[str] = "Bus"
    contract_id: bytes
    epoch: int
    key_address: Address
    public_key: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ContractPaused(ChainEvent):
    """Registry: owner or controller paused or resumed the contract."""

    CONTRACT: ClassVar[str] = "Bus"
    contract_id: bytes
    paused: bool
    by: Address


@dataclass(frozen=True, slots=True, kw_only=True)
class ContractUpgraded(ChainEvent):
    """Registry: owner or controller replaced the contract code."""

    CONTRACT: ClassVar[str] = "Bus"
    contract_id: bytes
    code_hash: bytes
    code: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ContractOwnerChanged(ChainEvent):
    """Registry: the contract has a new owner."""

    CONTRACT: ClassVar[str] = "Bus"
    contract_id: bytes
    owner: Address


@dataclass(frozen=True, slots=True, kw_only=True)
class ContractControllerChanged(ChainEvent):
    """Registry: the contract has a new controller (an address or EVM contract)."""

    CONTRACT: ClassVar[str] = "Bus"
    contract_id: bytes
    controller: Address


@dataclass(frozen=True, slots=True, kw_only=True)
class ContractInitFailed(ChainEvent):
    """Bus: the agent's ``init`` failed on its workers (cluster key egress); it is paused."""

    CONTRACT: ClassVar[str] = "Bus"
    contract_id: bytes
    code: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OwnershipTransferred(ChainEvent):
    """Registry: governance (snekmate ownable) changed hands."""

    CONTRACT: ClassVar[str] = "Registry"
    previous_owner: Address
    new_owner: Address


@dataclass(frozen=True, slots=True, kw_only=True)
class OwnershipTransferStarted(ChainEvent):
    """Registry: a two-step governance transfer began."""

    CONTRACT: ClassVar[str] = "Registry"
    previous_owner: Address
    new_owner: Address


@dataclass(frozen=True, slots=True, kw_only=True)
class Command(ChainEvent):
    """Bus: a command for an agent contract, numbered per contract."""

    CONTRACT: ClassVar[str] = "Bus"
    contract_id: bytes
    seq: int
    sender: Address
    payload: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Egress(ChainEvent):
    """Bus: an accepted egress message, numbered per origin (first copy wins)."""

    CONTRACT: ClassVar[str] = "Bus"
    origin: Address
    seq: int
    topic: bytes
    payload: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class EgressRejected(ChainEvent):
    """Bus: the egress above was accepted but its Registry effect was refused."""

    CONTRACT: ClassVar[str] = "Bus"
    origin: Address
    seq: int
    topic: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ParamsChanged(ChainEvent):
    """Bus: governance changed payload limit, command fee or fee hook."""

    CONTRACT: ClassVar[str] = "Bus"
    max_payload: int
    command_fee: int
    fee_hook: Address


@dataclass(frozen=True, slots=True, kw_only=True)
class RotationThresholdSet(ChainEvent):
    """Registry: governance set how many gatekeeper confirmations complete a rotation (0: all)."""

    CONTRACT: ClassVar[str] = "Registry"
    threshold: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DeployPolicySet(ChainEvent):
    """Bus: a cluster owner opened or closed its cluster to deployments (``deployer`` zero) or
    allowed or refused one deployer while it is closed."""

    CONTRACT: ClassVar[str] = "Bus"
    cluster_id: bytes
    deployer: Address
    allowed: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRequested(ChainEvent):
    """Bus: an EVM contract (the consumer) asked an agent for work, due by ``deadline``."""

    CONTRACT: ClassVar[str] = "Bus"
    contract_id: bytes
    request_id: bytes
    consumer: Address
    deadline: int
    payload: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class JobScheduled(ChainEvent):
    """Bus: an agent's owner set a standing job, every ``every`` blocks from ``start``."""

    CONTRACT: ClassVar[str] = "Bus"
    contract_id: bytes
    schedule_id: int
    consumer: Address
    every: int
    start: int
    payload: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleCancelled(ChainEvent):
    """Bus: an agent's owner cancelled a standing job."""

    CONTRACT: ClassVar[str] = "Bus"
    contract_id: bytes
    schedule_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class EgressHostSet(ChainEvent):
    """Bus: an agent's owner allowed (or no longer allows) its ``http.fetch`` to reach ``host``."""

    CONTRACT: ClassVar[str] = "Bus"
    contract_id: bytes
    host: str
    allowed: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistrationDepositSet(ChainEvent):
    """Registry: governance set the deposit a registration or re-attestation pays."""

    CONTRACT: ClassVar[str] = "Registry"
    amount: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FeesWithdrawn(ChainEvent):
    """Bus: governance withdrew the command fees the Bus held."""

    CONTRACT: ClassVar[str] = "Bus"
    to: Address
    amount: int


EVENT_TYPES: Final[tuple[type[ChainEvent], ...]] = (
    BusSet,
    MeasurementSet,
    GatekeeperAdded,
    GatekeeperRemoved,
    WorkerRegistered,
    WorkerEndorsed,
    HeartbeatRecorded,
    WorkerFlagged,
    WorkerReattested,
    WorkerKeyPublished,
    ReplicaDiverged,
    MasterKeySet,
    RotationLocked,
    RotationProposed,
    RotationConfirmed,
    MasterKeyRotated,
    RotationAborted,
    RotationThresholdSet,
    DeployPolicySet,
    JobRequested,
    JobScheduled,
    ScheduleCancelled,
    EgressHostSet,
    RegistrationDepositSet,
    ClusterCreated,
    ClusterWorkerAdded,
    ClusterWorkerRemoved,
    ClusterKeySet,
    ContractDeployed,
    ContractKeySet,
    ContractPaused,
    ContractUpgraded,
    ContractOwnerChanged,
    ContractControllerChanged,
    ContractInitFailed,
    OwnershipTransferred,
    OwnershipTransferStarted,
    Command,
    Egress,
    EgressRejected,
    ParamsChanged,
    FeesWithdrawn,
)


@dataclass(frozen=True, slots=True)
class _EventSpec:
    cls: type[ChainEvent]
    topic0: bytes
    indexed: tuple[tuple[str, str], ...]
    data: tuple[tuple[str, str], ...]
    types: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "types", tuple(t for _, t in self.data))


def event_topic(cls: type[ChainEvent]) -> bytes:
    """topic0 of an event class: keccak256 of its ABI signature."""
    return _SPEC_BY_CLASS[cls].topic0


def _build_specs() -> dict[bytes, _EventSpec]:
    specs: dict[bytes, _EventSpec] = {}
    by_name = {cls.__name__: cls for cls in EVENT_TYPES}
    for contract in ("Registry", "Bus"):
        for entry in load_artifact(contract).abi:
            if entry.get("type") != "event":
                continue
            cls = by_name[entry["name"]]
            inputs = entry["inputs"]
            signature = f"{entry['name']}({','.join(i['type'] for i in inputs)})"
            declared = [f.name for f in fields(cls)][4:]
            if declared != [i["name"] for i in inputs] or contract != cls.CONTRACT:
                raise RuntimeError(f"event class {cls.__name__} does not match the {contract} ABI")
            spec = _EventSpec(
                cls=cls,
                topic0=keccak(signature.encode()),
                indexed=tuple((i["name"], i["type"]) for i in inputs if i["indexed"]),
                data=tuple((i["name"], i["type"]) for i in inputs if not i["indexed"]),
            )
            specs[spec.topic0] = spec
    if len(specs) != len(EVENT_TYPES):
        raise RuntimeError("event classes and contract ABIs disagree")
    return specs


_SPECS: Final = _build_specs()
_SPEC_BY_CLASS: Final = {spec.cls: spec for spec in _SPECS.values()}


def _convert(abi_type: str, value: Any) -> Any:
    if abi_type == "address":
        return Address.parse(value)
    return value


def _topic_value(abi_type: str, topic: bytes) -> Any:
    """An indexed value from its 32-byte topic, as eth-abi's strict decoder reads it (the
    types topics carry here are read directly: a tenth of the time, on every command).

    Raises:
        DecodingError: an address topic with anything but zeros above its 20 bytes.
    """
    if abi_type == "bytes32":
        return topic
    if abi_type == "uint256":
        return int.from_bytes(topic, "big")
    if abi_type == "address":
        if any(topic[:12]):
            raise DecodingError("an address topic is padded with zeros")
        return Address(topic[12:])
    return _convert(abi_type, abi_decode([abi_type], topic)[0])


def decode_log(log: RawLog, addresses: ChainAddresses) -> ChainEvent:
    """Decode one proven log into its typed event.

    Args:
        log: the raw log (address, topics, data and position).
        addresses: the network's contract addresses; the log must come from the contract
            that declares its event.

    Returns:
        The frozen event dataclass.

    Raises:
        EventDecodeError: unknown topic, wrong emitter, wrong topic count, oversized or
            malformed data. Nothing is returned in part.
    """
    if not log.topics or len(log.topics) > _MAX_TOPICS:
        raise EventDecodeError("log has no or too many topics", log_index=log.log_index)
    if len(log.data) > MAX_LOG_DATA:
        raise EventDecodeError("log data too large", log_index=log.log_index)
    spec = _SPECS.get(bytes(log.topics[0]))
    if spec is None:
        raise EventDecodeError("unknown event topic", log_index=log.log_index)
    emitter = addresses.by_name(spec.cls.CONTRACT)
    if bytes(log.address) != emitter.raw:
        raise EventDecodeError(
            f"{spec.cls.__name__} from an address that is not the {spec.cls.CONTRACT}",
            log_index=log.log_index,
        )
    if len(log.topics) != 1 + len(spec.indexed):
        raise EventDecodeError(
            f"{spec.cls.__name__} has wrong topic count", log_index=log.log_index
        )
    values: dict[str, Any] = {}
    try:
        for (name, abi_type), topic in zip(spec.indexed, log.topics[1:], strict=True):
            if len(topic) != 32:
                raise EventDecodeError("topic is not 32 bytes", log_index=log.log_index)
            values[name] = _topic_value(abi_type, bytes(topic))
        decoded = decode_event_data(spec.types, bytes(log.data))
        for (name, abi_type), value in zip(spec.data, decoded, strict=True):
            values[name] = _convert(abi_type, value)
    except (DecodingError, ValueError, TypeError, OverflowError) as exc:
        raise EventDecodeError(
            f"{spec.cls.__name__} fields do not decode", log_index=log.log_index
        ) from exc
    return spec.cls(
        emitter=emitter,
        block_number=log.block_number,
        log_index=log.log_index,
        tx_hash=bytes(log.tx_hash),
        **values,
    )
