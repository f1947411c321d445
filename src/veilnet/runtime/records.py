"""The records of the replicated registry view: workers, master key, rotation, clusters, contracts.
All frozen: a system replaces a record instead of editing it, which keeps block rollback cheap."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from veilnet.crypto import SecretKey, Suite

__all__ = [
    "ClusterInfo",
    "ContractInfo",
    "EpochInfo",
    "MasterKeyInfo",
    "RotationPhase",
    "RotationState",
    "SyncInfo",
    "WorkerInfo",
    "WorkerStanding",
]


class WorkerStanding(enum.StrEnum):
    """Where a registration stands, as every replica sees it.

    ``PENDING`` (registered, collateral not yet on chain) → ``JUDGED`` (the gatekeepers' verdict
    was computed; endorsed or not) → ``ENDORSED`` (a ``WorkerEndorsed`` with confidence ≥ 1).
    A ``WorkerEndorsed`` with confidence 0 moves an endorsed worker back to ``JUDGED``; a new
    registration starts again at ``PENDING``. A re-attestation of an endorsed worker moves it
    to ``REATTESTING`` (still endorsed) until its fresh quote is judged: accepted extends the
    endorsement, refused ends it.
    """

    PENDING = "pending"
    JUDGED = "judged"
    ENDORSED = "endorsed"
    REATTESTING = "reattesting"


class RotationPhase(enum.StrEnum):
    """The master-key rotation lifecycle (transitions in ``veilnet.runtime.rotation``)."""

    IDLE = "idle"
    LOCKED = "locked"
    """The rotation lock is taken; no proposal has landed yet."""
    PROPOSED = "proposed"
    """A proposal landed (the first one wins); gatekeepers confirm it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerInfo:
    operator: bytes
    hpke_key: bytes
    tee_kind: int
    measurement: bytes
    quote_hash: bytes
    collateral_hash: bytes
    quote: bytes
    confidence: int = 0
    standing: WorkerStanding = WorkerStanding.PENDING
    cluster: bytes | None = None
    valid_until: int = 0
    """Block time (unix seconds) the endorsement holds until (``WorkerEndorsed.valid_until``)."""
    attested_hash: bytes = b""
    """The recent block hash the current quote binds (the chain checked its recency)."""
    registration: bytes = b""
    """The Registry's digest of this registration (every field and a count): what an
    endorsement names, so it never carries over to a later registration."""
    encryption_key: bytes = b""
    """Its newest encryption key on chain (``WorkerKeyPublished``): the only key anything is
    wrapped to. Empty until it publishes one after (re-)registering."""
    encryption_index: int = 0
    """The number of that key (never reset: a number names one key for good)."""
    endorsing: bool = False
    """A verdict on its quote was sent from the master origin and has not landed: if the master
    rotates first, the Registry refuses it, and every core judges the quote again."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EpochInfo:
    key_address: bytes
    public_key: bytes
    keyed_at: int
    """Block number at which this epoch was keyed on chain."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MasterKeyInfo:
    """The current master key on chain."""

    rotation: int
    key_address: bytes
    public_key: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class RotationState:
    """The open rotation, if any: its number and the proposal that landed for it."""

    phase: RotationPhase = RotationPhase.IDLE
    rotation: int = 0
    proposer: bytes = b""
    key_address: bytes = b""
    attempt: int = 0
    """The Registry's attempt number (``RotationLocked``): what possession proofs sign."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterInfo:
    owner: bytes
    suite: int = 1
    """HPKE suite of the keys this cluster publishes (its own and its contracts'): 1 X25519,
    2 ML-KEM-768 + X25519. The secret keys are the same; only the public half posted differs."""
    members: tuple[bytes, ...] = ()
    epochs: Mapping[int, EpochInfo] = field(default_factory=dict)
    current_epoch: int = 0
    master_rotation: Mapping[int, int] = field(default_factory=dict)
    """Which master rotation each cluster epoch was derived from (gatekeepers' bookkeeping)."""
    has_history: bool = False
    """Whether any contract event of this cluster has been applied (for late joiners)."""

    def published_key(self, key: SecretKey) -> bytes:
        """The public half this cluster posts for its own key or a contract key: that of its
        suite (a hybrid key costs the same gas: the Registry stores hashes)."""
        if self.suite == Suite.MLKEM768_X25519_SHA256_AES256GCM:
            return key.public.mlkem768_x25519
        return key.public.x25519


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleInfo:
    """A standing job (``JobScheduled``): every ``every`` blocks after ``start``."""

    contract_id: bytes
    consumer: bytes
    every: int
    start: int
    payload: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ContractInfo:
    cluster: bytes
    owner: bytes
    controller: bytes
    code_hash: bytes
    code: bytes
    init_args: bytes
    paused: bool = False
    epoch: int = 0
    """Cluster epoch this contract is keyed at (0 = not yet keyed)."""
    epochs: Mapping[int, EpochInfo] = field(default_factory=dict)
    """Every epoch this contract has been keyed at (from cluster keying)."""
    initialized: bool = False
    egress_hosts: tuple[str, ...] = ()
    """Host names its ``http.fetch`` may reach (``EgressHostSet``), sorted; default deny."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncInfo:
    """A member that joined a cluster with history and has not posted a commitment since: it
    waits for a state snapshot (``veilnet.runtime.sync``) and counts in no verdict."""

    cluster: bytes
    joined_at: int
    """Block of its ``ClusterWorkerAdded``: a snapshot of any later commitment height fits."""
    from_epoch: int
    """The first cluster epoch it may be given: the one keyed for its join. Earlier epochs
    protected what was sent before it joined."""
