"""Where the worker's HTTP API meets its host: the ``WorkerService`` Protocol the API calls and
the frozen views of core state the host builds under its lock (the API never sees the core)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from veilnet.crypto import Address
from veilnet.worker.config import WorkerConfig
from veilnet.worker.metrics import WorkerMetrics

__all__ = [
    "AttestationView",
    "ClusterView",
    "ContractView",
    "HealthView",
    "WorkerInfoView",
    "WorkerService",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthView:
    """``GET /v1/health``: whether the worker serves, and why not."""

    status: str
    """``"starting"``, ``"catching_up"``, ``"syncing"`` (waiting for its cluster's state by
    snapshot), ``"ok"`` (serving), ``"diverged"`` or ``"halted"``."""
    applied_block: int | None
    chain_head: int | None
    registered: bool
    boot_id: bytes | None = None
    """The core's boot id, which queries must name (None before the core booted)."""
    diverged_at: int | None = None
    """The height at which the Registry found this worker's state against its cluster's
    majority (``ReplicaDiverged``); it serves nothing until it registers again."""
    rejected_code: str | None = None
    """The code of the last block the core refused (``runtime_block_unproven``,
    ``runtime_finality_unproven``, ``runtime_block_rejected``), None once one applies: the node
    or host fed it chain data that does not prove out, and the worker does not move past it."""
    rejected_block: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterView:
    """One cluster the core knows, and what this worker holds of it."""

    cluster_id: bytes
    is_member: bool
    state_commitment: bytes | None
    """The keyed commitment over the cluster's contract states; None unless a member with keys."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerInfoView:
    """``GET /v1/info``: identity, network, TEE and the applied head, taken at one instant."""

    name: str
    address: Address
    operator: Address
    chain_id: int
    registry: Address
    bus: Address
    tee: str
    measurement: bytes
    clusters: tuple[ClusterView, ...]
    """Every cluster the core knows, by id."""
    cluster: bytes | None
    """The cluster the Registry puts this worker in (None: unclustered or unknown)."""
    confidence: int | None
    last_applied_block: int | None
    last_applied_hash: bytes | None
    status: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ContractView:
    """``GET /v1/contracts/{id}``: the public facts of one agent contract."""

    contract_id: bytes
    cluster: bytes
    owner: Address
    controller: Address
    code_hash: bytes
    paused: bool
    epoch: int
    public_key: bytes
    """The current epoch's HPKE key (empty before the first contract key)."""
    key_address: Address | None


@dataclass(frozen=True, slots=True, kw_only=True)
class AttestationView:
    """``GET /v1/attestation``: a quote over (identity, nonce) with its collateral."""

    address: Address
    quote: bytes
    collateral: bytes
    """The platform's collateral document (JSON)."""
    report_data: bytes


class WorkerService(Protocol):
    """What the HTTP API needs from a worker host; every read is a consistent snapshot.

    Raises (from every method): ``NotReady`` before the host started; the core's errors from
    ``query_async``; ``ContractUnavailable`` from ``contract`` for an unknown id.
    """

    @property
    def config(self) -> WorkerConfig: ...

    @property
    def metrics(self) -> WorkerMetrics: ...

    def health(self) -> HealthView: ...

    def info(self) -> WorkerInfoView: ...

    def contract(self, contract_id: bytes) -> ContractView: ...

    def attest(self, nonce: bytes) -> AttestationView: ...

    async def query_async(self, request: bytes) -> bytes:
        """Answer one encrypted query (``POST /v1/query``) on the API's event loop, holding
        no thread while the core works."""
        ...

    def snapshot(self, joiner: bytes) -> bytes:
        """The cluster state this member captured for ``joiner``, sealed to the joiner: only
        the joiner's core opens it (``SnapshotRefused`` when there is none to give)."""
        ...
