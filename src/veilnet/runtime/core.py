"""The enclave core: a deterministic state machine fed finalized blocks, holding the network's keys.
Sans-IO: ``apply_block`` takes a Block and returns egress messages; the host does all I/O.

Theory of operation
-------------------
Replicated state (registry view, contract states, nonces, outcomes, egress counters) is a pure
function of the finalized events in (block, log) order. Every replica of a cluster computes the
same state and the same numbered egress stream; whichever replica holds the origin's key signs,
the Bus accepts the first copy of each (origin, seq), and every replica then acts on what landed.

Keys (``KeyRing``) are private to one worker. Decisions never depend on which keys a replica
holds, only their content does: a replica that lacks a key still advances the origin's counter.

Gatekeepers derive the master key from their sealed identity and the block hash that made them
first gatekeeper, so a restart re-derives the same key. Rotation proposals derive likewise.

Contracts of a cluster are keyed per cluster epoch: ``contract key = derive(cluster key(e),
"contract", id)``. When epoch e+1 is keyed, envelopes to epoch e stay valid for
``key_window_blocks`` blocks, measured from the block that keyed e+1; after that they are rejected
(deterministically, by block number) and the old key is destroyed.

Failure discipline: every handler validates before it mutates. A bad command records a typed
failure outcome and changes nothing else; a malformed chain event is ignored.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import hmac
import json
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from eth_hash.auto import keccak

from veilnet.codec import CodecError, abi_encode, decode, encode
from veilnet.crypto import (
    Address,
    Binding,
    Domain,
    EnvelopeInvalid,
    KeyInvalid,
    QuerySession,
    SecretKey,
    SignatureInvalid,
    UnsupportedVersion,
    open_envelope,
    open_key_envelope,
    peek_envelope,
    seal_key_for,
    sign_text,
)
from veilnet.errors import VeilnetError
from veilnet.runtime import constants as C  # noqa: N812 - the core's one table of names
from veilnet.protocol import events as ev
from veilnet.protocol import envelopes as proto
from veilnet.protocol import limits, topics
from veilnet.protocol.egress import EgressMessage
from veilnet.protocol.registration import RegistrationRequest, TEEKind, registration_report_data
from veilnet.runtime.egress import Outbox
from veilnet.runtime.errors import (
    BlockRejected,
    CheckpointInvalid,
    ContractUnavailable,
    KeyEpochExpired,
    NotReady,
    QueryRejected,
)
from veilnet.runtime.interfaces import AgentEngine, Platform, QuoteVerifier
from veilnet.runtime.keyring import KeyRing
from veilnet.runtime.state import ContractState
from veilnet.sandbox.errors import SandboxAgentError, SandboxCallDepth, SandboxError
from veilnet.sandbox.interfaces import (
    CallResult,
    Context,
    Entry,
    JSONValue,
    Language,
    Limits,
    Mode,
    Outcome,
)

CHECKPOINT_VERSION = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class CoreConfig:
    """Network parameters every replica must share (from genesis / ``network.json``)."""

    chain_id: int
    registry: bytes
    bus: bytes
    key_window_blocks: int = C.DEFAULT_KEY_WINDOW_BLOCKS
    commitment_interval: int = C.DEFAULT_COMMITMENT_INTERVAL
    heartbeat_interval: int = C.DEFAULT_HEARTBEAT_INTERVAL
    max_confidence_level: int = C.DEFAULT_MAX_CONFIDENCE_LEVEL
    limits: Limits = field(default_factory=Limits)

    @property
    def domain(self) -> Domain:
        return _domain(self.chain_id, self.bus)

    @property
    def response_domain(self) -> Domain:
        """EIP-712 domain of query responses: bound to the Registry, not the Bus."""
        return _domain(self.chain_id, self.registry)


@dataclass(slots=True)
class WorkerInfo:
    operator: bytes
    hpke_key: bytes
    tee_kind: int
    measurement: bytes
    quote_hash: bytes
    collateral_hash: bytes
    quote: bytes
    confidence: int = 0
    cluster: bytes | None = None
    endorsement_sent: bool = False


@dataclass(slots=True)
class EpochInfo:
    key_address: bytes
    public_key: bytes
    keyed_at: int
    """Block number at which this epoch was keyed on chain."""


@dataclass(slots=True)
class ClusterInfo:
    owner: bytes
    members: list[bytes] = field(default_factory=list)
    epochs: dict[int, EpochInfo] = field(default_factory=dict)
    current_epoch: int = 0
    master_rotation: dict[int, int] = field(default_factory=dict)
    """Which master rotation each cluster epoch was derived from (gatekeepers' bookkeeping)."""
    has_history: bool = False
    """Whether any contract event of this cluster has been applied (for late joiners)."""


@dataclass(slots=True)
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
    epochs: dict[int, EpochInfo] = field(default_factory=dict)
    """Keyed-at blocks of every epoch this contract has been keyed at (from cluster keying)."""
    initialized: bool = False


@dataclass(slots=True)
class ContractRuntime:
    """Private per-contract data of a member replica."""

    state: ContractState
    nonces: dict[bytes, int] = field(default_factory=dict)
    outcomes: dict[int, dict[str, Any]] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)


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
        self.config = config
        self.keys = keys
        self.platform = platform
        self.engine = engine
        self.verifier = verifier
        self.outbox = Outbox(config.domain)
        self.head: ev.BlockHeader | None = None
        # --- replicated, public view of the registry ---
        self.measurements: set[bytes] = set()
        self.gatekeepers: list[bytes] = []
        self.workers: dict[bytes, WorkerInfo] = {}
        self.collaterals: dict[bytes, bytes] = {}
        self.master: tuple[int, bytes, bytes] | None = None
        """(rotation, key address, public key) of the current master key."""
        self.first_gatekeeper_block: bytes | None = None
        self.rotation: int | None = None
        self.proposal: tuple[bytes, bytes] | None = None
        """(proposer, key address) of the landed proposal of the open rotation."""
        self.master_shares: dict[tuple[int, bytes], bytes] = {}
        """(rotation, proposer) -> this gatekeeper's wrapped share of the proposed key."""
        self.clusters: dict[bytes, ClusterInfo] = {}
        self.contracts: dict[bytes, ContractInfo] = {}
        # --- replicated, private (members of the cluster only) ---
        self.runtimes: dict[bytes, ContractRuntime] = {}
        self.buffered: dict[bytes, list[tuple[ev.BlockHeader, ev.ChainEvent]]] = {}
        self.resync_required = False
        self.resync_keyring: bytes | None = None
        """Keys to carry into a resync from genesis, captured when the late join's keys arrive."""
        self._agents: dict[bytes, Any] = {}
        self._seen_queries: dict[bytes, int] = {}
        self._verified_certificates: dict[bytes, None] = {}
        """Digests of certificate bytes (signature included) already verified: clients reuse
        one certificate for many queries; expiry is still checked on every query."""
        self._query_snapshots: dict[bytes, dict[bytes, _Snapshot]] = {}
        """Per cluster, the snapshot queries share until the next block (state only changes
        in ``apply_block``, which empties this)."""
        self.diverged: list[str] = []

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
        """A fresh core: a new identity from TEE entropy, or the sealed one of an earlier run."""
        if sealed_identity is None:
            identity = SecretKey.generate(platform.random_bytes(32))
        else:
            try:
                seed_blob = platform.unseal(sealed_identity, _identity_aad(config))
                identity = SecretKey.unseal(
                    _boot_sealer(seed_blob), seed_blob[32:], aad=_identity_aad(config)
                )
            except (VeilnetError, ValueError) as exc:
                raise CheckpointInvalid("sealed identity does not open here") from exc
        return cls(
            config=config,
            keys=KeyRing(identity),
            platform=platform,
            engine=engine,
            verifier=verifier,
        )

    def sealed_identity(self) -> bytes:
        """The identity key sealed to this platform (the host stores it next to checkpoints)."""
        wrap = self.platform.random_bytes(32)
        sealed = self.keys.identity.seal(_boot_sealer(wrap), aad=_identity_aad(self.config))
        return self.platform.seal(wrap + sealed, _identity_aad(self.config))

    @property
    def address(self) -> bytes:
        return self.keys.identity.address.raw

    # ------------------------------------------------------------------ registration -------

    def registration(self, operator: bytes) -> RegistrationRequest:
        """Quote and fields for ``Registry.register_worker``, bound by report_data."""
        hpke_key = self.keys.identity.public.x25519
        report_data = registration_report_data(
            worker=self.address,
            operator=operator,
            hpke_key=hpke_key,
            chain_id=self.config.chain_id,
            registry=self.config.registry,
        )
        collateral = self.platform.collateral()
        return RegistrationRequest(
            worker=self.address,
            operator=operator,
            hpke_key=hpke_key,
            tee_kind=TEEKind.parse(self.platform.kind),
            measurement=self.platform.measurement,
            quote=self.platform.quote(report_data),
            collateral=collateral,
            collateral_hash=keccak(collateral),
        )

    def sign_transaction(self, transaction: dict[str, Any]) -> bytes:
        """Sign an Ethereum transaction from the identity address, only to the Registry.

        The host needs this for ``register_worker`` (the Registry keys workers by msg.sender).
        """
        from eth_account import Account

        to = transaction.get("to")
        if to is None or Address.parse(str(to)).raw != self.config.registry:
            raise ValueError("the identity key only signs transactions to the Registry")
        if int(transaction.get("chainId", -1)) != self.config.chain_id:
            raise ValueError("wrong chain id")
        signed = Account.sign_transaction(transaction, self.keys.identity._private_scalar())
        return bytes(signed.raw_transaction)

    # ------------------------------------------------------------------ blocks -------------

    def apply_block(self, block: ev.Block) -> list[EgressMessage]:
        """Apply one finalized block; return the egress messages to post.

        Raises:
            BlockRejected: the block does not extend the applied chain; nothing changes.
        """
        header = block.header
        if self.head is not None and (
            header.number != self.head.number + 1 or header.parent_hash != self.head.hash
        ):
            raise BlockRejected(
                "block does not extend the applied chain",
                expected_number=self.head.number + 1,
                got_number=header.number,
            )
        self._query_snapshots.clear()
        for event in block.events:
            self._apply_event(header, event)
        self.head = header
        self._expire_epochs(header)
        self._maybe_commit(header)
        self._maybe_heartbeat(header)
        return self.outbox.drain()

    def _apply_event(self, header: ev.BlockHeader, event: ev.ChainEvent) -> None:
        cluster = self._cluster_of(event)
        if cluster is not None and (cluster in self.buffered or self._lacks_key(cluster, event)):
            self.buffered.setdefault(cluster, []).append((header, event))
            return
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            handler(self, header, event)

    # ---- registry view ----

    def _on_measurement(self, h: ev.BlockHeader, e: ev.MeasurementSet) -> None:
        if e.allowed:
            self.measurements.add(e.measurement)
        else:
            self.measurements.discard(e.measurement)

    def _on_worker_registered(self, h: ev.BlockHeader, e: ev.WorkerRegistered) -> None:
        self.workers[e.worker] = WorkerInfo(
            operator=e.operator,
            hpke_key=e.hpke_key,
            tee_kind=e.tee_kind,
            measurement=e.measurement,
            quote_hash=e.quote_hash,
            collateral_hash=e.collateral_hash,
            quote=e.quote,
        )
        if e.worker == self.address:
            collateral = self.platform.collateral()
            if keccak(collateral) == e.collateral_hash:
                self.outbox.emit(
                    self.keys.identity,
                    self.address,
                    topics.TOPIC_COLLATERAL,
                    zlib.compress(collateral, 9),
                )
        self._endorse_pending(h)

    def _on_worker_endorsed(self, h: ev.BlockHeader, e: ev.WorkerEndorsed) -> None:
        worker = self.workers.get(e.worker)
        if worker is not None and worker.quote_hash == e.quote_hash:
            worker.confidence = e.confidence

    def _on_gatekeeper_added(self, h: ev.BlockHeader, e: ev.GatekeeperAdded) -> None:
        if e.gatekeeper in self.gatekeepers:
            return
        self.gatekeepers.append(e.gatekeeper)
        if self.master is None and len(self.gatekeepers) == 1:
            self.first_gatekeeper_block = h.hash
            if e.gatekeeper == self.address:
                master = self.keys.identity.child("master", h.hash)
                self.keys.masters[0] = master
                payload = abi_encode(
                    ["address", "bytes"], [master.address.hex, master.public.x25519]
                )
                self.outbox.emit(self.keys.identity, self.address, topics.TOPIC_MASTER_KEY, payload)
        elif self.master is not None:
            self._send_master_history(e.gatekeeper)

    def _on_gatekeeper_removed(self, h: ev.BlockHeader, e: ev.GatekeeperRemoved) -> None:
        if e.gatekeeper in self.gatekeepers:
            self.gatekeepers.remove(e.gatekeeper)

    def _on_master_key_set(self, h: ev.BlockHeader, e: ev.MasterKeySet) -> None:
        if self.master is not None:
            return
        self.master = (0, e.key_address, e.public_key)
        mine = self.keys.masters.get(0)
        if mine is not None and mine.address.raw != e.key_address:
            self.keys.masters.pop(0)  # another gatekeeper's key landed first
            self.diverged.append("master key landed from another gatekeeper")
        self._endorse_pending(h)
        for cluster_id in list(self.clusters):
            if self.clusters[cluster_id].current_epoch == 0:
                self._key_cluster(cluster_id)

    # ---- gatekeeper duties ----

    def _master_key(self) -> SecretKey | None:
        if self.master is None:
            return None
        key = self.keys.masters.get(self.master[0])
        if key is not None and key.address.raw == self.master[1]:
            return key
        return None

    def _is_gatekeeper(self) -> bool:
        return self.address in self.gatekeepers

    def _endorse_pending(self, h: ev.BlockHeader) -> None:
        """Endorse every registered worker whose collateral is on chain (deterministic order)."""
        if self.master is None:
            return
        for address, worker in self.workers.items():
            if worker.endorsement_sent or worker.collateral_hash not in self.collaterals:
                continue
            worker.endorsement_sent = True
            verdict = self._judge(address, worker, h)
            if verdict is None:
                continue
            payload = abi_encode(
                ["address", "uint8", "bytes32"],
                [Address(address).hex, verdict, worker.quote_hash],
            )
            self.outbox.emit(self._master_key(), self.master[1], topics.TOPIC_ENDORSE, payload)

    def _judge(self, address: bytes, worker: WorkerInfo, h: ev.BlockHeader) -> int | None:
        """Confidence level to endorse with, or None. Pure function of chain data and time."""
        if worker.measurement not in self.measurements:
            return None
        report_data = registration_report_data(
            worker=address,
            operator=worker.operator,
            hpke_key=worker.hpke_key,
            chain_id=self.config.chain_id,
            registry=self.config.registry,
        )
        try:
            verdict = self.verifier(
                quote=worker.quote,
                collateral=self.collaterals[worker.collateral_hash],
                at=h.timestamp,
                report_data=report_data,
            )
        except VeilnetError:
            return None
        if not verdict.accepted or verdict.measurement != worker.measurement:
            return None
        if not 1 <= verdict.confidence <= self.config.max_confidence_level:
            return None
        return verdict.confidence

    def _send_master_history(self, gatekeeper: bytes) -> None:
        """Every gatekeeper sends a new one the master key history, wrapped to its key."""
        worker = self.workers.get(gatekeeper)
        if worker is None or not self._is_gatekeeper() or gatekeeper == self.address:
            return
        for rotation, key in sorted(self.keys.masters.items()):
            binding = Binding(
                chain_id=self.config.chain_id,
                target=gatekeeper,
                epoch=rotation,
                purpose=proto.PURPOSE_MASTER_KEY,
            )
            wrapped = seal_key_for(worker.hpke_key, key, binding=binding)
            payload = encode(["history", gatekeeper, rotation, wrapped])
            self.outbox.emit(self.keys.identity, self.address, topics.TOPIC_MASTER_KEY_SHARE, payload)

    # ---- rotation ----

    def _on_rotation_locked(self, h: ev.BlockHeader, e: ev.RotationLocked) -> None:
        self.rotation = e.rotation
        self.proposal = None
        if not self._is_gatekeeper():
            return
        proposal = self.keys.identity.child("rotation", e.rotation, h.hash)
        self.keys.proposals[e.rotation] = proposal
        for other in self.gatekeepers:
            if other == self.address or other not in self.workers:
                continue
            binding = Binding(
                chain_id=self.config.chain_id,
                target=other,
                epoch=e.rotation,
                purpose=proto.PURPOSE_MASTER_KEY,
            )
            wrapped = seal_key_for(self.workers[other].hpke_key, proposal, binding=binding)
            payload = encode(["proposal", other, e.rotation, wrapped])
            self.outbox.emit(self.keys.identity, self.address, topics.TOPIC_MASTER_KEY_SHARE, payload)
        payload = abi_encode(
            ["uint256", "address", "bytes"],
            [e.rotation, proposal.address.hex, proposal.public.x25519],
        )
        self.outbox.emit(self.keys.identity, self.address, topics.TOPIC_ROTATION_PROPOSE, payload)
        if len(self.gatekeepers) == 1:
            # A sole gatekeeper's proposal completes the rotation in the same transaction, so
            # the new epoch's cluster keys can follow it in the same block: one on-chain hop.
            self.keys.masters[e.rotation] = proposal
            for cluster_id in list(self.clusters):
                self._key_cluster(
                    cluster_id,
                    rotation=e.rotation,
                    master=proposal,
                    origin=proposal.address.raw,
                )

    def _on_rotation_proposed(self, h: ev.BlockHeader, e: ev.RotationProposed) -> None:
        if self.rotation != e.rotation or self.proposal is not None:
            return
        self.proposal = (e.proposer, e.key_address)
        if len(self.gatekeepers) == 1 and not self._keyed_for_rotation(e.rotation):
            held = self.keys.masters.get(e.rotation)
            for cluster_id in list(self.clusters):
                self._key_cluster(
                    cluster_id, rotation=e.rotation, master=held, origin=e.key_address
                )
        if not self._is_gatekeeper() or e.proposer == self.address:
            return  # the proposal is the proposer's own confirmation
        key: SecretKey | None = None
        wrapped = self.master_shares.get((e.rotation, e.proposer))
        if wrapped is not None:
            key = self._unwrap_master(wrapped, e.rotation)
        if key is None or key.address.raw != e.key_address:
            return
        self.keys.masters[e.rotation] = key
        payload = abi_encode(["uint256", "address"], [e.rotation, key.address.hex])
        self.outbox.emit(self.keys.identity, self.address, topics.TOPIC_ROTATION_CONFIRM, payload)

    def _on_master_key_rotated(self, h: ev.BlockHeader, e: ev.MasterKeyRotated) -> None:
        self.master = (e.rotation, e.key_address, e.public_key)
        self.rotation = None
        self.proposal = None
        self.keys.proposals.pop(e.rotation, None)
        self.master_shares = {k: v for k, v in self.master_shares.items() if k[0] > e.rotation}
        mine = self.keys.masters.get(e.rotation)
        if mine is not None and mine.address.raw != e.key_address:
            self.keys.masters.pop(e.rotation)
        if not self._keyed_for_rotation(e.rotation):
            for cluster_id in list(self.clusters):
                self._key_cluster(cluster_id)

    def _on_rotation_aborted(self, h: ev.BlockHeader, e: ev.RotationAborted) -> None:
        self.rotation = None
        self.proposal = None
        self.keys.proposals.pop(e.rotation, None)
        if self.master is None or self.master[0] != e.rotation:
            self.keys.masters.pop(e.rotation, None)

    def _unwrap_master(self, wrapped: bytes, rotation: int) -> SecretKey | None:
        binding = Binding(
            chain_id=self.config.chain_id,
            target=self.address,
            epoch=rotation,
            purpose=proto.PURPOSE_MASTER_KEY,
        )
        try:
            return open_key_envelope(self.keys.identity, wrapped, binding=binding)
        except (EnvelopeInvalid, UnsupportedVersion):
            return None

    # ---- clusters ----

    def _on_cluster_created(self, h: ev.BlockHeader, e: ev.ClusterCreated) -> None:
        if e.cluster_id in self.clusters:
            return
        self.clusters[e.cluster_id] = ClusterInfo(owner=e.owner)
        if self.master is not None:
            self._key_cluster(e.cluster_id)

    def _key_cluster(
        self,
        cluster_id: bytes,
        *,
        rotation: int | None = None,
        master: SecretKey | None = None,
        origin: bytes | None = None,
    ) -> None:
        """Gatekeepers: publish the cluster key of the next epoch, derived from a master key,
        and wrap it to every member. Others only advance that master origin's counter.

        Without ``rotation`` the current master is used; with it, the given (new) master.
        """
        if rotation is None:
            if self.master is None:
                return
            rotation, origin, master = self.master[0], self.master[1], self._master_key()
        assert origin is not None
        cluster = self.clusters[cluster_id]
        epoch = max([cluster.current_epoch, *cluster.master_rotation]) + 1
        cluster.master_rotation[epoch] = rotation
        payload = b""
        if master is not None:
            key = master.child("cluster", cluster_id, epoch)
            payload = abi_encode(
                ["bytes32", "uint64", "address", "bytes"],
                [cluster_id, epoch, key.address.hex, key.public.x25519],
            )
        self.outbox.emit(master, origin, topics.TOPIC_CLUSTER_KEY, payload)
        for member in cluster.members:
            self._share_cluster_key(
                cluster_id, member, epochs=[epoch], master=master, origin=origin
            )

    def _keyed_for_rotation(self, rotation: int) -> bool:
        return any(rotation in c.master_rotation.values() for c in self.clusters.values())

    def _share_cluster_key(
        self,
        cluster_id: bytes,
        member: bytes,
        *,
        epochs: list[int],
        master: SecretKey | None = None,
        origin: bytes | None = None,
    ) -> None:
        """Gatekeepers: wrap cluster keys of ``epochs`` to a member (one message for all),
        sent from the current master origin unless another (new) one is given."""
        if origin is None:
            if self.master is None:
                return
            origin, master = self.master[1], self._master_key()
        worker = self.workers.get(member)
        if master is None or worker is None:
            self.outbox.emit(None, origin, topics.TOPIC_CLUSTER_KEY_SHARE, b"")
            return
        cluster = self.clusters[cluster_id]
        shares = []
        for epoch in epochs:
            source = self.keys.masters.get(cluster.master_rotation.get(epoch, -1))
            if source is None:
                continue
            key = source.child("cluster", cluster_id, epoch)
            binding = Binding(
                chain_id=self.config.chain_id,
                target=member + cluster_id,
                epoch=epoch,
                purpose=proto.PURPOSE_CLUSTER_KEY,
            )
            shares.append([epoch, seal_key_for(worker.hpke_key, key, binding=binding)])
        payload = encode([cluster_id, member, shares])
        self.outbox.emit(master, origin, topics.TOPIC_CLUSTER_KEY_SHARE, payload)

    def _on_cluster_worker_added(self, h: ev.BlockHeader, e: ev.ClusterWorkerAdded) -> None:
        cluster = self.clusters.get(e.cluster_id)
        if cluster is None or e.worker in cluster.members:
            return
        served_before = self._serves(e.cluster_id)  # before joining: membership makes it True
        cluster.members.append(e.worker)
        if e.worker in self.workers:
            self.workers[e.worker].cluster = e.cluster_id
        if e.worker == self.address and cluster.has_history and not served_before:
            self.resync_required = True
        if self.master is not None and cluster.master_rotation:
            self._share_cluster_key(e.cluster_id, e.worker, epochs=sorted(cluster.master_rotation))

    def _on_cluster_worker_removed(self, h: ev.BlockHeader, e: ev.ClusterWorkerRemoved) -> None:
        cluster = self.clusters.get(e.cluster_id)
        if cluster is None or e.worker not in cluster.members:
            return
        cluster.members.remove(e.worker)
        if e.worker in self.workers:
            self.workers[e.worker].cluster = None

    def _on_cluster_key_set(self, h: ev.BlockHeader, e: ev.ClusterKeySet) -> None:
        cluster = self.clusters.get(e.cluster_id)
        if cluster is None or e.epoch <= cluster.current_epoch:
            return
        cluster.epochs[e.epoch] = EpochInfo(
            key_address=e.key_address, public_key=e.public_key, keyed_at=h.number
        )
        cluster.current_epoch = e.epoch
        held = self.keys.cluster_key(e.cluster_id, e.epoch)
        if held is not None and held.address.raw != e.key_address:
            self.diverged.append(f"cluster key mismatch for epoch {e.epoch}")
        for contract_id, contract in self.contracts.items():
            if contract.cluster == e.cluster_id:
                self._key_contract(h, contract_id, contract)

    def _on_egress(self, h: ev.BlockHeader, e: ev.Egress) -> None:
        if e.topic == topics.TOPIC_COLLATERAL:
            worker = self.workers.get(e.origin)
            if worker is None:
                return
            try:
                collateral = _bounded_decompress(e.payload, 256 * 1024)
            except ValueError:
                return
            if keccak(collateral) == worker.collateral_hash:
                self.collaterals[worker.collateral_hash] = collateral
                self._endorse_pending(h)
        elif e.topic == topics.TOPIC_CLUSTER_KEY_SHARE:
            self._on_cluster_key_share(h, e)
        elif e.topic == topics.TOPIC_MASTER_KEY_SHARE:
            self._on_master_key_share(e)

    def _on_cluster_key_share(self, h: ev.BlockHeader, e: ev.Egress) -> None:
        if self.master is None or e.origin != self.master[1]:
            return  # shares come only from the current master origin
        try:
            cluster_id, member, shares = _loose(e.payload)
        except (CodecError, TypeError, ValueError):
            return
        if member != self.address or not isinstance(shares, list):
            return
        newly = False
        for item in shares:
            try:
                epoch, wrapped = item
                binding = Binding(
                    chain_id=self.config.chain_id,
                    target=self.address + cluster_id,
                    epoch=int(epoch),
                    purpose=proto.PURPOSE_CLUSTER_KEY,
                )
                key = open_key_envelope(self.keys.identity, wrapped, binding=binding)
            except (EnvelopeInvalid, UnsupportedVersion, TypeError, ValueError):
                continue
            if (cluster_id, int(epoch)) not in self.keys.cluster_keys:
                self.keys.cluster_keys[(cluster_id, int(epoch))] = key
                newly = True
        if newly:
            if self.resync_required and self.resync_keyring is None:
                self.resync_keyring = self.keys.export()
            self._drain_buffer(cluster_id)

    def _on_master_key_share(self, e: ev.Egress) -> None:
        if e.origin not in self.gatekeepers:
            return
        try:
            kind, target, rotation, wrapped = _loose(e.payload)
        except (CodecError, TypeError, ValueError):
            return
        if target != self.address or not isinstance(rotation, int):
            return
        if kind == "proposal":
            self.master_shares[(rotation, e.origin)] = wrapped
        elif kind == "history":
            key = self._unwrap_master(wrapped, rotation)
            if key is not None:
                self.keys.masters.setdefault(rotation, key)

    # ---- contracts ----

    def _on_contract_deployed(self, h: ev.BlockHeader, e: ev.ContractDeployed) -> None:
        if e.contract_id in self.contracts or e.cluster_id not in self.clusters:
            return
        contract = ContractInfo(
            cluster=e.cluster_id,
            owner=e.owner,
            controller=e.controller,
            code_hash=e.code_hash,
            code=e.code,
            init_args=e.init_args,
        )
        self.contracts[e.contract_id] = contract
        self.clusters[e.cluster_id].has_history = True
        if self.clusters[e.cluster_id].current_epoch > 0:
            self._key_contract(h, e.contract_id, contract)

    def _key_contract(self, h: ev.BlockHeader, contract_id: bytes, contract: ContractInfo) -> None:
        """Move a contract to its cluster's current epoch; members post its new public key."""
        cluster = self.clusters[contract.cluster]
        epoch = cluster.current_epoch
        if contract.epoch >= epoch:
            return
        contract.epoch = epoch
        contract.epochs[epoch] = EpochInfo(key_address=b"", public_key=b"", keyed_at=h.number)
        epoch_info = cluster.epochs[epoch]
        member = self._serves(contract.cluster)
        key = self.keys.contract_key(contract.cluster, contract_id, epoch) if member else None
        cluster_key = self.keys.cluster_key(contract.cluster, epoch) if member else None
        public = b"" if key is None else key.public.x25519
        if key is not None:
            payload = abi_encode(
                ["bytes32", "uint64", "address", "bytes"],
                [contract_id, epoch, key.address.hex, public],
            )
        else:
            payload = b""
        self.outbox.emit(cluster_key, epoch_info.key_address, topics.TOPIC_CONTRACT_KEY, payload)
        if not member:
            return
        if key is None:
            raise NotReady("a serving replica applied a keyed event without its key")
        runtime = self.runtimes.get(contract_id)
        mac_key = key.symmetric("state-digest")
        if runtime is None:
            runtime = ContractRuntime(state=ContractState(contract_id, mac_key))
            self.runtimes[contract_id] = runtime
        else:
            runtime.state.rekey(mac_key)
        if not contract.initialized:
            contract.initialized = True
            self._run_init(h, contract_id, contract, runtime)

    def _on_contract_key_set(self, h: ev.BlockHeader, e: ev.ContractKeySet) -> None:
        contract = self.contracts.get(e.contract_id)
        if contract is None or e.epoch not in contract.epochs:
            return
        info = contract.epochs[e.epoch]
        info.key_address, info.public_key = e.key_address, e.public_key
        key = self.keys.contract_key(contract.cluster, e.contract_id, e.epoch)
        if key is not None and key.address.raw != e.key_address:
            self.diverged.append(f"contract key mismatch for epoch {e.epoch}")

    def _on_contract_paused(self, h: ev.BlockHeader, e: ev.ContractPaused) -> None:
        if e.contract_id in self.contracts:
            self.contracts[e.contract_id].paused = e.paused

    def _on_contract_upgraded(self, h: ev.BlockHeader, e: ev.ContractUpgraded) -> None:
        contract = self.contracts.get(e.contract_id)
        if contract is not None:
            contract.code, contract.code_hash = e.code, e.code_hash
            self._agents.pop(e.contract_id, None)

    def _on_owner_changed(self, h: ev.BlockHeader, e: ev.ContractOwnerChanged) -> None:
        if e.contract_id in self.contracts:
            self.contracts[e.contract_id].owner = e.owner

    def _on_controller_changed(self, h: ev.BlockHeader, e: ev.ContractControllerChanged) -> None:
        if e.contract_id in self.contracts:
            self.contracts[e.contract_id].controller = e.controller

    def _run_init(
        self, h: ev.BlockHeader, contract_id: bytes, contract: ContractInfo, rt: ContractRuntime
    ) -> None:
        args: JSONValue = {}
        raw = contract.init_args
        try:
            if raw[:1] == bytes([proto.INIT_PUBLIC_TAG]):
                args = json.loads(raw[1:].decode()) if len(raw) > 1 else {}
            elif raw:
                cluster_key = self.keys.cluster_key(contract.cluster, contract.epoch)
                if cluster_key is None:
                    raise NotReady("no cluster key for init")
                binding = Binding(
                    chain_id=self.config.chain_id,
                    target=contract.cluster,
                    epoch=peek_envelope(raw).epoch,
                    purpose=proto.PURPOSE_INIT,
                )
                older = self.keys.cluster_key(contract.cluster, binding.epoch) or cluster_key
                args = json.loads(open_envelope(older, raw, binding=binding).decode())
        except (VeilnetError, ValueError) as exc:
            rt.outcomes[-1] = _failure_outcome(getattr(exc, "code", "invalid_init"), str(exc))
            return
        outcome = self._invoke(
            h, contract_id, Entry.INIT, args, caller=contract.owner, seq=-1, journal=_Journal()
        )
        rt.outcomes[-1] = outcome

    def _on_command(self, h: ev.BlockHeader, e: ev.Command) -> None:
        contract = self.contracts.get(e.contract_id)
        if contract is None:
            return
        cluster = self.clusters[contract.cluster]
        cluster.has_history = True
        if not self._serves(contract.cluster):
            return
        rt = self.runtimes.get(e.contract_id)
        if rt is None:
            return
        rt.outcomes[e.seq] = self._execute_command(h, e, contract, rt)
        while len(rt.outcomes) > C.MAX_OUTCOMES_PER_CONTRACT:
            del rt.outcomes[next(iter(rt.outcomes))]

    def _execute_command(
        self, h: ev.BlockHeader, e: ev.Command, contract: ContractInfo, rt: ContractRuntime
    ) -> dict[str, Any]:
        if contract.paused:
            return _failure_outcome("runtime_contract_paused", "contract is paused", e.sender)
        try:
            key = self._contract_key_for(h, e.contract_id, contract, e.payload)
            plain = open_envelope(
                key,
                e.payload,
                binding=proto.command_binding(
                    self.config.chain_id, e.contract_id, peek_envelope(e.payload).epoch
                ),
            )
            command = proto.CommandPlaintext.from_bytes(plain, max_size=limits.MAX_COMMAND_PLAINTEXT)
        except VeilnetError as exc:
            return _failure_outcome(exc.code, exc.message, e.sender)
        if command.sender != e.sender:
            return _failure_outcome(
                "runtime_command_rejected", "envelope was made for another sender", e.sender
            )
        if command.nonce <= rt.nonces.get(e.sender, -1):
            return _failure_outcome("runtime_command_replayed", "nonce already used", e.sender)
        rt.nonces[e.sender] = command.nonce
        if command.kind == "secret":
            return self._set_secret(contract, rt, e.sender, command.body)
        if command.kind != "call":
            return _failure_outcome("runtime_command_rejected", "unknown command kind", e.sender)
        try:
            msg = json.loads(command.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return _failure_outcome("runtime_command_rejected", "body is not JSON", e.sender)
        return self._invoke(
            h, e.contract_id, Entry.HANDLE, msg, caller=e.sender, seq=e.seq, journal=_Journal()
        )

    def _set_secret(
        self, contract: ContractInfo, rt: ContractRuntime, sender: bytes, body: bytes
    ) -> dict[str, Any]:
        if sender != contract.owner:
            return _failure_outcome("runtime_not_authorized", "only the owner sets secrets", sender)
        try:
            name, value = _loose(body)
        except (CodecError, TypeError, ValueError):
            return _failure_outcome(
                "runtime_command_rejected", "secret must be [name, value]", sender
            )
        if not isinstance(name, str) or not isinstance(value, str):
            return _failure_outcome(
                "runtime_command_rejected", "secret must be [name, value]", sender
            )
        rt.secrets[name] = value
        return {"ok": True, "sender": sender, "result": {"secret": name}, "events": [], "fuel": 0}

    def _contract_key_for(
        self, h: ev.BlockHeader, contract_id: bytes, contract: ContractInfo, envelope: bytes
    ) -> SecretKey:
        """The contract key for the envelope's epoch, if that epoch is within its window."""
        return self._contract_key_at(h, contract_id, contract, peek_envelope(envelope).epoch)

    def _contract_key_at(
        self, h: ev.BlockHeader, contract_id: bytes, contract: ContractInfo, epoch: int
    ) -> SecretKey:
        """The contract key of ``epoch``, if that epoch is within its window."""
        if epoch not in contract.epochs:
            raise KeyEpochExpired("envelope names an epoch this contract was never keyed at")
        successor = min((k for k in contract.epochs if k > epoch), default=None)
        if successor is not None:
            expires = contract.epochs[successor].keyed_at + self.config.key_window_blocks
            if h.number > expires:
                raise KeyEpochExpired("the key epoch's window has passed", epoch=epoch)
        key = self.keys.contract_key(contract.cluster, contract_id, epoch)
        if key is None:
            raise KeyEpochExpired("the key of this epoch is no longer held", epoch=epoch)
        return key

    def _invoke(
        self,
        h: ev.BlockHeader,
        contract_id: bytes,
        entry: Entry,
        payload: JSONValue,
        *,
        caller: bytes,
        seq: int,
        journal: _Journal,
    ) -> dict[str, Any]:
        ctx = Context(
            caller=Address(caller).hex if len(caller) == 20 else "0x" + caller.hex(),
            contract_id="0x" + contract_id.hex(),
            block_number=h.number,
            block_timestamp=h.timestamp,
            mode=entry.mode,
        )
        host = _Host(self, h, contract_id, ctx, journal, seq=seq)
        try:
            agent = self._agent(contract_id)
            outcome = self.engine.invoke(agent, entry, payload, host, ctx, self.config.limits)
        except SandboxError as exc:
            if not exc.deterministic:
                raise
            return _failure_outcome(exc.code, exc.message, caller)
        if outcome.error is not None:
            return _failure_outcome(
                outcome.error.code, outcome.error.message, caller, outcome.fuel_used
            )
        if entry.mode is Mode.COMMAND:
            journal.merge(contract_id, dict(outcome.state_writes))
            for target, writes in journal.writes.items():
                self.runtimes[target].state.apply(writes)
        return {
            "ok": True,
            "sender": caller,
            "result": outcome.result,
            "events": [*outcome.events, *journal.events],
            "fuel": outcome.fuel_used,
        }

    def _agent(self, contract_id: bytes) -> object:
        agent = self._agents.get(contract_id)
        if agent is None:
            contract = self.contracts[contract_id]
            try:
                language, source = proto.unpack_code(contract.code)
            except (CodecError, ValueError) as exc:
                from veilnet.sandbox.errors import SandboxCompileError

                raise SandboxCompileError("agent code is not a packed agent") from exc
            agent = self.engine.load(Language(language), source, self.config.limits)
            self._agents[contract_id] = agent
        return agent

    # ---- epochs and commitments ----

    def _expire_epochs(self, h: ev.BlockHeader) -> None:
        """Destroy cluster keys whose successor epoch was keyed more than a window ago."""
        for cluster_id, epoch in list(self.keys.cluster_keys):
            cluster = self.clusters.get(cluster_id)
            if cluster is None:
                continue
            successor = min((k for k in cluster.epochs if k > epoch), default=None)
            if successor is None:
                continue
            if h.number > cluster.epochs[successor].keyed_at + self.config.key_window_blocks:
                self.keys.forget_cluster_epoch(cluster_id, epoch)

    def cluster_commitment(self, cluster_id: bytes) -> bytes | None:
        """Keyed hash over the digests of the cluster's contract states (None without the key)."""
        cluster = self.clusters.get(cluster_id)
        if cluster is None or self.head is None:
            return None
        key = self.keys.cluster_key(cluster_id, cluster.current_epoch)
        if key is None:
            return None
        digests = [
            [cid, self.runtimes[cid].state.digest]
            for cid in sorted(self.runtimes)
            if self.contracts[cid].cluster == cluster_id
        ]
        return key.symmetric("commitment").mac(encode([cluster_id, self.head.number, digests]))

    def _maybe_commit(self, h: ev.BlockHeader) -> None:
        interval = self.config.commitment_interval
        if interval <= 0 or h.number % interval != 0:
            return
        for cluster_id, cluster in self.clusters.items():
            if self.address not in cluster.members:
                continue
            commitment = self.cluster_commitment(cluster_id)
            if commitment is None:
                continue
            payload = abi_encode(
                ["bytes32", "uint64", "bytes32"], [cluster_id, h.number, commitment]
            )
            self.outbox.emit(self.keys.identity, self.address, topics.TOPIC_STATE_COMMITMENT, payload)

    def _maybe_heartbeat(self, h: ev.BlockHeader) -> None:
        """Registered workers prove liveness: the block they applied, signed by their identity."""
        interval = self.config.heartbeat_interval
        if interval <= 0 or h.number % interval != 0 or self.address not in self.workers:
            return
        payload = abi_encode(["uint64", "bytes32"], [h.number, h.hash])
        self.outbox.emit(self.keys.identity, self.address, topics.TOPIC_HEARTBEAT, payload)

    # ---- buffering for members waiting for a key ----

    def _serves(self, cluster_id: bytes) -> bool:
        """Whether this worker keeps the cluster's contract state: a member, or (in a resync
        from genesis) already holding one of its keys."""
        cluster = self.clusters.get(cluster_id)
        if cluster is None:
            return False
        return self.address in cluster.members or any(
            c == cluster_id for c, _ in self.keys.cluster_keys
        )

    def _cluster_of(self, event: ev.ChainEvent) -> bytes | None:
        if isinstance(event, ev.ContractDeployed | ev.ClusterKeySet):
            return event.cluster_id
        contract_id = getattr(event, "contract_id", None)
        if contract_id is not None and contract_id in self.contracts:
            return self.contracts[contract_id].cluster
        return None

    def _lacks_key(self, cluster_id: bytes, event: ev.ChainEvent) -> bool:
        """A serving replica must wait for the key this event needs before applying it."""
        if not self._serves(cluster_id):
            return False
        cluster = self.clusters[cluster_id]
        epoch = event.epoch if isinstance(event, ev.ClusterKeySet) else cluster.current_epoch
        if isinstance(event, ev.ClusterKeySet) and epoch <= cluster.current_epoch:
            return False
        return epoch > 0 and self.keys.cluster_key(cluster_id, epoch) is None

    def _drain_buffer(self, cluster_id: bytes) -> None:
        """Apply events held back for want of a key, in order, until one still lacks its key."""
        pending = self.buffered.pop(cluster_id, [])
        for index, (header, event) in enumerate(pending):
            if self._lacks_key(cluster_id, event):
                self.buffered[cluster_id] = pending[index:]
                return
            handler = _HANDLERS.get(type(event))
            if handler is not None:
                handler(self, header, event)

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
        """Check and open a query, and snapshot the committed state it may read (fast).

        Raises as ``query`` does; nothing changes but the replay cache of request ids.
        """
        if self.head is None:
            raise NotReady("no block applied yet")
        if len(request) > limits.MAX_QUERY_ENVELOPE:
            raise QueryRejected("query is larger than allowed", max_size=limits.MAX_QUERY_ENVELOPE)
        try:
            parsed = proto.QueryRequest.from_bytes(request, max_size=limits.MAX_QUERY_ENVELOPE)
            cert = parsed.certificate
            cert_digest = cert.digest
            if cert_digest not in self._verified_certificates:
                cert.verify()
                self._remember_certificate(cert_digest)
        except (CodecError, SignatureInvalid) as exc:
            raise QueryRejected(exc.message) from exc
        if cert.chain_id != self.config.chain_id:
            raise QueryRejected("certificate is for another chain")
        if cert.expires_block < self.head.number:
            raise QueryRejected("certificate has expired", expired_at=cert.expires_block)
        if cert.expires_block > self.head.number + limits.QUERY_CERT_MAX_BLOCKS:
            raise QueryRejected("certificate lifetime is too long")
        contract = self.contracts.get(parsed.contract_id)
        if contract is None or contract.epoch == 0:
            raise ContractUnavailable("unknown or unkeyed contract")
        rt = self.runtimes.get(parsed.contract_id)
        if rt is None:
            raise NotReady("this worker does not serve the contract's cluster")
        try:
            epoch = peek_envelope(parsed.session).epoch
        except VeilnetError as exc:
            raise QueryRejected(exc.message) from exc
        self._contract_key_at(self.head, parsed.contract_id, contract, epoch)
        try:
            session = self.keys.query_session(
                contract.cluster,
                parsed.contract_id,
                epoch,
                parsed.session,
                cert.ephemeral_key,
                chain_id=self.config.chain_id,
            )
            if session is None:
                raise KeyEpochExpired("the key of this epoch is no longer held", epoch=epoch)
            inner = proto.QueryPlaintext.from_bytes(
                session.open(parsed.ciphertext, request_id=parsed.request_id, direction="request")
            )
        except (CodecError, EnvelopeInvalid, UnsupportedVersion, KeyInvalid) as exc:
            raise QueryRejected(exc.message) from exc
        except ValueError as exc:
            raise QueryRejected("malformed query") from exc
        if not hmac.compare_digest(inner.certificate_digest, cert_digest):
            raise QueryRejected("query was made under another certificate")
        replay_key = cert.wallet + parsed.request_id
        if replay_key in self._seen_queries:
            raise QueryRejected("request id was already used")
        answer: Any = None
        msg: JSONValue = None
        if inner.kind == "outcome":
            answer = self._outcome_answer(rt, cert, inner)
        elif inner.kind == "call":
            try:
                msg = json.loads(inner.body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as exc:
                raise QueryRejected("query body is not JSON") from exc
        else:
            raise QueryRejected("unknown query kind")
        self._remember_query(replay_key, cert.expires_block)
        snapshot = self._snapshot(contract.cluster)
        return PreparedQuery(
            contract_id=parsed.contract_id,
            wallet=cert.wallet,
            session=session,
            request_id=parsed.request_id,
            msg=msg,
            answer=answer,
            head=self.head,
            commitment=rt.state.digest,
            snapshot=snapshot,
        )

    def _snapshot(self, cluster_id: bytes) -> dict[bytes, _Snapshot]:
        """Copies of the committed state of every served contract of a cluster (queries and
        the agent calls they make read only these). Made once per block and cluster: copying
        every state on every query would cost O(state) per query."""
        found = self._query_snapshots.get(cluster_id)
        if found is None:
            found = self._query_snapshots[cluster_id] = self._copy_state(cluster_id)
        return found

    def _copy_state(self, cluster_id: bytes) -> dict[bytes, _Snapshot]:
        return {
            cid: _Snapshot(
                values=dict(self.runtimes[cid].state.values),
                secrets=dict(self.runtimes[cid].secrets),
                epoch=info.epoch,
            )
            for cid, info in self.contracts.items()
            if info.cluster == cluster_id and cid in self.runtimes
        }

    def run_query(self, prepared: PreparedQuery, *, io: QueryIO | None = None) -> bytes:
        """Run a prepared query on its snapshot, then encrypt and sign the answer.

        Touches no mutable core state, so blocks may be applied meanwhile.
        """
        result = prepared.answer
        if result is None:
            result = _public_outcome(self._invoke_query(prepared, io=io))
        ciphertext = prepared.session.seal(
            json.dumps(result, sort_keys=True, separators=(",", ":")).encode(),
            request_id=prepared.request_id,
            direction="response",
        )
        response = proto.sign_response(
            self.keys.identity,
            self.config.response_domain,
            request_id=prepared.request_id,
            contract_id=prepared.contract_id,
            block_number=prepared.head.number,
            block_hash=prepared.head.hash,
            state_commitment=prepared.commitment,
            ciphertext=ciphertext,
        )
        return response.to_bytes()

    def _remember_certificate(self, digest: bytes) -> None:
        if len(self._verified_certificates) >= C.MAX_CACHED_CERTIFICATES:
            del self._verified_certificates[next(iter(self._verified_certificates))]
        self._verified_certificates[digest] = None

    def _remember_query(self, replay_key: bytes, expires: int) -> None:
        assert self.head is not None
        if len(self._seen_queries) > 100_000:
            now = self.head.number
            self._seen_queries = {k: v for k, v in self._seen_queries.items() if v >= now}
        self._seen_queries[replay_key] = expires

    def _outcome_answer(
        self, rt: ContractRuntime, cert: proto.QueryCertificate, inner: proto.QueryPlaintext
    ) -> Any:
        try:
            seq = _loose(inner.body)
        except CodecError as exc:
            raise QueryRejected("outcome query needs a sequence number") from exc
        if not isinstance(seq, int):
            raise QueryRejected("outcome query needs a sequence number")
        outcome = rt.outcomes.get(seq)
        if outcome is None:
            return {"status": "pending"}
        if outcome.get("sender") != cert.wallet:
            raise QueryRejected("only the command's sender may read its outcome")
        return {"status": "applied", **_public_outcome(outcome)}

    def _invoke_query(self, prepared: PreparedQuery, *, io: QueryIO | None) -> dict[str, Any]:
        ctx = Context(
            caller=Address(prepared.wallet).hex,
            contract_id="0x" + prepared.contract_id.hex(),
            block_number=prepared.head.number,
            block_timestamp=prepared.head.timestamp,
            mode=Mode.QUERY,
        )
        host = _Host(
            self,
            prepared.head,
            prepared.contract_id,
            ctx,
            _Journal(),
            seq=-2,
            io=io,
            snapshot=prepared.snapshot,
        )
        caller = prepared.wallet
        try:
            outcome = self.engine.invoke(
                self._agent(prepared.contract_id),
                Entry.QUERY,
                prepared.msg,
                host,
                ctx,
                self.config.limits,
            )
        except SandboxError as exc:
            return _failure_outcome(exc.code, exc.message, caller)
        if outcome.error is not None:
            return _failure_outcome(
                outcome.error.code, outcome.error.message, caller, outcome.fuel_used
            )
        return {
            "ok": True,
            "sender": caller,
            "result": outcome.result,
            "events": list(outcome.events),
            "fuel": outcome.fuel_used,
        }

    # ------------------------------------------------------------------ attestation --------

    def attest(self, nonce: bytes) -> bytes:
        """A quote whose report_data is this worker's address (32-byte padded) and the nonce."""
        if len(nonce) != 32:
            raise ValueError("nonce must be 32 bytes")
        return self.platform.quote(self.address.rjust(32, b"\x00") + nonce)

    # ------------------------------------------------------------------ checkpoints --------

    def checkpoint(self) -> bytes:
        """The whole core state, sealed: keys under the identity, all of it under the platform."""
        if self.head is None:
            raise NotReady("nothing to checkpoint before the first block")
        body = encode(
            {
                "v": CHECKPOINT_VERSION,
                "chain_id": self.config.chain_id,
                "registry": self.config.registry,
                "identity": self.address,
                "keys": self.keys.export(),
                "state": self._export_state(),
            }
        )
        sealed = self.keys.sealer.seal(body, aad=b"checkpoint" + self.address)
        return encode({"identity": self.sealed_identity(), "body": sealed})

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
        try:
            outer = _loose(blob)
            if not isinstance(outer, dict):
                raise CheckpointInvalid("malformed checkpoint")
            core = cls.boot(
                config=config,
                platform=platform,
                engine=engine,
                verifier=verifier,
                sealed_identity=outer["identity"],
            )
            body = _loose(core.keys.sealer.open(outer["body"], aad=b"checkpoint" + core.address))
            if not isinstance(body, dict) or body.get("v") != CHECKPOINT_VERSION:
                raise CheckpointInvalid("unknown checkpoint version")
            if body["chain_id"] != config.chain_id or body["registry"] != config.registry:
                raise CheckpointInvalid("checkpoint belongs to another network")
            core.keys.import_(body["keys"])
            core._import_state(body["state"])
        except CheckpointInvalid:
            raise
        except (VeilnetError, KeyError, TypeError, ValueError) as exc:
            raise CheckpointInvalid("checkpoint does not open or is malformed") from exc
        return core

    def state_root(self) -> bytes:
        """Digest of the replicated state replicas of one cluster must agree on.

        Leaves out what is private to one worker: its own identity origin's egress counter,
        held-back events and the resync flag.
        """
        state = self._export_state(sealed=False)
        state["counters"] = [[o, n] for o, n in state["counters"] if o not in self.workers]
        for private in ("buffered", "resync_required"):
            state.pop(private)
        return hashlib.sha256(encode(state)).digest()

    def _export_state(self, *, sealed: bool = True) -> dict[str, Any]:
        assert self.head is not None
        contracts_private = {}
        for cid, rt in sorted(self.runtimes.items()):
            contract = self.contracts[cid]
            key = self.keys.contract_key(contract.cluster, cid, contract.epoch)
            if sealed and key is not None:
                entries: Any = rt.state.export_sealed(key.symmetric("state"))
            else:
                entries = [[k, v] for k, v in sorted(rt.state.values.items())]
            contracts_private[cid.hex()] = {
                "entries": entries,
                "nonces": [[s, n] for s, n in sorted(rt.nonces.items())],
                "outcomes": [[s, _outcome_value(o)] for s, o in rt.outcomes.items()],
                "secrets": [[n, v] for n, v in sorted(rt.secrets.items())],
            }
        return {
            "head": self.head.to_bytes(),
            "counters": [[o, n] for o, n in sorted(self.outbox.counters.items())],
            "measurements": sorted(self.measurements),
            "gatekeepers": list(self.gatekeepers),
            "workers": [[a, _dc_value(w)] for a, w in self.workers.items()],
            "collaterals": [[h, c] for h, c in self.collaterals.items()],
            "master": None if self.master is None else list(self.master),
            "first_gatekeeper_block": self.first_gatekeeper_block,
            "rotation": self.rotation,
            "proposal": None if self.proposal is None else list(self.proposal),
            "master_shares": [[r, p, w] for (r, p), w in self.master_shares.items()],
            "clusters": [[c, _dc_value(i)] for c, i in self.clusters.items()],
            "contracts": [[c, _dc_value(i)] for c, i in self.contracts.items()],
            "private": contracts_private,
            "buffered": [
                [c, [[h.to_bytes(), e.to_bytes()] for h, e in items]]
                for c, items in self.buffered.items()
            ],
            "resync_required": self.resync_required,
        }

    def _import_state(self, s: Any) -> None:
        from veilnet.codec import decode_record

        self.head = ev.BlockHeader.from_bytes(s["head"])
        self.outbox.counters = dict(s["counters"])
        self.measurements = set(s["measurements"])
        self.gatekeepers = list(s["gatekeepers"])
        self.workers = {a: _dc_from(WorkerInfo, w) for a, w in s["workers"]}
        self.collaterals = dict(s["collaterals"])
        self.master = (
            None if s["master"] is None else (s["master"][0], s["master"][1], s["master"][2])
        )
        self.first_gatekeeper_block = s["first_gatekeeper_block"]
        self.rotation = s["rotation"]
        self.proposal = None if s["proposal"] is None else (s["proposal"][0], s["proposal"][1])
        self.master_shares = {(r, p): w for r, p, w in s["master_shares"]}
        self.clusters = {c: _dc_from(ClusterInfo, i) for c, i in s["clusters"]}
        self.contracts = {c: _dc_from(ContractInfo, i) for c, i in s["contracts"]}
        for cid_hex, data in s["private"].items():
            cid = bytes.fromhex(cid_hex)
            contract = self.contracts[cid]
            key = self.keys.contract_key(contract.cluster, cid, contract.epoch)
            if key is None:
                raise CheckpointInvalid("checkpoint lacks a contract's key")
            rt = ContractRuntime(state=ContractState(cid, key.symmetric("state-digest")))
            rt.state.import_sealed(key.symmetric("state"), data["entries"])
            rt.nonces = dict(data["nonces"])
            rt.outcomes = {seq: _outcome_from(o) for seq, o in data["outcomes"]}
            rt.secrets = dict(data["secrets"])
            self.runtimes[cid] = rt
        self.buffered = {
            c: [
                (ev.BlockHeader.from_bytes(hb), cast(ev.ChainEvent, decode_record(eb)))
                for hb, eb in items
            ]
            for c, items in s["buffered"]
        }
        self.resync_required = bool(s["resync_required"])

    def export_keyring(self) -> bytes:
        """Keys only, sealed under the identity: carried into a resync from genesis."""
        return self.keys.export()


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """Committed state of one contract, copied for a query that runs outside the core lock."""

    values: dict[str, bytes]
    secrets: dict[str, str]
    epoch: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PreparedQuery:
    """A checked, opened query and the snapshot it reads (from ``prepare_query``)."""

    contract_id: bytes
    wallet: bytes
    session: QuerySession = field(repr=False)
    """Seals the answer so that only the client's certified query key can open it."""
    request_id: bytes
    msg: Any
    answer: Any
    """Already computed (outcome queries); None when the agent must run."""
    head: ev.BlockHeader
    commitment: bytes
    snapshot: dict[bytes, _Snapshot] = field(repr=False)


class QueryIO:
    """I/O the host lends to query and job modes (HTTP and LLM); absent in command mode."""

    def __init__(
        self,
        *,
        http_fetch: Callable[[list[JSONValue]], list[JSONValue]] | None = None,
        llm_chat: Callable[[JSONValue], JSONValue] | None = None,
    ) -> None:
        self.http_fetch = http_fetch
        self.llm_chat = llm_chat


@dataclass(slots=True)
class _Journal:
    """Writes and events of nested agent calls: committed with the top call, or not at all."""

    writes: dict[bytes, dict[str, bytes | None]] = field(default_factory=dict)
    events: list[JSONValue] = field(default_factory=list)

    def merge(self, contract_id: bytes, writes: dict[str, bytes | None]) -> None:
        self.writes.setdefault(contract_id, {}).update(writes)


class _Host:
    """The HostAPI the core grants one invocation: committed state, deterministic randomness,
    the contract's keys, nested calls within the cluster, and I/O only in query/job modes."""

    def __init__(
        self,
        core: EnclaveCore,
        header: ev.BlockHeader,
        contract_id: bytes,
        ctx: Context,
        journal: _Journal,
        *,
        seq: int,
        io: QueryIO | None = None,
        snapshot: dict[bytes, _Snapshot] | None = None,
    ) -> None:
        self.core = core
        self.snapshot = snapshot
        self.header = header
        self.contract_id = contract_id
        self.ctx = ctx
        self.journal = journal
        self.seq = seq
        self.io = io
        self._counter = 0

    def _runtime(self) -> ContractRuntime:
        return self.core.runtimes[self.contract_id]

    def _key(self) -> SecretKey:
        contract = self.core.contracts[self.contract_id]
        epoch = contract.epoch
        if self.snapshot is not None and self.contract_id in self.snapshot:
            epoch = self.snapshot[self.contract_id].epoch
        key = self.core.keys.contract_key(contract.cluster, self.contract_id, epoch)
        if key is None:
            raise SandboxAgentError("contract key unavailable")
        return key

    def state_get(self, key: str) -> bytes | None:
        if self.snapshot is not None:
            return self.snapshot[self.contract_id].values.get(key)
        pending = self.journal.writes.get(self.contract_id, {})
        if key in pending:
            return pending[key]
        return self._runtime().state.get(key)

    def state_keys(self, prefix: str) -> list[str]:
        if self.snapshot is not None:
            return sorted(k for k in self.snapshot[self.contract_id].values if k.startswith(prefix))
        keys = set(self._runtime().state.keys(prefix))
        for name, value in self.journal.writes.get(self.contract_id, {}).items():
            if name.startswith(prefix):
                (keys.discard if value is None else keys.add)(name)
        return sorted(keys)

    def random_bytes(self, n: int) -> bytes:
        """Private, deterministic: keyed by the contract key, the block hash and the command."""
        out = b""
        base = self._key().symmetric("random")
        while len(out) < n:
            self._counter += 1
            out += base.mac(encode([self.header.hash, self.seq, self.ctx.depth, self._counter]))
        return out[:n]

    def secret_get(self, name: str) -> str | None:
        if self.snapshot is not None:
            return self.snapshot[self.contract_id].secrets.get(name)
        return self._runtime().secrets.get(name)

    def derive_key(self, salt: str) -> str:
        return self._key().symmetric("derive", salt).mac(b"agent-derived-key").hex()

    def sign(self, payload: bytes) -> str:
        return sign_text(self._key(), payload).hex()

    def call(self, contract_id: str, msg: JSONValue, *, ctx: Context, fuel: int) -> CallResult:
        try:
            target = bytes.fromhex(contract_id.removeprefix("0x"))
        except ValueError as exc:
            raise SandboxAgentError("malformed contract id") from exc
        callee = self.core.contracts.get(target)
        caller = self.core.contracts[self.contract_id]
        served = self.core.runtimes if self.snapshot is None else self.snapshot
        if callee is None or callee.cluster != caller.cluster or target not in served:
            raise SandboxAgentError("no such contract in this cluster", contract_id=contract_id)
        if callee.paused:
            raise SandboxAgentError("callee is paused", contract_id=contract_id)
        limits = self.core.config.limits
        if ctx.depth > min(limits.call_depth, limits.MAX_CALL_DEPTH):
            raise SandboxCallDepth("agent calls nest too deeply", kind="agent_calls")
        entry = Entry.HANDLE if ctx.mode is Mode.COMMAND else Entry(ctx.mode.value)
        nested_limits = dataclasses.replace(limits, fuel=max(1, min(limits.fuel, fuel)))
        child = _Host(
            self.core,
            self.header,
            target,
            ctx,
            self.journal,
            seq=self.seq,
            io=self.io,
            snapshot=self.snapshot,
        )
        outcome: Outcome = self.core.engine.invoke(
            self.core._agent(target), entry, msg, child, ctx, nested_limits
        )
        if outcome.error is not None:
            error = outcome.error
            raise type(error)(
                f"nested call to {contract_id} failed: {error.message}", **error.details
            )
        self.journal.events.extend(outcome.events)
        if ctx.mode is Mode.COMMAND:
            self.journal.merge(target, dict(outcome.state_writes))
        return CallResult(value=outcome.result, fuel_used=outcome.fuel_used)

    def http_fetch(self, requests: list[JSONValue]) -> list[JSONValue]:
        if self.ctx.mode is Mode.COMMAND or self.io is None or self.io.http_fetch is None:
            raise SandboxAgentError("http.fetch is not available here")
        try:
            return self.io.http_fetch(requests)
        except VeilnetError as exc:
            raise SandboxAgentError(f"http.fetch failed: {exc.code}: {exc.message}") from exc

    def llm_chat(self, request: JSONValue) -> JSONValue:
        """Only answers whose gateway receipt verified reach the agent; others are its error."""
        if self.ctx.mode is Mode.COMMAND or self.io is None or self.io.llm_chat is None:
            raise SandboxAgentError("llm.chat is not available here")
        try:
            return self.io.llm_chat(request)
        except VeilnetError as exc:
            raise SandboxAgentError(f"llm.chat failed: {exc.code}: {exc.message}") from exc


# ---------------------------------------------------------------------- helpers -------------


def _failure_outcome(
    code: str, message: str, sender: bytes | None = None, fuel: int = 0
) -> dict[str, Any]:
    return {
        "ok": False,
        "sender": sender,
        "error": {"code": code, "message": message},
        "events": [],
        "fuel": fuel,
    }


def _public_outcome(outcome: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in outcome.items() if k != "sender"}


def _outcome_value(outcome: dict[str, Any]) -> bytes:
    return json.dumps(
        {**outcome, "sender": None if outcome.get("sender") is None else outcome["sender"].hex()},
        sort_keys=True,
        separators=(",", ":"),
    ).encode()


def _outcome_from(raw: bytes) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(raw)
    if value.get("sender") is not None:
        value["sender"] = bytes.fromhex(value["sender"])
    return value


def _dc_value(item: Any) -> bytes:
    """Dataclass → canonical bytes (nested dataclasses and int-keyed dicts included)."""

    def convert(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: convert(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, dict):
            return [[convert(k), convert(v)] for k, v in value.items()]
        if isinstance(value, list | tuple):
            return [convert(v) for v in value]
        return value

    return encode({"t": type(item).__name__, "v": convert(item)})


def _dc_from(cls: type[Any], raw: bytes) -> Any:
    fields: dict[str, Any] = _loose(raw)["v"]
    if cls is ClusterInfo:
        fields["epochs"] = {k: EpochInfo(**v) for k, v in fields["epochs"]}
        fields["master_rotation"] = dict(fields["master_rotation"])
    if cls is ContractInfo:
        fields["epochs"] = {k: EpochInfo(**v) for k, v in fields["epochs"]}
    return cls(**fields)


@functools.lru_cache(maxsize=64)
def _domain(chain_id: int, verifying_contract: bytes) -> Domain:
    """Domains are immutable and their separators cost a keccak of an ABI encoding: cache."""
    return Domain(chain_id=chain_id, verifying_contract=Address(verifying_contract))


def _loose(data: bytes) -> Any:
    """Decode canonical bytes whose shape the caller checks itself (raises CodecError)."""
    return decode(data)


def _bounded_decompress(data: bytes, limit: int) -> bytes:
    decompressor = zlib.decompressobj()
    try:
        out = decompressor.decompress(data, limit)
    except zlib.error as exc:
        raise ValueError("bad compressed data") from exc
    if decompressor.unconsumed_tail or not decompressor.eof:
        raise ValueError("compressed data too large or truncated")
    return out


def _identity_aad(config: CoreConfig) -> bytes:
    return b"veil/v1/identity" + config.chain_id.to_bytes(8, "big") + config.registry


def _boot_sealer(wrap: bytes) -> Any:
    return SecretKey.derive(wrap[:32], "identity-wrap").symmetric("seal")


_HANDLERS: dict[type, Callable[[EnclaveCore, ev.BlockHeader, Any], None]] = {
    ev.MeasurementSet: EnclaveCore._on_measurement,
    ev.WorkerRegistered: EnclaveCore._on_worker_registered,
    ev.WorkerEndorsed: EnclaveCore._on_worker_endorsed,
    ev.GatekeeperAdded: EnclaveCore._on_gatekeeper_added,
    ev.GatekeeperRemoved: EnclaveCore._on_gatekeeper_removed,
    ev.MasterKeySet: EnclaveCore._on_master_key_set,
    ev.RotationLocked: EnclaveCore._on_rotation_locked,
    ev.RotationProposed: EnclaveCore._on_rotation_proposed,
    ev.MasterKeyRotated: EnclaveCore._on_master_key_rotated,
    ev.RotationAborted: EnclaveCore._on_rotation_aborted,
    ev.ClusterCreated: EnclaveCore._on_cluster_created,
    ev.ClusterWorkerAdded: EnclaveCore._on_cluster_worker_added,
    ev.ClusterWorkerRemoved: EnclaveCore._on_cluster_worker_removed,
    ev.ClusterKeySet: EnclaveCore._on_cluster_key_set,
    ev.ContractDeployed: EnclaveCore._on_contract_deployed,
    ev.ContractKeySet: EnclaveCore._on_contract_key_set,
    ev.ContractPaused: EnclaveCore._on_contract_paused,
    ev.ContractUpgraded: EnclaveCore._on_contract_upgraded,
    ev.ContractOwnerChanged: EnclaveCore._on_owner_changed,
    ev.ContractControllerChanged: EnclaveCore._on_controller_changed,
    ev.Command: EnclaveCore._on_command,
    ev.Egress: EnclaveCore._on_egress,
}


def iter_events(blocks: Iterable[ev.Block]) -> Iterable[tuple[ev.BlockHeader, ev.ChainEvent]]:
    for block in blocks:
        for event in block.events:
            yield block.header, event
