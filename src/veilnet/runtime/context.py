"""What every system of the core works on: config, replicated state, keys, outbox, engine.
One ``CoreContext`` per core; systems are functions over it, the facade owns it."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

from veilnet.crypto import SecretKey
from veilnet.protocol.chain import HeaderFields
from veilnet.runtime import constants
from veilnet.runtime.config import CoreConfig
from veilnet.runtime.egress import Outbox
from veilnet.runtime.interfaces import AgentEngine, Platform, QuoteVerifier
from veilnet.runtime.keyring import KeyRing
from veilnet.runtime.llm import GatewayTrust
from veilnet.runtime.records import WorkerStanding
from veilnet.runtime.replicated import ReplicatedState
from veilnet.runtime.state import Journal
from veilnet.runtime.tls import client_context


@dataclass(slots=True)
class Savepoint:
    """What a failed block restores: the state's containers, keys, egress and caches."""

    state: ReplicatedState
    keys: tuple[Any, ...]
    pending: int
    agents: dict[bytes, object]


class CoreContext:
    """The working parts of one core. Only ``apply_block`` (through a savepoint) changes them."""

    __slots__ = (
        "_egress_context",
        "agents",
        "boot_id",
        "certified",
        "commitment_rows",
        "config",
        "engine",
        "executions",
        "gateway_trust",
        "journal",
        "keys",
        "keys_arrived",
        "keys_generated",
        "now",
        "outbox",
        "pccs_cache",
        "platform",
        "query_snapshots",
        "served_snapshots",
        "state",
        "verifier",
    )

    def __init__(
        self,
        *,
        config: CoreConfig,
        keys: KeyRing,
        platform: Platform,
        engine: AgentEngine,
        verifier: QuoteVerifier,
    ) -> None:
        self.config = config
        self.keys = keys
        self.platform = platform
        self.engine = engine
        self.verifier = verifier
        self.journal = Journal()
        self.state = ReplicatedState()
        self.outbox = Outbox(config.domain, self.state.counters)
        self.keys_generated = False
        """This block drew a master key or a rotation proposal from TEE entropy: the host must
        store the sealed keys (``EnclaveCore.generated_keys``) before it posts the egress."""
        self.keys_arrived: list[bytes] = []
        """Clusters whose keys just arrived: the dispatcher drains their held-back events."""
        self.agents: dict[bytes, object] = {}
        """Loaded agent code by contract id (a cache: dropped on upgrade or rollback)."""
        self.boot_id = platform.random_bytes(32)
        """Fresh for every boot or restore: the Registry tells two live copies apart by it."""
        self.certified: dict[int, bytes] = {}
        """Under ``rpc-quorum``: block hashes this core certified itself, above its head (never
        replicated or sealed; a restart certifies again)."""
        self.query_snapshots: dict[bytes, Any] = {}
        """Per cluster, the snapshot queries share until the next block."""
        self.served_snapshots: dict[bytes, dict[bytes, tuple[object, Any]]] = {}
        """Per cluster, contract id → (its record, its last query snapshot): the next block's
        snapshot reuses a contract's when its record, state view, secrets and key are the same
        objects or values (a cluster of many idle agents rebuilt them all every block)."""
        self.commitment_rows: dict[bytes, tuple[object, bytes, bytes, bytes, bytes]] = {}
        """Contract id → (its record, that record's digest, its state digest, its runtime
        digest, the encoded commitment row of these): a commitment re-encodes only the rows
        whose record object or digests changed."""
        self.pccs_cache: dict[bytes, bytes] = {}
        """Gatekeepers: collateral fetched from the network's PCCS by quote hash, posted with
        the next block (``collateral``; never replicated or sealed: a restart fetches again)."""
        self._egress_context: ssl.SSLContext | None = None
        self.executions: dict[bytes, HeaderFields] = {}
        """The verified headers of recent blocks by hash: the state root and block context
        ``evm.call`` runs against (never replicated; a restart knows the blocks after it)."""
        self.gateway_trust = GatewayTrust()
        """The inference gateway this core verified for ``llm.chat`` (queries only)."""
        self.now = 0
        """Timestamp of the block being applied (set by the dispatcher before its events):
        endorsements are judged against it, so every replica decides alike."""

    def remember_execution(self, fields: HeaderFields) -> None:
        """Keep a verified header for ``evm.call`` (the newest ``MAX_EXECUTIONS``)."""
        self.executions[fields.hash] = fields
        while len(self.executions) > constants.MAX_EXECUTIONS:
            del self.executions[next(iter(self.executions))]

    @property
    def egress_context(self) -> ssl.SSLContext:
        """The TLS client context agents' ``http.fetch`` checks servers with: the network's
        egress roots, or the Mozilla roots the enclave image carries (``certifi``, pinned and
        measured with the image), never the host's system store."""
        if self._egress_context is None:
            roots = self.config.egress_roots
            if not roots:
                import certifi

                roots = certifi.contents().encode("ascii")
            self._egress_context = client_context(roots)
        return self._egress_context

    # ---- transactions ------------------------------------------------------------------

    def begin(self) -> Savepoint:
        self.journal.begin()
        self.keys_generated = False
        return Savepoint(
            state=self.state.savepoint(),
            keys=self.keys.savepoint(),
            pending=len(self.outbox.pending),
            agents=dict(self.agents),
        )

    def commit(self) -> None:
        self.journal.commit()

    def rollback(self, savepoint: Savepoint) -> None:
        self.journal.rollback()
        self.set_state(savepoint.state)
        self.keys.restore(savepoint.keys)
        del self.outbox.pending[savepoint.pending :]
        self.agents = savepoint.agents
        self.keys_arrived.clear()
        self.query_snapshots.clear()

    def set_state(self, state: ReplicatedState) -> None:
        self.state = state
        self.outbox.counters = state.counters

    # ---- facts every system asks ---------------------------------------------------------

    @property
    def address(self) -> bytes:
        return self.keys.identity.address.raw

    def is_gatekeeper(self) -> bool:
        return self.address in self.state.gatekeepers

    def master_key(self) -> SecretKey | None:
        """The current master key, if this gatekeeper holds it."""
        master = self.state.master
        if master is None:
            return None
        key = self.keys.masters.get(master.rotation)
        if key is not None and key.address.raw == master.key_address:
            return key
        return None

    def endorsed(self, worker: bytes) -> bool:
        """Whether ``worker`` may hold keys at this block: endorsed with a confidence the
        network accepts, the endorsement not expired at this block's time, its measurement
        still allowed, not flagged. Every replica decides
        this from replicated state alone, so all of them wrap (or withhold) alike."""
        info = self.state.workers.get(worker)
        return (
            info is not None
            and info.standing in (WorkerStanding.ENDORSED, WorkerStanding.REATTESTING)
            and info.valid_until > self.now
            and 1 <= info.confidence <= self.config.max_confidence_level
            and info.measurement in self.state.measurements
            and worker not in self.state.flagged
        )

    def serves(self, cluster_id: bytes) -> bool:
        """Whether this worker keeps the cluster's contract state: an endorsed member."""
        cluster = self.state.clusters.get(cluster_id)
        return (
            cluster is not None and self.address in cluster.members and self.endorsed(self.address)
        )
