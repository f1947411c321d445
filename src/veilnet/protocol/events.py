"""The core's input vocabulary: block headers and the chain events it replays, as plain records.
The host translates Registry/Bus logs into these; the core imports no chain or RPC code."""

from __future__ import annotations

from dataclasses import dataclass

from veilnet.codec import Record, record

__all__ = [
    "Block",
    "BlockHeader",
    "ChainEvent",
    "ClusterCreated",
    "ClusterKeySet",
    "ClusterWorkerAdded",
    "ClusterWorkerRemoved",
    "Command",
    "ContractControllerChanged",
    "ContractDeployed",
    "ContractKeySet",
    "ContractOwnerChanged",
    "ContractPaused",
    "ContractUpgraded",
    "Egress",
    "EgressHostSet",
    "EgressRejected",
    "GatekeeperAdded",
    "GatekeeperRemoved",
    "HeartbeatRecorded",
    "JobRequested",
    "JobScheduled",
    "MasterKeyRotated",
    "MasterKeySet",
    "MeasurementSet",
    "ReplicaDiverged",
    "RotationAborted",
    "RotationConfirmed",
    "RotationLocked",
    "RotationProposed",
    "ScheduleCancelled",
    "WorkerEndorsed",
    "WorkerFlagged",
    "WorkerKeyPublished",
    "WorkerReattested",
    "WorkerRegistered",
]


class ChainEvent(Record):
    """Base of every event the core consumes (one Registry or Bus log)."""


@record("block.header")
@dataclass(frozen=True, slots=True, kw_only=True)
class BlockHeader(Record):
    number: int
    hash: bytes
    parent_hash: bytes
    timestamp: int


@record("block")
@dataclass(frozen=True, slots=True, kw_only=True)
class Block(Record):
    """A finalized block and its relevant events, already proven by the host's follower."""

    header: BlockHeader
    events: tuple[ChainEvent, ...]


@record("ev.measurement")
@dataclass(frozen=True, slots=True, kw_only=True)
class MeasurementSet(ChainEvent):
    measurement: bytes
    allowed: bool


@record("ev.gatekeeper_added")
@dataclass(frozen=True, slots=True, kw_only=True)
class GatekeeperAdded(ChainEvent):
    gatekeeper: bytes


@record("ev.gatekeeper_removed")
@dataclass(frozen=True, slots=True, kw_only=True)
class GatekeeperRemoved(ChainEvent):
    gatekeeper: bytes


@record("ev.worker_registered")
@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerRegistered(ChainEvent):
    worker: bytes
    operator: bytes
    hpke_key: bytes
    tee_kind: int
    measurement: bytes
    quote_hash: bytes
    collateral_hash: bytes
    quote: bytes
    attested_block: int
    attested_hash: bytes
    """The recent block the quote binds (``registration_report_data``), checked by the chain."""
    registration: bytes
    """What an endorsement of this registration must name (``Registry.registration_of``)."""
    api_url: str = ""
    """Where the worker serves its API (empty: nowhere); clients find workers by it."""


@record("ev.worker_endorsed")
@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerEndorsed(ChainEvent):
    worker: bytes
    confidence: int
    registration: bytes
    valid_until: int
    """Unix seconds (block time) the endorsement holds until (0 with confidence 0)."""


@record("ev.worker_reattested")
@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerReattested(ChainEvent):
    """A registered worker posted a fresh quote of the same registration (before its
    endorsement expires); gatekeepers judge it like the first."""

    worker: bytes
    quote_hash: bytes
    collateral_hash: bytes
    quote: bytes
    attested_block: int
    attested_hash: bytes
    registration: bytes
    """What an endorsement of this registration must name (``Registry.registration_of``)."""


@record("ev.heartbeat_recorded")
@dataclass(frozen=True, slots=True, kw_only=True)
class HeartbeatRecorded(ChainEvent):
    worker: bytes
    height: int
    boot_id: bytes
    sealed_height: int


@record("ev.worker_flagged")
@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerFlagged(ChainEvent):
    worker: bytes
    reason: int


@record("ev.worker_key_published")
@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerKeyPublished(ChainEvent):
    """A worker's encryption key number ``index`` (one per cluster epoch): what gatekeepers
    wrap keys to from now on. Published signed by the worker identity (routed egress)."""

    worker: bytes
    index: int
    public_key: bytes


@record("ev.replica_diverged")
@dataclass(frozen=True, slots=True, kw_only=True)
class ReplicaDiverged(ChainEvent):
    """A member's state commitment for ``height`` differs from the one a strict majority of
    the cluster posted (``majority``; empty: no majority yet, nothing follows from it)."""

    cluster_id: bytes
    worker: bytes
    height: int
    commitment: bytes
    majority: bytes


@record("ev.master_key_set")
@dataclass(frozen=True, slots=True, kw_only=True)
class MasterKeySet(ChainEvent):
    gatekeeper: bytes
    key_address: bytes
    public_key: bytes


@record("ev.rotation_locked")
@dataclass(frozen=True, slots=True, kw_only=True)
class RotationLocked(ChainEvent):
    rotation: int
    attempt: int
    """Grows at every lock: confirmations and possession proofs are per attempt."""


@record("ev.rotation_proposed")
@dataclass(frozen=True, slots=True, kw_only=True)
class RotationProposed(ChainEvent):
    rotation: int
    proposer: bytes
    key_address: bytes
    public_key: bytes


@record("ev.rotation_confirmed")
@dataclass(frozen=True, slots=True, kw_only=True)
class RotationConfirmed(ChainEvent):
    rotation: int
    gatekeeper: bytes
    confirmations: int


@record("ev.master_key_rotated")
@dataclass(frozen=True, slots=True, kw_only=True)
class MasterKeyRotated(ChainEvent):
    rotation: int
    key_address: bytes
    public_key: bytes


@record("ev.rotation_aborted")
@dataclass(frozen=True, slots=True, kw_only=True)
class RotationAborted(ChainEvent):
    rotation: int


@record("ev.cluster_created")
@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterCreated(ChainEvent):
    cluster_id: bytes
    owner: bytes
    suite: int
    """HPKE suite of the cluster's and its contracts' keys: 1 X25519, 2 ML-KEM-768+X25519."""


@record("ev.cluster_worker_added")
@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterWorkerAdded(ChainEvent):
    cluster_id: bytes
    worker: bytes


@record("ev.cluster_worker_removed")
@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterWorkerRemoved(ChainEvent):
    cluster_id: bytes
    worker: bytes


@record("ev.cluster_key_set")
@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterKeySet(ChainEvent):
    cluster_id: bytes
    epoch: int
    key_address: bytes
    public_key: bytes


@record("ev.contract_deployed")
@dataclass(frozen=True, slots=True, kw_only=True)
class ContractDeployed(ChainEvent):
    contract_id: bytes
    cluster_id: bytes
    owner: bytes
    controller: bytes
    code_hash: bytes
    code: bytes
    init_args: bytes


@record("ev.contract_key_set")
@dataclass(frozen=True, slots=True, kw_only=True)
class ContractKeySet(ChainEvent):
    contract_id: bytes
    epoch: int
    key_address: bytes
    public_key: bytes


@record("ev.contract_paused")
@dataclass(frozen=True, slots=True, kw_only=True)
class ContractPaused(ChainEvent):
    contract_id: bytes
    paused: bool
    by: bytes


@record("ev.contract_upgraded")
@dataclass(frozen=True, slots=True, kw_only=True)
class ContractUpgraded(ChainEvent):
    contract_id: bytes
    code_hash: bytes
    code: bytes


@record("ev.contract_owner")
@dataclass(frozen=True, slots=True, kw_only=True)
class ContractOwnerChanged(ChainEvent):
    contract_id: bytes
    owner: bytes


@record("ev.contract_controller")
@dataclass(frozen=True, slots=True, kw_only=True)
class ContractControllerChanged(ChainEvent):
    contract_id: bytes
    controller: bytes


@record("ev.command")
@dataclass(frozen=True, slots=True, kw_only=True)
class Command(ChainEvent):
    contract_id: bytes
    seq: int
    sender: bytes
    payload: bytes


@record("ev.job_requested")
@dataclass(frozen=True, slots=True, kw_only=True)
class JobRequested(ChainEvent):
    contract_id: bytes
    request_id: bytes
    consumer: bytes
    """The EVM contract that asked (it takes the signed result: ``VeilConsumer``)."""
    deadline: int
    """The last block in which the consumer takes a result."""
    payload: bytes


@record("ev.job_scheduled")
@dataclass(frozen=True, slots=True, kw_only=True)
class JobScheduled(ChainEvent):
    contract_id: bytes
    schedule_id: int
    consumer: bytes
    every: int
    start: int
    payload: bytes


@record("ev.schedule_cancelled")
@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleCancelled(ChainEvent):
    contract_id: bytes
    schedule_id: int


@record("ev.egress_host_set")
@dataclass(frozen=True, slots=True, kw_only=True)
class EgressHostSet(ChainEvent):
    contract_id: bytes
    host: str
    allowed: bool


@record("ev.egress")
@dataclass(frozen=True, slots=True, kw_only=True)
class Egress(ChainEvent):
    origin: bytes
    seq: int
    topic: bytes
    payload: bytes


@record("ev.egress_rejected")
@dataclass(frozen=True, slots=True, kw_only=True)
class EgressRejected(ChainEvent):
    origin: bytes
    seq: int
    topic: bytes
