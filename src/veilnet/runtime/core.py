"""The enclave core: a thin facade over the systems, applying each finalized block all-or-nothing.
Sans-IO: ``apply_block`` takes a Block and returns egress messages; the host does all I/O.

Theory of operation
-------------------
Replicated state (``replicated.ReplicatedState``: registry view, contract states, nonces, outcomes,
egress counters) is a pure function of the finalized events in (block, log) order. Every replica of
a cluster computes the same state and the same numbered egress stream; whichever replica holds the
origin's key signs, the Bus accepts the first copy of each (origin, seq), and every replica then
acts on what landed.

Keys (``KeyRing``) are private to one worker. Decisions never depend on which keys a replica
holds, only their content does: a replica that lacks a key still advances the origin's counter.

Each system is one module with its handler table: ``registry`` (measurements, registrations),
``gatekeeper`` (master key, history, endorsements), ``rotation``, ``clusters`` (membership, key
epochs), ``contracts`` (deploy, init, commands), ``agents`` (the host API), ``queries``,
``commitments`` and ``checkpoints``; ``dispatch`` routes events to them.

Failure discipline: a block is applied inside a savepoint (as execution-specs wraps a transaction
in ``begin_transaction`` / ``rollback_transaction``): any exception restores the state, the keys,
the egress counters and the caches as they were, so the host can retry the same core. A bad
command records a typed failure outcome and changes nothing else; a malformed event is ignored.
"""

from __future__ import annotations

from collections.abc import Sequence

from veilnet.crypto import SecretKey, TransactionSigner, keccak
from veilnet.protocol import events as ev
from veilnet.protocol import limits
from veilnet.protocol.chain import POLICY_RPC_QUORUM, ChainBlock
from veilnet.protocol.egress import EgressMessage
from veilnet.protocol.registration import (
    RegistrationRequest,
    TEEKind,
    attestation_report_data,
    check_api_url,
    reattest_worker_calldata,
    register_worker_calldata,
    registration_report_data,
)
from veilnet.runtime import (
    checkpoints,
    collateral,
    commitments,
    dispatch,
    jobs,
    lightclient,
    queries,
    quorum,
    sync,
)
from veilnet.runtime.agents import QueryIO
from veilnet.runtime.config import CoreConfig
from veilnet.runtime.context import CoreContext
from veilnet.runtime.errors import NotReady
from veilnet.runtime.interfaces import AgentEngine, Platform, QuoteVerifier
from veilnet.runtime.keyring import KeyRing, open_keyring, seal_keyring
from veilnet.runtime.queries import PreparedQuery
from veilnet.runtime.records import ClusterInfo, ContractInfo, WorkerInfo, WorkerStanding
from veilnet.runtime.replicated import ContractRuntime, ReplicatedState
from veilnet.runtime.tls import Relay

__all__ = ["CoreConfig", "EnclaveCore", "PreparedQuery", "QueryIO"]


class EnclaveCore:
    """The trusted core of one worker. Build with ``boot`` (fresh or from sealed identity) or
    ``restore`` (from a checkpoint)."""

    def __init__(
        self,
        *,
        config: CoreConfig,
        keys: KeyRing,
        platform: Platform,
        engine: AgentEngine,
        verifier: QuoteVerifier,
    ) -> None:
        self._core = CoreContext(
            config=config, keys=keys, platform=platform, engine=engine, verifier=verifier
        )
        self._replay = queries.ReplayCache()

    # ------------------------------------------------------------------ construction --------

    @classmethod
    def boot(
        cls,
        *,
        config: CoreConfig,
        platform: Platform,
        engine: AgentEngine,
        verifier: QuoteVerifier,
        sealed_identity: bytes | None = None,
    ) -> EnclaveCore:
        """A fresh core: a new identity from TEE entropy, or the sealed one of an earlier run.

        Raises:
            CheckpointInvalid: the sealed identity does not open on this platform and network.
        """
        if sealed_identity is None:
            identity = SecretKey.generate(platform.random_bytes(32))
        else:
            identity = checkpoints.unseal_identity(sealed_identity, platform, config)
        core = cls(
            config=config,
            keys=KeyRing(identity),
            platform=platform,
            engine=engine,
            verifier=verifier,
        )
        return core

    @classmethod
    def restore(
        cls,
        blob: bytes,
        *,
        config: CoreConfig,
        platform: Platform,
        engine: AgentEngine,
        verifier: QuoteVerifier,
    ) -> EnclaveCore:
        """Rebuild a core from ``checkpoint()`` output. Raises CheckpointInvalid."""
        identity, key, body = checkpoints.split_checkpoint(blob)
        core = cls.boot(
            config=config,
            platform=platform,
            engine=engine,
            verifier=verifier,
            sealed_identity=identity,
        )
        checkpoints.restore_into(core._core, key, body)
        return core

    def sealed_identity(self) -> bytes:
        """The identity key sealed to this platform (the host stores it next to checkpoints)."""
        core = self._core
        return checkpoints.seal_identity(core.keys.identity, core.platform, core.config)

    # ------------------------------------------------------------------ registration -------

    def registration(self, operator: bytes, *, api_url: str = "") -> RegistrationRequest:
        """Quote and fields for ``Registry.register_worker``, bound by report_data to this
        registration and to the core's head (a recent block: the Registry refuses one more than
        256 blocks old, so a core still catching up registers once it is near the head).
        ``api_url``: where the host serves this worker's API (``check_api_url``; ValueError)."""
        core = self._core
        hpke_key = core.keys.identity.public.x25519
        head = core.state.head
        trust = core.config.chain_trust
        attested_block, attested_hash = (
            (trust.anchor_number, trust.anchor_hash) if head is None else (head.number, head.hash)
        )
        report_data = registration_report_data(
            worker=self.address,
            operator=operator,
            hpke_key=hpke_key,
            chain_id=core.config.chain_id,
            registry=core.config.registry,
            config_digest=core.config.config_digest,
            attested_hash=attested_hash,
        )
        collateral = core.platform.collateral()
        return RegistrationRequest(
            worker=self.address,
            operator=operator,
            hpke_key=hpke_key,
            tee_kind=int(TEEKind.parse(core.platform.kind)),
            measurement=core.platform.measurement,
            quote=core.platform.quote(report_data),
            collateral=collateral,
            collateral_hash=keccak(collateral),
            attested_block=attested_block,
            api_url=check_api_url(api_url),
        )

    def registration_transaction(
        self,
        operator: bytes,
        *,
        nonce: int,
        gas: int,
        max_fee_per_gas: int,
        max_priority_fee_per_gas: int,
        reattest: bool = False,
        deposit: int = 0,
        api_url: str = "",
    ) -> tuple[RegistrationRequest, bytes]:
        """This identity's ``Registry.register_worker`` transaction (or, with ``reattest``, its
        ``Registry.reattest_worker`` with a fresh quote of the same registration), built and
        signed here.

        The identity key signs no other transaction: the calldata (HPKE key, a fresh quote, the
        measurement) comes from this core; the host chooses only what the chain needs to include
        it. Raises ValueError for values no chain would take.
        """
        if not 21_000 <= gas <= limits.MAX_REGISTRATION_GAS:
            raise ValueError(f"gas must be within 21000..{limits.MAX_REGISTRATION_GAS}")
        if not 0 <= max_priority_fee_per_gas <= max_fee_per_gas or nonce < 0:
            raise ValueError("fees and nonce must be non-negative, the tip at most the fee cap")
        if not 0 <= deposit <= limits.MAX_REGISTRATION_DEPOSIT:
            raise ValueError(f"the deposit must be within 0..{limits.MAX_REGISTRATION_DEPOSIT}")
        if reattest:  # a fresh quote is judged under fresh collateral, valid for longer
            self._core.platform.renew_collateral()
        request = self.registration(operator, api_url=api_url)
        data = (reattest_worker_calldata if reattest else register_worker_calldata)(request)
        signer = TransactionSigner(self.keys.identity._private_scalar())
        raw, _ = signer.sign_eip1559(
            chain_id=self.config.chain_id,
            nonce=nonce,
            to=self.config.registry,
            value=deposit,
            data=data,
            gas=gas,
            max_fee_per_gas=max_fee_per_gas,
            max_priority_fee_per_gas=max_priority_fee_per_gas,
        )
        return request, raw

    # ------------------------------------------------------------------ blocks -------------

    def apply_block(self, block: ChainBlock) -> list[EgressMessage]:
        """Prove one raw block and apply it, all or nothing; return the egress messages to post.

        Raises:
            BlockRejected: the block does not extend the applied chain from the trust anchor
                (or this core's head). BlockUnproven: its header, receipts or logs do not prove
                out. FinalityUnproven: the chain-trust policy does not certify it.
            NotReady, SandboxError, …: whatever a system raised; in every case the core is
            exactly as it was before the call (state, keys, egress counters, caches).
        """
        core = self._core
        savepoint = core.begin()
        try:
            dispatch.apply_block(core, block)
        except BaseException:
            core.rollback(savepoint)
            raise
        core.commit()
        return core.outbox.drain()

    def ask_quorum(self, numbers: Sequence[int], relay: Relay) -> dict[int, bytes]:
        """Under ``rpc-quorum``: ask the policy's HTTPS endpoints, through ``relay`` (which
        carries only ciphertext), for the hashes of ``numbers`` above the head. Changes nothing
        in the core, so a caller runs this I/O outside its lock and ``keep_certified`` inside.

        Returns the {number: hash} k of n agree on. Raises QuorumNotReached (none certified),
        ValueError (not an rpc-quorum network, or too many numbers).
        """
        core = self._core
        trust = core.config.chain_trust
        if trust.policy != POLICY_RPC_QUORUM:
            raise ValueError("this network's chain-trust policy is not rpc-quorum")
        head = core.state.head
        floor = trust.anchor_number if head is None else head.number
        wanted = [n for n in numbers if n > floor]
        if not wanted:
            return {}
        return quorum.certify(
            lightclient.quorum_policy(trust),
            chain_id=core.config.chain_id,
            numbers=wanted,
            relay=relay,
            at=trust.anchor_timestamp if head is None else head.timestamp,
        )

    def keep_certified(self, found: dict[int, bytes]) -> None:
        """Remember hashes ``ask_quorum`` certified, above the head (bounded), for
        ``apply_block``."""
        core = self._core
        head = core.state.head
        floor = core.config.chain_trust.anchor_number if head is None else head.number
        lightclient.remember_certified(core.certified, found, floor)

    # ------------------------------------------------------------------ collateral ---------

    @property
    def collateral_wanted(self) -> bool:
        """This gatekeeper should fetch collateral from the PCCS (``fetch_collateral``)."""
        return bool(collateral.wanted(self._core))

    def fetch_collateral(self, relay: Relay) -> tuple[dict[bytes, bytes], list[str]]:
        """Fetch the collateral of the registrations this gatekeeper must judge from the
        network's PCCS, over TLS that ends here (``relay`` carries ciphertext only). Changes
        nothing in the core, so a caller runs this I/O outside its lock and
        ``keep_collateral`` inside. Returns ({quote hash: collateral}, failure reasons)."""
        return collateral.fetch(self._core, relay)

    @property
    def collateral_held(self) -> int:
        """Registrations whose fetched collateral waits for the next block to be posted."""
        return len(self._core.pccs_cache)

    def keep_collateral(self, found: dict[bytes, bytes]) -> None:
        """Hold ``fetch_collateral`` results; the next block posts them."""
        collateral.keep(self._core, found)

    # ------------------------------------------------------------------ queries ------------

    def query(self, request: bytes, *, io: QueryIO | None = None) -> bytes:
        """Answer an encrypted query on the committed state; never changes replicated state.

        The same as ``run_query(prepare_query(request), io=io)``; a host that applies blocks on
        another thread calls ``prepare_query`` under its lock and ``run_query`` outside it.

        Raises:
            QueryRejected: malformed request, bad or expired certificate, replayed request id.
            ContractUnavailable / NotReady / KeyEpochExpired: as their names say.
        """
        return self.run_query(self.prepare_query(request), io=io)

    def prepare_query(self, request: bytes) -> PreparedQuery:
        """Check and open a query, and snapshot the committed state it may read (fast)."""
        return queries.prepare(self._core, self._replay, request)

    def run_query(self, prepared: PreparedQuery, *, io: QueryIO | None = None) -> bytes:
        """Run a prepared query on its snapshot, then encrypt and sign the answer."""
        return queries.run(self._core, prepared, io=io)

    # ------------------------------------------------------------------ attestation --------

    def take_jobs(self) -> list[jobs.PreparedJob]:
        """The job requests of served agents queued by the blocks applied so far, each with
        the committed state it reads and the key that signs it (fast: call under the lock)."""
        return jobs.take(self._core)

    def run_job(self, prepared: jobs.PreparedJob, *, io: QueryIO | None = None) -> jobs.JobResult:
        """Run one taken job and sign its result (touches no mutable core state)."""
        return jobs.run(self._core, prepared, io=io)

    def attest(self, nonce: bytes) -> bytes:
        """A quote binding this worker's address, the nonce and the configuration digest
        (``attestation_report_data``)."""
        if len(nonce) != 32:
            raise ValueError("nonce must be 32 bytes")
        return self._core.platform.quote(self.attestation_report_data(nonce))

    def attestation_report_data(self, nonce: bytes) -> bytes:
        return attestation_report_data(
            worker=self.address, nonce=nonce, config_digest=self.config.config_digest
        )

    # ------------------------------------------------------------------ checkpoints --------

    def checkpoint(self) -> bytes:
        """The whole core state, sealed under a key drawn for this checkpoint alone."""
        if self._core.state.head is None:
            raise NotReady("nothing to checkpoint before the first block")
        return checkpoints.checkpoint(self._core)

    def state_root(self) -> bytes:
        """Digest of the replicated state replicas of one cluster must agree on."""
        if self._core.state.head is None:
            raise NotReady("no block applied yet")
        return checkpoints.state_root(self._core)

    def cluster_commitment(self, cluster_id: bytes) -> bytes | None:
        """Keyed hash over the digests of the cluster's contract states (None without the key)."""
        return commitments.cluster_commitment(self._core, cluster_id)

    def generated_keys(self) -> bytes | None:
        """After a block that drew a key from TEE entropy (a master key, a rotation proposal, an
        encryption key) or destroyed one: the master keys, proposals and encryption keys,
        sealed, for the host to store in place of the previous blob before it posts that
        block's egress (a boot hands them back, so a replay reuses them instead of drawing
        others). None after any other block."""
        core = self._core
        if not core.keys_generated:
            return None
        # under a key drawn for this blob and sealed to the platform: a leaked identity key
        # must not open the keys drawn after the leak
        return seal_keyring(core.keys, core.platform, self._keys_aad(), clusters=False)

    def _keys_aad(self) -> bytes:
        return b"veil/v1/generated-keys" + self.config.identity_aad + self.address

    def import_keys(self, sealed: bytes) -> None:
        """Take back ``generated_keys()`` output of this identity (a boot without checkpoint).

        Raises:
            CheckpointInvalid: the blob does not open under this identity.
        """
        open_keyring(self._core.keys, self._core.platform, sealed, self._keys_aad())

    # ------------------------------------------------------------------ late join ----------

    def export_snapshot(self, joiner: bytes) -> bytes:
        """This member's newest capture of ``joiner``'s cluster, sealed to the joiner
        (``veilnet.runtime.sync``); changes nothing.

        Raises:
            SnapshotRefused: the joiner does not sync, or this worker has nothing to give it.
        """
        return sync.export_snapshot(self._core, joiner)

    def import_snapshot(self, blob: bytes) -> tuple[int, list[EgressMessage]]:
        """Take the state of the cluster this worker joined, all or nothing, and apply what it
        held back since; returns the snapshot's height and the egress to post.

        Raises:
            SnapshotRefused: not due, malformed, not sealed to this worker, or not what the
                cluster committed to; NotReady, SandboxError, …: applying a held-back event
                failed. In every case the core is exactly as it was.
        """
        core = self._core
        savepoint = core.begin()
        try:
            if core.state.head is not None:
                core.now = core.state.head.timestamp
            height = sync.import_snapshot(core, blob)
            while core.keys_arrived:
                dispatch.drain_buffer(core, core.keys_arrived.pop(0))
        except BaseException:
            core.rollback(savepoint)
            raise
        core.commit()
        return height, core.outbox.drain()

    # ------------------------------------------------------------------ read-only views ----
    # The host reads these under its lock; the enclave-boundary issue replaces them with
    # frozen views that cross a bytes-only interface.

    @property
    def address(self) -> bytes:
        return self._core.address

    @property
    def config(self) -> CoreConfig:
        return self._core.config

    @property
    def keys(self) -> KeyRing:
        return self._core.keys

    @property
    def platform(self) -> Platform:
        return self._core.platform

    @property
    def engine(self) -> AgentEngine:
        return self._core.engine

    @property
    def verifier(self) -> QuoteVerifier:
        return self._core.verifier

    @property
    def state(self) -> ReplicatedState:
        return self._core.state

    @property
    def head(self) -> ev.BlockHeader | None:
        return self._core.state.head

    @property
    def workers(self) -> dict[bytes, WorkerInfo]:
        return self._core.state.workers

    @property
    def clusters(self) -> dict[bytes, ClusterInfo]:
        return self._core.state.clusters

    @property
    def contracts(self) -> dict[bytes, ContractInfo]:
        return self._core.state.contracts

    @property
    def runtimes(self) -> dict[bytes, ContractRuntime]:
        return self._core.state.runtimes

    def is_endorsed(self, worker: bytes) -> bool:
        """Whether ``worker`` may hold keys at the applied head (``CoreContext.endorsed``)."""
        return self._core.endorsed(worker)

    @property
    def sealed_height(self) -> int:
        """Head of the newest checkpoint this identity sealed, as far as this core knows."""
        return self._core.state.sealed_height

    @property
    def boot_id(self) -> bytes:
        return self._core.boot_id

    @property
    def snapshot_due(self) -> bytes | None:
        """The cluster whose state this worker waits for (it joined with history), if any."""
        return next(iter(sorted(self._core.state.snapshot_due)), None)

    @property
    def diverged(self) -> list[str]:
        return self._core.state.diverged

    @property
    def reattest_due(self) -> bool:
        """This worker is endorsed and its endorsement expires within ``REATTEST_MARGIN_S`` of
        its head's time (also while a re-attestation is pending: one that never gets judged,
        say its collateral was lost in a restart, is simply sent again)."""
        core = self._core
        me = core.state.workers.get(core.address)
        head = core.state.head
        return (
            me is not None
            and head is not None
            and me.standing in (WorkerStanding.ENDORSED, WorkerStanding.REATTESTING)
            and me.valid_until - head.timestamp <= limits.REATTEST_MARGIN_S
        )

    @property
    def diverged_at(self) -> int | None:
        """The newest height at which the Registry found this worker's state against its
        cluster's majority (it serves nothing since), or None."""
        return self._core.state.divergences.get(self._core.address)
