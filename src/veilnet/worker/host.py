"""``WorkerHost``: the untrusted host around one enclave core. It follows the chain, feeds final
blocks to the core, relays its egress, stores sealed checkpoints and serves the HTTP API.

Theory of operation
-------------------
``start()`` boots the core: from the newest valid checkpoint (and resumes the follower right
after the checkpoint's block), else from the sealed identity of an earlier run, else with a new
identity; without a checkpoint it replays the chain from the deployment's genesis block. Then
one thread loops: register the identity if the Registry does not know it, ask the node for its
head, apply every newly final block under the core lock, and hand the egress to the relay
thread. A checkpoint is written every ``checkpoint_every`` blocks, but only once the relay has
settled every egress message of the blocks it covers: after a crash, the replay from that
checkpoint regenerates whatever was not yet on chain, and the relay skips messages whose
sequence number the Bus has already used, so nothing is lost and nothing is applied twice.

The core lives in an enclave process (``veil enclave serve``) that the host starts and reaches
only through the bytes-only interface of ``veilnet.protocol.enclave``: it hands in blocks and
query envelopes and gets back egress, sealed answers, quotes and sealed checkpoints; it never
holds a core object (``enclave_mode="local"`` serves the same interface in-process, for tests).

A core that joined a cluster with history waits for the cluster's state (``snapshot_due``):
the host asks the members it finds on chain for a snapshot (``/v1/snapshots/{address}``),
sealed to this worker's core, and hands each to the core until one checks out against the
cluster's verdict. The host sees only ciphertext and decides nothing.
The worker serves queries only while its applied head is within ``max_lag_blocks`` of the
node's final head.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
from eth_account import Account

from veilnet.chain import EgressRelay, Follower, JSONRPCClient, Network, RelayJournal
from veilnet.chain import model as cm
from veilnet.chain.constants import KIND_NONE, KIND_WORKER
from veilnet.chain.errors import ContractReverted
from veilnet.chain.proofs import state_witness
from veilnet.chain.rpc import from_quantity
from veilnet.chain.transactions import (
    balance_of,
    register_worker_transaction,
    send_raw_transaction,
    transaction_cost,
)
from veilnet.codec import CodecError
from veilnet.crypto import Address
from veilnet.errors import VeilnetError
from veilnet.protocol import enclave as wire
from veilnet.protocol.chain import POLICY_SEQUENCER
from veilnet.protocol.errors import (
    BlockRejected,
    CheckpointInvalid,
    FinalityUnproven,
    NotReady,
    QuorumNotReached,
    SnapshotRefused,
)
from veilnet.protocol.events import BlockHeader
from veilnet.worker._jobs import JobWorker
from veilnet.worker._relay import RelayWorker
from veilnet.worker.api import APIServer, create_app
from veilnet.worker.config import WorkerConfig
from veilnet.worker.constants import (
    COLLATERAL_RETRY_S,
    ERROR_BACKOFF_S,
    GATEWAY_TIMEOUT_S,
    IDENTITY_FUNDING_WEI,
    MAX_APPLY_FAILURES,
    REATTEST_RETRY_S,
    REGISTRATION_GAS,
    REGISTRATION_RETRY_S,
    REGISTRATION_TIMEOUT_S,
    ROTATION_CHECK_BLOCKS,
    SNAPSHOT_FETCH_TIMEOUT_S,
)
from veilnet.worker.enclave import Enclave, IOHandler, LocalEnclave, ProcessEnclave
from veilnet.worker.errors import (
    EnclaveUnavailable,
    RegistrationFailed,
    WaitTimeout,
    WorkerConfigInvalid,
    WorkerIOFailed,
)
from veilnet.worker.finality import (
    EvidenceSource,
    QuorumEvidence,
    SequencerEvidence,
    TLSRelayHost,
    chain_block,
)
from veilnet.worker.interfaces import (
    AttestationView,
    ClusterView,
    ContractView,
    HealthView,
    WorkerInfoView,
)
from veilnet.worker.lane import QueryLane
from veilnet.worker.metrics import WorkerMetrics
from veilnet.worker.storage import StoredCheckpoint, WorkerStorage

__all__ = ["WorkerHost"]

_log = logging.getLogger("veilnet.worker")


class WorkerHost:
    """One worker: core, chain follower, egress relay, checkpoints and HTTP API.

    Implements ``WorkerService`` for the API: the views it hands out are built under the core
    lock and share nothing with the core.

    Build with a ``WorkerConfig``; ``start()`` returns once the core is booted and the API
    listens (registration and catching up continue in the background; watch ``status``).
    """

    def __init__(self, config: WorkerConfig) -> None:
        if config.finality_depth < 0 or config.checkpoint_every < 1:
            raise WorkerConfigInvalid("finality_depth must be >= 0 and checkpoint_every >= 1")
        if config.query_threads < 1:
            raise WorkerConfigInvalid("query_threads must be at least 1")
        if not 1 <= config.query_batch <= wire.MAX_QUERY_BATCH:
            raise WorkerConfigInvalid(f"query_batch must be 1 to {wire.MAX_QUERY_BATCH}")
        self.config = config
        self.metrics = WorkerMetrics()
        self.log = logging.LoggerAdapter(_log, {"worker": config.name})
        self.storage = WorkerStorage(config.data_dir, keep=config.keep_checkpoints)
        if config.enclave_mode not in ("process", "local"):
            raise WorkerConfigInvalid("enclave_mode must be 'process' or 'local'")
        if config.enclave_mode == "process" and config.engine is not None:
            raise WorkerConfigInvalid("a shared engine needs enclave_mode='local' (tests only)")
        self.enclave_config = _enclave_config(config)
        self.operator = Address.parse(Account.from_key(config.operator_key).address)
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._enclave: Enclave | None = None
        self._identity: bytes | None = None
        self._boot_id: bytes | None = None
        self.diverged_at: int | None = None
        """Set once the Registry found this worker's state against its cluster's majority (the
        height, from the core): it serves nothing, and ``/v1/health`` says so."""
        self._head: BlockHeader | None = None
        self._sealed_identity: bytes | None = None
        self._follower: Follower | None = None
        self._evidence: EvidenceSource | None = None
        self.rejected: tuple[str, int] | None = None
        """(code, block) of the last block the core refused (a node or host feeding it data
        that does not prove out); cleared once a block applies. Shown by /v1/health."""
        self._chain_head: int | None = None
        self._registered = False
        self._apply_failures = 0
        self._failing_block: int | None = None
        self.halted = False
        """Set when applying blocks kept failing: the worker stops and refuses to serve."""
        self._registration_error: str | None = None
        self._next_registration = 0.0
        self._reattest_due = False
        """The core's last applied block said its endorsement expires soon (``Applied``)."""
        self._next_reattestation = 0.0
        self._last_checkpoint: int | None = None
        self._thread: threading.Thread | None = None
        self._relay: RelayWorker | None = None
        self._jobs: JobWorker | None = None
        self._api: APIServer | None = None
        self._lane: QueryLane | None = None
        self._clients: list[JSONRPCClient] = []
        self._gateway: Any = None
        self._witness_client: JSONRPCClient | None = None
        self.restored_from: int | None = None
        """Block number of the checkpoint this run restored, None if it replayed from genesis."""
        self.syncs = 0
        """Snapshots this run took (late joins)."""
        self._snapshot_due: bytes | None = None
        self._sync_tried_at: int | None = None
        self._collateral_wanted = False
        self._next_collateral_fetch = 0.0
        self._operator: tuple[Network, Any] | None = None
        self._rotation_checked = 0
        self._pccs_relay = TLSRelayHost()
        self.started = False

    # ------------------------------------------------------------------ public surface -----

    @property
    def enclave(self) -> Enclave:
        """The handle on this worker's enclave (bytes only; ``enclave.link`` is a
        ``LocalEnclave`` in local mode, whose ``service.core`` tests may read)."""
        if self._enclave is None:
            raise NotReady("the worker has not started")
        return self._enclave

    @property
    def identity(self) -> bytes:
        """The worker identity address (20 bytes)."""
        if self._identity is None:
            raise NotReady("the worker has not started")
        return self._identity

    @property
    def address(self) -> str:
        """The worker identity address (0x..., checksummed)."""
        return Address(self.identity).hex

    @property
    def api_url(self) -> str:
        if self._api is None:
            raise NotReady("the API is not serving")
        return str(self._api.url)

    def published_url(self) -> str:
        """The API address this worker registers on chain (``WorkerRegistered.api_url``):
        ``public_url`` when configured, else the API's own address unless it listens on a
        wildcard address no client can dial; empty without an API."""
        if self.config.public_url is not None:
            return self.config.public_url
        if self._api is None or self.config.api_host in ("0.0.0.0", "::", ""):  # noqa: S104
            return ""
        return self.api_url

    @property
    def chain_head(self) -> int | None:
        return self._chain_head

    @property
    def applied_block(self) -> int | None:
        head = self._head
        return None if head is None else head.number

    @property
    def registered(self) -> bool:
        return self._registered

    @property
    def lock(self) -> threading.RLock:
        """Held while the core changes; hold it to read core state consistently."""
        return self._lock

    def status(self) -> str:
        """``"starting"``, ``"catching_up"``, ``"syncing"`` (joined a cluster with history and
        waits for its state by snapshot), ``"ok"`` (serving), ``"diverged"`` (the Registry found
        its state against its cluster's) or ``"halted"``."""
        if self.halted:
            return "halted"
        if self.diverged_at is not None:
            return "diverged"
        applied = self.applied_block
        if applied is None or not self._registered:
            return "starting"
        head = self._chain_head
        if head is None or head - self.config.finality_depth - applied > self.config.max_lag_blocks:
            return "catching_up"
        if self._snapshot_due is not None:
            return "syncing"
        return "ok"

    def is_idle(self) -> bool:
        """Applied everything final that the node reported, the relay has nothing pending and
        no job batch is running or being delivered."""
        head, applied = self._chain_head, self.applied_block
        return (
            head is not None
            and applied is not None
            and applied >= head - self.config.finality_depth
            and (self._relay is None or self._relay.is_idle())
            and (self._jobs is None or self._jobs.is_idle())
        )

    def wait_until(self, predicate: Callable[[WorkerHost], bool], *, timeout: float) -> None:
        """Block until ``predicate(host)`` holds (checked under the core lock after each change).

        Raises:
            WaitTimeout: it did not hold within ``timeout`` seconds.
        """
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self), timeout):
                raise WaitTimeout("condition not reached in time", timeout_s=timeout)

    def poke(self) -> None:
        """Poll the chain now instead of after ``poll_interval`` (tests that just mined)."""
        self._wake.set()

    def start(self) -> None:
        """Boot or restore the core, start the relay, the follower thread and the API."""
        if self.started:
            raise RuntimeError("already started")
        cfg = self.config
        self._enclave = Enclave(self._start_enclave())
        self._boot()
        main_client = self._client()
        self._network = Network(main_client, cfg.deployment.addresses)
        relay_client = self._client()
        relay_network = Network(relay_client, cfg.deployment.addresses)
        journal = RelayJournal(self.storage.relay_journal_path)
        operator = relay_network.sender(cfg.operator_key)
        self._operator = (relay_network, operator)  # its nonces are thread-safe
        relay = EgressRelay(relay_network, operator, journal=journal)
        self._relay = RelayWorker(
            relay, journal, metrics=self.metrics, log=self.log, on_settled=self._notify
        )
        self._relay.start()
        self._make_gateway()
        # one connection for every query's evm.call proofs (its transport is thread-safe)
        self._witness_client = self._client()
        # jobs pay gas from the operator too: the same sender, whose nonces are thread-safe
        self._jobs = JobWorker(
            self._run_jobs,
            Network(self._client(), cfg.deployment.addresses),
            operator,
            head=lambda: self._chain_head,
            metrics=self.metrics,
            log=self.log,
            on_settled=self._notify,
        )
        self._jobs.start()
        if cfg.serve_api:
            app = create_app(self)
            self._api = APIServer(app, host=cfg.api_host, port=cfg.api_port)
            self._api.start()
        self._thread = threading.Thread(target=self._run, name=f"veil-{cfg.name}", daemon=True)
        self._thread.start()
        self.started = True
        self.log.info(
            "worker %s started: identity %s, tee %s, enclave %s%s",
            cfg.name,
            self.address,
            self.enclave_config.tee,
            cfg.enclave_mode,
            f", API {self.api_url}" if self._api is not None else "",
        )

    def request_stop(self) -> None:
        """Ask the follower to stop after its current round, without waiting (``stop`` waits).
        Lets a devnet stop every host at once rather than one after another."""
        self._stop.set()
        self._wake.set()

    def stop(self, *, drain_timeout: float = 10.0) -> None:
        """Stop following, let the relay settle, write a final checkpoint, stop the API."""
        if not self.started:
            return
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._relay is not None:
            if self._relay.wait_idle(drain_timeout):
                with self._lock:
                    self._checkpoint(force=True)
            self._relay.stop()
        if self._jobs is not None:
            self._jobs.stop()
        if self._api is not None:
            self._api.stop()
            self._api = None
        self._lane = None  # it belonged to the API's event loop
        for client in self._clients:
            client.close()
        if self._gateway is not None:
            self._gateway.close()
        if self._evidence is not None:
            self._evidence.close()
        if self._enclave is not None:
            self._enclave.close()
        self.started = False
        self.log.info("worker %s stopped at block %s", self.config.name, self.applied_block)

    def __enter__(self) -> WorkerHost:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def query_async(self, request: bytes) -> bytes:
        """Answer one encrypted query (``POST /v1/query``) on the API's event loop: the call
        waits on the enclave's socket, not on a thread, and only an agent's I/O takes one.

        Raises:
            NotReady: the worker is starting or catching up (503 ``runtime_not_ready``).
            QueryRejected / ContractUnavailable / KeyEpochExpired: from the core.
        """
        status = self.status()
        if status not in ("ok", "diverged"):  # a diverged core gives its own refusal
            raise NotReady(
                f"worker is {status.replace('_', ' ')}",
                applied_block=self.applied_block,
                chain_head=self._chain_head,
            )
        # The enclave opens and snapshots under its own lock and runs the agent outside it, so a
        # slow llm.chat never holds up block application; only the sealed answer comes back.
        lane = self._lane
        if lane is None:
            # made on first use: it belongs to the event loop that serves the API
            lane = self._lane = QueryLane(
                lambda: self.enclave,  # a crashed enclave process is replaced
                self._agent_io,
                lanes=self.config.query_threads,
                max_batch=self.config.query_batch,
                observe=self.metrics.query_calls.observe,
            )
        return await lane.query(request)

    def _run_jobs(self) -> wire.Jobs:
        with self._agent_io() as io:
            return self.enclave.jobs(io)

    @contextlib.contextmanager
    def _agent_io(self) -> Iterator[IOHandler]:
        """The I/O one query or job batch's agents may ask for: their ``http.fetch`` TLS records
        relayed on connections of their own (closed afterwards), and ``llm.chat``."""
        relay = TLSRelayHost(timeout_s=self.config.fetch_timeout_s)

        def carry_out(kind: str, body: bytes) -> bytes:
            if kind == wire.IO_TLS:
                return relay.handle(kind, body)
            if kind == wire.IO_GATEWAY:
                return self._carry_gateway_call(body)
            if kind == wire.IO_EVM:
                return self._carry_witness(body)
            raise NotReady(f"this worker does not serve {kind}")

        try:
            yield carry_out
        finally:
            relay.close_all()

    def health(self) -> HealthView:
        """``GET /v1/health``; never waits for the core lock (a block may be applying)."""
        return HealthView(
            status=self.status(),
            applied_block=self.applied_block,
            chain_head=self._chain_head,
            registered=self._registered,
            boot_id=self._boot_id,
            diverged_at=self.diverged_at,
            rejected_code=None if self.rejected is None else self.rejected[0],
            rejected_block=None if self.rejected is None else self.rejected[1],
        )

    def info(self) -> WorkerInfoView:
        """``GET /v1/info``: identity, network and the applied head, under the core lock."""
        addresses = self.config.deployment.addresses
        status = self.enclave.status()
        head = status.head
        clusters = tuple(
            ClusterView(
                cluster_id=c.cluster_id, is_member=c.is_member, state_commitment=c.state_commitment
            )
            for c in status.clusters
        )
        return WorkerInfoView(
            name=self.config.name,
            address=Address(status.address),
            operator=self.operator,
            chain_id=addresses.chain_id,
            registry=addresses.registry,
            bus=addresses.bus,
            tee=status.tee,
            measurement=status.measurement,
            clusters=clusters,
            cluster=status.cluster,
            confidence=status.confidence,
            last_applied_block=None if head is None else head.number,
            last_applied_hash=None if head is None else head.hash,
            status=self.status(),
        )

    def contract(self, contract_id: bytes) -> ContractView:
        """``GET /v1/contracts/{id}``: one agent contract's public facts, under the core lock.

        Raises:
            ContractUnavailable: the core knows no contract ``contract_id``.
        """
        found = self.enclave.contract(contract_id)
        return ContractView(
            contract_id=found.contract_id,
            cluster=found.cluster,
            owner=Address(found.owner),
            controller=Address(found.controller),
            code_hash=found.code_hash,
            paused=found.paused,
            epoch=found.epoch,
            public_key=found.public_key,
            key_address=Address(found.key_address) if len(found.key_address) == 20 else None,
        )

    def attest(self, nonce: bytes) -> AttestationView:
        """``GET /v1/attestation``: a quote over (address, nonce) with its collateral."""
        attested = self.enclave.attest(nonce)
        return AttestationView(
            address=Address(self.identity),
            quote=attested.quote,
            collateral=attested.collateral,
            report_data=attested.report_data,
        )

    # ------------------------------------------------------------------ boot ---------------

    def _start_enclave(self) -> Any:
        """The link to this worker's enclave: a child process, or (tests) this process."""
        cfg = self.config
        if cfg.enclave_mode == "process":
            if self.enclave_config.tee == "dev":
                self.log.warning("worker %s runs on the INSECURE development TEE", cfg.name)
            return ProcessEnclave()
        # Local mode: the same interface and bytes, served in this process with parts the
        # test chose (a shared engine, a given TEE backend).
        from veilnet.enclave import EnclaveService

        return LocalEnclave(EnclaveService(parts=self._local_parts))

    def _local_parts(self, config: wire.EnclaveConfig) -> Any:
        from veilnet.enclave import build_parts
        from veilnet.runtime.adapters import TEEPlatform

        cfg = self.config
        platform = None if cfg.enclave is None else TEEPlatform(cfg.enclave)
        return build_parts(config, platform=platform, engine=cfg.engine)

    def _boot_request(
        self, *, sealed_identity: bytes | None, checkpoint: bytes | None = None
    ) -> wire.Boot:
        io_kinds: tuple[str, ...] = (wire.IO_HTTP_FETCH, wire.IO_EVM)
        if self.config.gateway_url is not None:
            io_kinds += (wire.IO_LLM_CHAT,)
        return wire.Boot(
            config=self.enclave_config,
            sealed_identity=sealed_identity,
            checkpoint=checkpoint,
            sealed_keys=self.storage.load_keys(),
            io_kinds=io_kinds,
        )

    def _booted(self, booted: wire.Booted) -> None:
        self._identity = booted.address
        self._boot_id = booted.boot_id
        self._head = booted.head
        self._snapshot_due = booted.snapshot_due

    def _boot(self) -> None:
        enclave = self.enclave
        stored_identity = self.storage.load_identity()
        for stored in self.storage.checkpoints():
            try:
                booted = enclave.boot(
                    self._boot_request(sealed_identity=stored_identity, checkpoint=stored.sealed)
                )
            except CheckpointInvalid as exc:
                name = stored.path.name if stored.path else "?"
                self.log.warning("skipping checkpoint %s: %s", name, exc.code)
                continue
            self._booted(booted)
            head = booted.head
            if head is None:
                raise CheckpointInvalid("a checkpoint restored no head")
            if head.number != stored.block_number:
                self.log.warning(
                    "checkpoint file says block %d, its sealed content %d: trusting the content",
                    stored.block_number,
                    head.number,
                )
            self._sealed_identity = stored_identity or booted.sealed_identity
            if stored_identity is None:
                self.storage.save_identity(self._sealed_identity)
            self._follower_at(head.number + 1, head.hash)
            self.restored_from = head.number
            self._last_checkpoint = head.number
            self.log.info("restored from checkpoint at block %d", head.number)
            return
        booted = enclave.boot(self._boot_request(sealed_identity=stored_identity))
        self._booted(booted)
        if stored_identity is None:
            stored_identity = booted.sealed_identity
            self.storage.save_identity(stored_identity)
        self._sealed_identity = stored_identity
        anchor = self.config.chain_trust
        self._follower_at(anchor.anchor_number + 1, anchor.anchor_hash)
        self.log.info("no checkpoint: replaying from block %d", anchor.anchor_number + 1)

    def _client(self) -> JSONRPCClient:
        client = JSONRPCClient(self.config.rpc_url)
        self._clients.append(client)
        return client

    def _follower_at(self, start: int, parent_hash: bytes | None) -> None:
        self._follower_args = (start, parent_hash)
        self._follower = None  # built lazily by the loop thread with its own client

    def _make_gateway(self) -> httpx.Client | None:
        """A client for the inference gateway, if this worker has one. It only carries the
        core's sealed calls: the core verifies the gateway and every answer itself."""
        if self.config.gateway_url is None:
            return None
        client = httpx.Client(
            base_url=self.config.gateway_url.rstrip("/"), timeout=GATEWAY_TIMEOUT_S
        )
        self._gateway = client
        return client

    def _carry_witness(self, body: bytes) -> bytes:
        try:
            request = wire.EVMWitnessRequest.from_bytes(body)
        except CodecError as exc:
            raise WorkerIOFailed("not a witness request") from exc
        client = self._witness_client
        if client is None:
            raise NotReady("the worker has not started")
        nodes, codes = state_witness(client, request.block, request.address, request.slot)
        return wire.EVMWitness(nodes=tuple(nodes), codes=tuple(codes)).to_bytes()

    def _carry_gateway_call(self, body: bytes) -> bytes:
        gateway = self._gateway
        if gateway is None:
            raise NotReady("this worker has no inference gateway")
        try:
            call = wire.GatewayCall.from_bytes(body)
        except CodecError as exc:
            raise WorkerIOFailed("not a gateway call") from exc
        try:
            answer = gateway.request(call.method, call.path, content=call.body)
        except httpx.HTTPError as exc:
            raise WorkerIOFailed(f"the gateway did not answer: {type(exc).__name__}") from exc
        return wire.GatewayReply(status=answer.status_code, body=answer.content).to_bytes()

    # ------------------------------------------------------------------ the loop -----------

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _run(self) -> None:
        client = self._client()
        while not self._stop.is_set():
            try:
                if not self._registered and time.monotonic() >= self._next_registration:
                    self._try_register()
                elif self._reattest_due and time.monotonic() >= self._next_reattestation:
                    self._try_reattest()
                progressed = self._poll(client)
            except VeilnetError as exc:
                if not self._stop.is_set():  # a chain going away during shutdown is expected
                    self.log.warning("follower: %s: %s", exc.code, exc.message)
                self._follower = None  # rebuild from the core's head on the next round
                self._stop.wait(ERROR_BACKOFF_S)
                continue
            if progressed:
                continue
            self._wake.wait(self.config.poll_interval)
            self._wake.clear()

    def _poll(self, client: JSONRPCClient) -> bool:
        if self._follower is None:
            head = self._head
            start, parent = (
                (head.number + 1, head.hash) if head is not None else self._follower_args
            )
            self._follower = Follower(
                client,
                self.config.deployment.addresses,
                start_block=start,
                finality_depth=self.config.finality_depth,
                parent_hash=parent,
                decode_events=False,  # the core decodes the raw receipts itself
            )
        self._chain_head = from_quantity(client.call("eth_blockNumber"))
        self.metrics.chain_head.set(self._chain_head)
        blocks = self._follower.poll()
        if not blocks:
            self._notify()
            return False
        try:
            evidence = self._evidence_source().evidence(blocks)
        except (QuorumNotReached, FinalityUnproven) as exc:
            self.rejected = (exc.code, blocks[0].header.number)  # shown by /v1/health
            self._notify()
            raise
        applied = 0
        for block in blocks:
            found = evidence.get(block.header.number)
            if found is None or self._stop.is_set() or not self._apply(block, found):
                break
            applied += 1
        if applied < len(blocks):
            # the rest are fetched again (with their evidence) from the core's head
            self._follower = None
        if self._snapshot_due is not None:
            self._try_sync(client)
        if self._collateral_wanted and time.monotonic() >= self._next_collateral_fetch:
            self._fetch_collateral()
        self._maybe_rotate()
        self._notify()
        return applied > 0

    def _maybe_rotate(self) -> None:
        """A gatekeeper's host starts the rotation of a master key that served the network's
        ``rotation_interval`` (``Registry.lock_rotation``, open to anyone then): a master
        derives every cluster epoch made under it, so its lifetime bounds forward secrecy.
        Checked every ``ROTATION_CHECK_BLOCKS``; when several gatekeepers race, one lands and
        the others' calls revert."""
        head = self._head
        if head is None or self._operator is None or self._identity is None:
            return
        if head.number < self._rotation_checked + ROTATION_CHECK_BLOCKS:
            return
        self._rotation_checked = head.number
        network, operator = self._operator
        try:
            interval = int(network.view("Registry", "rotation_interval"))
            if interval == 0 or not network.view("Registry", "gatekeepers", Address(self.identity)):
                return
            if network.view("Registry", "rotation_locked"):
                return
            since = int(network.view("Registry", "master_since"))
            if since == 0 or self._chain_head is None or self._chain_head + 1 < since + interval:
                return
            network.lock_rotation(operator)
        except (VeilnetError, ValueError) as exc:
            self.log.info("rotation not started: %s", exc)
            return
        self.log.info("the master key served %d blocks: rotation started", interval)

    def _fetch_collateral(self) -> None:
        """A gatekeeper: its core fetches the collateral it must judge from the network's PCCS
        (TLS ends in the core; this host relays records). Posted with the next block."""
        self._collateral_wanted = False
        try:
            fetched = self.enclave.fetch_collateral(self._pccs_relay.handle)
        except VeilnetError as exc:
            self.log.warning("collateral fetch failed: %s: %s", exc.code, exc.message)
            fetched = None
        finally:
            self._pccs_relay.close_all()  # the core numbers its connections from 0 each call
        if fetched is None or fetched.failures:
            reasons = "" if fetched is None else ", ".join(fetched.failures)
            self.log.warning("collateral from the PCCS not fetched (%s); retrying", reasons)
            self._next_collateral_fetch = time.monotonic() + COLLATERAL_RETRY_S
        else:
            self.log.info(
                "fetched collateral for %d registration(s) from the PCCS", fetched.fetched
            )

    def _evidence_source(self) -> EvidenceSource:
        if self._evidence is None:
            trust = self.config.chain_trust
            if trust.policy == POLICY_SEQUENCER:
                if self.config.sequencer_url is None:
                    raise WorkerConfigInvalid("the sequencer policy needs a sequencer_url")
                self._evidence = SequencerEvidence(self.config.sequencer_url)
            else:
                self._evidence = QuorumEvidence(lambda: self.enclave)
        return self._evidence

    def _apply(self, block: cm.Block, evidence: bytes) -> bool:
        """Apply one block; False when it failed and the poll must stop."""
        raw = chain_block(block, evidence)
        with self._lock:
            try:
                applied = self.enclave.apply_block(raw)
            except BlockRejected as exc:
                self.rejected = (exc.code, block.header.number)
                self.metrics.apply_failures.inc()
                self._changed.notify_all()
                raise
            except EnclaveUnavailable:
                self._restart_enclave(block.header.number)
                return False
            except Exception:
                self._recover_from_failed_block(block.header.number)
                return False
            self.rejected = None
            if self._failing_block is not None and block.header.number >= self._failing_block:
                self._failing_block, self._apply_failures = None, 0
            self.metrics.blocks_applied.inc()
            self.metrics.head.set(block.header.number)
            self._head = applied.head
            self.diverged_at = applied.diverged_at
            self._reattest_due = applied.reattest_due
            if applied.sealed_keys is not None:
                # before the egress that announces them: a replay must find the same keys
                self.storage.save_keys(applied.sealed_keys)
            if applied.egress and self._relay is not None:
                self._relay.put(list(applied.egress))
            if applied.jobs_pending and self._jobs is not None:
                self._jobs.poke()
            self._snapshot_due = applied.snapshot_due
            self._collateral_wanted = applied.collateral_wanted
            self._checkpoint()
            self._changed.notify_all()
        return True

    def _recover_from_failed_block(self, number: int) -> None:
        """Retry a block that raised: the core applies blocks all-or-nothing, so it is exactly
        as it was before the block, and the follower restarts from the core's head.

        A non-deterministic abort (the sandbox's wall-clock backstop) usually passes on retry;
        a failure that repeats halts the worker rather than serve state that may be wrong.
        """
        if self._failing_block != number:
            self._failing_block, self._apply_failures = number, 0
        self._apply_failures += 1
        self.log.exception(
            "applying block %d failed (attempt %d); the core is unchanged, retrying the block",
            number,
            self._apply_failures,
        )
        self.metrics.apply_failures.inc()
        if self._apply_failures >= MAX_APPLY_FAILURES:
            self.halted = True
            self.log.error("worker %s halted: block %d keeps failing", self.config.name, number)
            self._stop.set()
            return
        self._follower = None

    def _restart_enclave(self, number: int) -> None:
        """The enclave process went away: start a new one from the newest checkpoint."""
        self._recover_from_failed_block(number)
        if self.halted:
            return
        self.log.warning("the enclave process went away; starting a new one")
        old = self._enclave
        self._enclave = Enclave(self._start_enclave())
        if old is not None:
            old.close()
        self._boot()

    # ------------------------------------------------------------------ late join ----------

    def snapshot(self, joiner: bytes) -> bytes:
        """``WorkerService.snapshot``: what this member's core sealed for ``joiner``."""
        with self._lock:
            return self.enclave.snapshot(joiner)

    def _try_sync(self, client: JSONRPCClient) -> None:
        """Waiting for the state of a cluster joined with history: once per new head, ask the
        cluster's members (their API URLs as registered on chain) for a snapshot and hand it
        to the core, which takes it only if it matches the cluster's verdict."""
        cluster, head = self._snapshot_due, self._head
        if cluster is None or head is None or self._sync_tried_at == head.number:
            return
        self._sync_tried_at = head.number
        network = Network(client, self.config.deployment.addresses)  # this thread's client
        for url in self._member_urls(network, cluster):
            try:
                reply = httpx.get(
                    f"{url.rstrip('/')}/v1/snapshots/0x{self.identity.hex()}",
                    timeout=SNAPSHOT_FETCH_TIMEOUT_S,
                )
            except httpx.HTTPError as exc:
                self.log.debug("snapshot from %s: %s", url, type(exc).__name__)
                continue
            if reply.status_code != 200:
                continue
            with self._lock:
                try:
                    synced = self.enclave.sync(reply.content)
                except SnapshotRefused as exc:
                    self.log.info("snapshot from %s refused: %s", url, exc.details.get("reason"))
                    continue
                self._snapshot_due = None
                self.syncs += 1
                if synced.egress and self._relay is not None:
                    self._relay.put(list(synced.egress))
                if synced.jobs_pending and self._jobs is not None:
                    self._jobs.poke()
                self._changed.notify_all()
            self.log.info("took the cluster's state at block %d from %s", synced.height, url)
            return

    def _member_urls(self, network: Network, cluster: bytes) -> list[str]:
        """API URLs the members of ``cluster`` registered, from the Registry's logs (the host
        trusts none of them: what a member sends is checked in the core)."""
        members: set[bytes] = set()
        for event in network.logs(cm.ClusterWorkerAdded, cluster):
            members.add(event.worker.raw)
        for event in network.logs(cm.ClusterWorkerRemoved, cluster):
            members.discard(event.worker.raw)
        members.discard(self.identity)
        urls: dict[bytes, str] = {}
        for worker in sorted(members):
            for registered in network.logs(cm.WorkerRegistered, worker):
                urls[worker] = registered.api_url  # block order: the newest wins
        return [url for url in urls.values() if url.startswith(("http://", "https://"))]

    def _checkpoint(self, *, force: bool = False) -> None:
        """Write a checkpoint when due and the relay settled everything emitted so far."""
        head = self._head
        if head is None or head.number == self._last_checkpoint:
            return
        due = self._last_checkpoint is None or (
            head.number - self._last_checkpoint >= self.config.checkpoint_every
        )
        if not (due or force) or (self._relay is not None and not self._relay.is_idle()):
            return
        sealed = self.enclave.checkpoint()
        self.storage.save_checkpoint(
            StoredCheckpoint(
                block_number=sealed.block_number, block_hash=head.hash, sealed=sealed.sealed
            )
        )
        self._last_checkpoint = head.number
        self.metrics.checkpoints.inc()
        self.log.debug("checkpoint at block %d", head.number)

    # ------------------------------------------------------------------ registration -------

    def _try_register(self) -> None:
        try:
            self._register()
        except VeilnetError as exc:
            if self._stop.is_set():  # stopping abandons the wait for the receipt
                return
            if exc.message != self._registration_error:
                self.log.warning("registration pending: %s: %s", exc.code, exc.message)
            self._registration_error = exc.message
            self._next_registration = time.monotonic() + REGISTRATION_RETRY_S
        else:
            self._registration_error = None
            self._notify()

    def _try_reattest(self) -> None:
        """Send a fresh quote of this registration before the endorsement lapses (at most once
        per ``REATTEST_RETRY_S``: it takes a few blocks to land and be judged)."""
        self._next_reattestation = time.monotonic() + REATTEST_RETRY_S
        try:
            self._send_registration(reattest=True)
        except VeilnetError as exc:
            if not self._stop.is_set():
                self.log.warning("re-attestation failed: %s: %s", exc.code, exc.message)
        else:
            self.log.info("re-attested: a fresh quote is on chain for the gatekeepers to judge")

    def _register(self) -> None:
        """Register the identity unless the Registry knows it: the core signs, the host pays
        the identity's gas from ``fund_from`` if it must, and waits for the receipt."""
        network = self._network
        identity = Address(self.identity)
        kind = network.origin_kind(identity)
        if kind == KIND_WORKER:
            self._registered = True
            return
        if kind != KIND_NONE:
            raise RegistrationFailed("the identity address is in use by another origin")
        self._send_registration(reattest=False)
        self._registered = True
        self.log.info("registered identity %s on chain", identity.hex)

    def _fund_identity(self, identity: Address, needed: int, fn: str) -> None:
        """Top the identity up from ``fund_from`` if it holds less than ``needed`` wei."""
        network = self._network
        if balance_of(network.client, identity) >= needed:
            return
        if self.config.fund_from is None:
            raise RegistrationFailed(f"the identity needs ETH for {fn}", address=identity.hex)
        funder = network.sender(self.config.fund_from)
        funder.transact(identity, b"", value=max(IDENTITY_FUNDING_WEI, 2 * needed), gas=21_000)

    def _send_registration(self, *, reattest: bool) -> None:
        """Have the core build and sign ``register_worker`` (or ``reattest_worker``), fund the
        identity's gas if allowed, send it and wait for the receipt."""
        network = self._network
        identity = Address(self.identity)
        fn = "reattest_worker" if reattest else "register_worker"
        api_url = self.published_url()
        request = self.enclave.registration(self.operator.raw, api_url=api_url)
        # the deposit first: the node estimates gas only for a sender that can pay the value
        deposit = int(network.registry.call(network.client, "registration_deposit"))
        self._fund_identity(identity, deposit, fn)
        try:
            tx = register_worker_transaction(
                network, request, fallback_gas=REGISTRATION_GAS, reattest=reattest
            )
        except ContractReverted as exc:
            raise RegistrationFailed(f"{fn} would revert: {exc.reason}") from exc
        self._fund_identity(identity, transaction_cost(tx), fn)
        raw = self.enclave.register_transaction(
            wire.RegisterTransaction(
                operator=self.operator.raw,
                nonce=int(tx["nonce"]),
                gas=int(tx["gas"]),
                max_fee_per_gas=int(tx["maxFeePerGas"]),
                max_priority_fee_per_gas=int(tx["maxPriorityFeePerGas"]),
                reattest=reattest,
                deposit=int(tx["value"]),
                api_url=api_url,
            )
        ).raw
        try:
            send_raw_transaction(
                network.client, raw, timeout=REGISTRATION_TIMEOUT_S, stop=self._stop
            )
        except ContractReverted as exc:
            raise RegistrationFailed(f"{fn} reverted on chain") from exc


def _enclave_config(config: WorkerConfig) -> wire.EnclaveConfig:
    """What this worker's enclave is built from: the network's parameters and its TEE."""
    addresses = config.deployment.addresses
    if config.enclave is not None:
        tee = type(config.enclave).__name__.removesuffix("Enclave").lower()
        if tee not in ("dstack", "gramine", "dev"):
            raise WorkerConfigInvalid(
                f"no enclave process can build a {type(config.enclave).__name__}"
            )
    elif config.allow_insecure_dev_tee:
        tee = "dev"
    else:
        raise WorkerConfigInvalid(
            "no TEE backend given: pass an enclave, or use the INSECURE dev TEE "
            "(allow_insecure_dev_tee / --insecure-dev-tee) with a network seed"
        )
    seed = config.network_seed if tee == "dev" else None
    if tee == "dev" and (seed is None or len(seed) < 32):
        raise WorkerConfigInvalid("the dev TEE needs a network seed of at least 32 bytes")
    return wire.EnclaveConfig(
        chain_id=addresses.chain_id,
        registry=addresses.registry.raw,
        bus=addresses.bus.raw,
        chain_trust=config.chain_trust,
        key_window_blocks=config.key_window_blocks,
        commitment_interval=config.commitment_interval,
        heartbeat_interval=wire.DEFAULT_HEARTBEAT_INTERVAL,
        max_confidence_level=wire.DEFAULT_MAX_CONFIDENCE_LEVEL,
        tee=tee,
        dev_network_seed=seed,
        gateway_measurements=tuple(config.gateway_measurements),
        egress_roots=config.egress_roots,
        pccs_url=config.pccs_url,
        pccs_roots=config.pccs_roots,
    )
