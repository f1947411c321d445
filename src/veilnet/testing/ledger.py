"""An in-memory model of the Registry and Bus contracts that emits the core's input events.
A test double for fast, deterministic runtime tests; integration tests use the real EVM chain.

The contracts are the truth and this model follows them rule for rule: the same callers are
allowed, the same checks run in the same order with the same revert reasons, the same events come
out with the same fields. ``tests/chain/test_chain_ledger_conformance.py`` runs the same scripted
scenarios (and a bounded random walk) against this model and against ``Registry.vy`` and
``Bus.vy`` on the embedded chain, comparing every outcome, every core event and the Registry's
views, so a rule changed on one side and not the other fails the build instead of drifting.
One deliberate difference: ``post`` answers False for an already used sequence number where the
Bus reverts with "sequence already used", because relays treat both as "someone was first".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from veilnet.chain.constants import (
    ATTESTATION_WINDOW,
    DEPOSIT_WINDOW,
    FLAG_CLONE,
    HEARTBEAT_WINDOW,
    KIND_CLUSTER,
    KIND_CONTRACT,
    KIND_MASTER,
    KIND_NONE,
    KIND_WORKER,
    MAX_API_URL,
    MAX_BATCHED_PAYLOAD,
    MAX_CLUSTER_WORKERS,
    MAX_CODE,
    MAX_COMMAND_BATCH,
    MAX_EGRESS_HOSTS,
    MAX_HOST_NAME,
    MAX_HPKE_KEY,
    MAX_INIT,
    MAX_PAYLOAD_BOUND,
    MAX_QUOTE,
    MAX_REQUEST,
    ROTATION_WINDOW,
    ROUTED_TOPICS,
)
from veilnet.codec import CodecError, abi_decode, abi_encode
from veilnet.crypto import (
    Address,
    Domain,
    SecretKey,
    SignatureInvalid,
    keccak,
    recover_typed,
    sign_typed,
)
from veilnet.crypto.constants import SECP256K1_HALF_N, SIGNATURE_LENGTH
from veilnet.protocol import events as ev
from veilnet.protocol import topics
from veilnet.protocol.chain import (
    POLICY_SEQUENCER,
    SEQUENCED_BLOCK_TYPE,
    ChainBlock,
    ChainTrust,
    bloom_of,
    encode_event,
    encode_header,
    encode_receipt,
    receipts_root,
)
from veilnet.protocol.egress import EGRESS_TYPE, EgressMessage
from veilnet.protocol.rotation import proves_possession
from veilnet.protocol.topics import MAX_ERROR_CODE

__all__ = [
    "KIND_CLUSTER",
    "KIND_CONTRACT",
    "KIND_MASTER",
    "KIND_NONE",
    "KIND_WORKER",
    "LEDGER_ANCHOR_HASH",
    "LEDGER_SEQUENCER_KEY",
    "LedgerSim",
    "Revert",
    "build_block",
]

LEDGER_ANCHOR_HASH: Final = keccak(b"veil ledger anchor")
"""Hash of block 0, the trust anchor of every ledger (its first block is 1)."""
LEDGER_SEQUENCER_KEY: Final = SecretKey.derive(b"\x5e" * 32, "ledger sequencer")
"""The ledger's default block signer (a test key; its address is in ``chain_trust``)."""
MAX_CONFIDENCE = 5
"""Highest endorsement confidence ``Registry.on_egress`` accepts."""
MAX_SCANNED_AT_VERDICT = 16
MAX_NAMED_AT_VERDICT = 4
"""The post that forms a verdict names at most 4 dissenters among the first 16 posters."""
_ZERO = b"\x00" * 20
_KEY_EPOCH_PAYLOAD = ["bytes32", "uint64", "address", "bytes"]
_AGENT_SCHEDULE_PAYLOAD = ["bytes32", "uint256", "address", "uint64", "bytes"]
"""(cluster or contract id, epoch, key address, public key) of cluster/contract key egress."""


def build_block(
    *,
    chain_id: int,
    registry: bytes,
    bus: bytes,
    parent_hash: bytes,
    number: int,
    timestamp: int,
    events: tuple[ev.ChainEvent, ...] = (),
    signer: SecretKey | None = None,
) -> tuple[ChainBlock, ev.BlockHeader]:
    """A raw block whose logs are ``events`` as the Registry and Bus emit them: one receipt per
    event, a real RLP header over their trie root and bloom, and the ``signer``'s sequencer
    signature (none without one). Returns the raw block and its header as the core derives it."""
    logs = [encode_event(event, registry=registry, bus=bus) for event in events]
    receipts = tuple(
        encode_receipt(status=True, cumulative_gas=21_000 * (index + 1), logs=[log])
        for index, log in enumerate(logs)
    )
    raw_header = encode_header(
        parent_hash=parent_hash,
        number=number,
        timestamp=timestamp,
        receipts_root=receipts_root(receipts),
        logs_bloom=bloom_of(logs),
    )
    header = ev.BlockHeader(
        number=number, hash=keccak(raw_header), parent_hash=parent_hash, timestamp=timestamp
    )
    evidence = b""
    if signer is not None:
        evidence = sign_typed(
            signer,
            Domain(chain_id=chain_id, verifying_contract=Address(registry)),
            SEQUENCED_BLOCK_TYPE,
            {"number": number, "blockHash": header.hash},
        )
    return ChainBlock(header=raw_header, receipts=receipts, evidence=evidence), header


class Revert(Exception):
    """A transaction reverted; the message says why (as the Vyper contracts do)."""


@dataclass(slots=True)
class _Worker:
    """``Registry.workers[addr]``; ``cluster`` is None where the contract stores zero."""

    quote_hash: bytes
    operator: bytes = _ZERO
    hpke_key: bytes = b""
    tee_kind: int = 0
    measurement: bytes = b"\x00" * 32
    collateral_hash: bytes = b"\x00" * 32
    confidence: int = 0
    cluster: bytes | None = None
    registration: bytes = b"\x00" * 32
    """``Registry.registration_of``: the digest an endorsement must name."""


@dataclass(slots=True)
class _Cluster:
    owner: bytes
    key_epoch: int = 0
    key_address: bytes = _ZERO
    public_key: bytes = b""
    """The key in full; the Registry stores its hash and the block of its event."""
    key_block: int = 0
    members: set[bytes] = field(default_factory=set)


@dataclass(slots=True)
class _Contract:
    cluster: bytes
    code_hash: bytes
    owner: bytes
    controller: bytes
    key_epoch: int = 0
    key_address: bytes = _ZERO
    public_key: bytes = b""
    key_block: int = 0
    paused: bool = False
    egress_hosts: set[str] = field(default_factory=set)


def _address(word: str) -> bytes:
    return bytes.fromhex(word[2:])


@dataclass(slots=True)
class LedgerSim:
    """Registry + Bus rules, enough to drive cores: same checks, same events, same routing.

    Every call either reverts (``Revert``, nothing changed) or appends its events to ``pending``;
    ``mine`` seals them into the next block. Calls that governance makes on chain take
    ``sender`` and default it to ``owner``.
    """

    chain_id: int = 31337
    registry: bytes = b"\x52" * 20
    bus: bytes = b"\xb5" * 20
    owner: bytes = b"\x0a" * 20
    genesis_time: int = 1_767_225_600
    block_time: int = 2
    max_payload: int = MAX_PAYLOAD_BOUND
    blocks: list[ev.Block] = field(default_factory=list)
    """The decoded view of each mined block (what tests read)."""
    raw_blocks: list[ChainBlock] = field(default_factory=list)
    """The same blocks as a core receives them (RLP header, receipts, sequencer signature)."""
    sequencer_key: SecretKey = field(default_factory=lambda: LEDGER_SEQUENCER_KEY)
    pending: list[ev.ChainEvent] = field(default_factory=list)
    measurements: set[bytes] = field(default_factory=set)
    workers: dict[bytes, _Worker] = field(default_factory=dict)
    origin_kind: dict[bytes, int] = field(default_factory=dict)
    gatekeepers: set[bytes] = field(default_factory=set)
    master: bytes = b""
    master_public_key: bytes = b""
    rotation_counter: int = 0
    rotation_locked: bool = False
    proposal: tuple[bytes, bytes] | None = None
    rotation_confirmed: set[tuple[int, bytes]] = field(default_factory=set)
    """(attempt, gatekeeper) pairs that confirmed: each lock starts a new attempt."""
    rotation_confirmations: int = 0
    rotation_attempt: int = 0
    rotation_deadline: int = 0
    rotation_threshold: int = 0
    rotation_interval: int = 0
    """Blocks a master key serves before anyone may lock its rotation (0: governance only)."""
    master_since: int = 0
    """``block.number`` of the newest ``MasterKeySet`` / ``MasterKeyRotated``."""
    """Confirmations that complete a rotation; 0: every gatekeeper."""
    clusters: dict[bytes, _Cluster] = field(default_factory=dict)
    contracts: dict[bytes, _Contract] = field(default_factory=dict)
    pending_contract_owner: dict[bytes, bytes] = field(default_factory=dict)
    deploy_closed: set[bytes] = field(default_factory=set)
    deployers: dict[bytes, set[bytes]] = field(default_factory=dict)
    schedules: dict[int, tuple[bytes, bool]] = field(default_factory=dict)
    """schedule id -> (agent, active), numbered from 1 (``Bus.schedules``)."""
    registration_deposit: int = 0
    deposit_of: dict[bytes, int] = field(default_factory=dict)
    deposit_block: dict[bytes, int] = field(default_factory=dict)
    refund_of: dict[bytes, int] = field(default_factory=dict)
    forfeited: int = 0
    next_seq: dict[bytes, int] = field(default_factory=dict)
    command_seq: dict[bytes, int] = field(default_factory=dict)
    rejected: list[tuple[bytes, int, str]] = field(default_factory=list)
    last_heartbeat: dict[bytes, tuple[int, bytes]] = field(default_factory=dict)
    """worker -> (height, boot id) of its newest recorded heartbeat."""
    retired_boot: set[tuple[bytes, bytes]] = field(default_factory=set)
    flagged: dict[bytes, int] = field(default_factory=dict)
    commitments: dict[tuple[bytes, int], dict[bytes, bytes]] = field(default_factory=dict)
    """(cluster, height) -> {member: commitment} in posting order (``commitment_of`` and
    ``commitment_posters``)."""
    verdicts: dict[tuple[bytes, int], bytes] = field(default_factory=dict)
    """(cluster, height) -> the commitment a strict majority of the members posted."""
    diverged_at: dict[bytes, int] = field(default_factory=dict)
    named: set[tuple[bytes, int, bytes]] = field(default_factory=set)
    """(cluster, height, member) named against that height's verdict (``commitment_named``)."""
    endorsed_until: dict[bytes, int] = field(default_factory=dict)
    genesis_gatekeeper: bytes = _ZERO
    """``Registry.genesis_gatekeeper``: the first gatekeeper, named before any master key."""
    registration_count: dict[bytes, int] = field(default_factory=dict)
    encryption_index: dict[bytes, int] = field(default_factory=dict)
    """worker -> number of its newest encryption key (``WorkerKeyPublished``), never reset."""
    time_offset: int = 0
    """Seconds added to the timestamps of blocks mined from now on (``warp``)."""
    clock: Callable[[], int] | None = None
    """Where a test runs the model beside a real chain: that chain's time; None uses this
    model's next block timestamp."""
    block_env: Callable[[], tuple[int, Callable[[int], bytes]]] | None = None
    """Where a test runs the model beside a real chain: (number of the block a call lands in,
    BLOCKHASH) taken from that chain; None uses this model's own blocks."""

    @property
    def domain(self) -> Domain:
        return Domain(chain_id=self.chain_id, verifying_contract=Address(self.bus))

    @property
    def chain_trust(self) -> ChainTrust:
        """The ``sequencer`` policy of this ledger: its anchor and its block signer."""
        return ChainTrust(
            anchor_number=0,
            anchor_hash=LEDGER_ANCHOR_HASH,
            policy=POLICY_SEQUENCER,
            sequencer=self.sequencer_key.address.raw,
        )

    @property
    def head(self) -> ev.BlockHeader:
        if not self.blocks:
            return ev.BlockHeader(
                number=0,
                hash=LEDGER_ANCHOR_HASH,
                parent_hash=b"\x00" * 32,
                timestamp=self.genesis_time,
            )
        return self.blocks[-1].header

    def mine(self) -> ChainBlock:
        """Seal the pending events into the next block: real receipts (one per event), a real
        RLP header over their trie root, signed by this ledger's sequencer. Returns the raw
        block a core applies; ``blocks`` keeps the decoded view tests read."""
        parent = self.head
        number = parent.number + 1
        events = tuple(self.pending)
        self.pending = []
        raw, header = build_block(
            chain_id=self.chain_id,
            registry=self.registry,
            bus=self.bus,
            parent_hash=parent.hash,
            number=number,
            timestamp=self._timestamp(number),
            events=events,
            signer=self.sequencer_key,
        )
        self.blocks.append(ev.Block(header=header, events=events))
        self.raw_blocks.append(raw)
        return raw

    def _only_owner(self, sender: bytes | None) -> None:
        if (self.owner if sender is None else sender) != self.owner:
            raise Revert("ownable: caller is not the owner")

    def _kind(self, origin: bytes) -> int:
        return self.origin_kind.get(origin, KIND_NONE)

    def warp(self, seconds: int) -> None:
        """Move chain time forward: blocks mined from now on are ``seconds`` later."""
        self.time_offset += seconds

    def now(self) -> int:
        """``block.timestamp`` of the block the next call lands in."""
        if self.clock is not None:
            return self.clock()
        return self._timestamp(self.head.number + 1)

    def _timestamp(self, number: int) -> int:
        return self.genesis_time + number * self.block_time + self.time_offset

    def may_post(self, origin: bytes) -> bool:
        """Registry.may_post: eligible, or the genesis gatekeeper before its first verdict."""
        return self.eligible(origin) or (
            origin == self.genesis_gatekeeper and not self.endorsed_until.get(origin, 0)
        )

    def eligible(self, worker: bytes) -> bool:
        """Registry._eligible: endorsed, its measurement allowed, never flagged."""
        record = self.workers.get(worker)
        return (
            record is not None
            and self.endorsed(worker)
            and record.measurement in self.measurements
            and not self.flagged.get(worker, 0)
        )

    def _evict(self, worker: bytes) -> bool:
        """Registry._evict: out of its cluster, and out of the gatekeeper set unless a
        rotation is in progress."""
        evicted = False
        record = self.workers.get(worker)
        if record is not None and record.cluster is not None:
            self.clusters[record.cluster].members.discard(worker)
            self.pending.append(ev.ClusterWorkerRemoved(cluster_id=record.cluster, worker=worker))
            record.cluster = None
            evicted = True
        if worker in self.gatekeepers and not self.rotation_locked:
            self.gatekeepers.discard(worker)
            if worker == self.genesis_gatekeeper:
                self.genesis_gatekeeper = _ZERO
            self.pending.append(ev.GatekeeperRemoved(gatekeeper=worker))
            evicted = True
        return evicted

    def evict(self, worker: bytes) -> None:
        """Registry.evict (anyone): a worker no longer eligible leaves its roles."""
        if self.eligible(worker):
            raise Revert("still eligible")
        record = self.workers.get(worker)
        unjudged = (
            record is not None and not record.confidence and not self.endorsed_until.get(worker, 0)
        )
        if (
            worker == self.genesis_gatekeeper
            and unjudged
            and record is not None
            and not self.flagged.get(worker, 0)
            and record.measurement in self.measurements
        ):
            raise Revert("genesis gatekeeper not judged yet")
        if not self._evict(worker):
            raise Revert("nothing to evict")

    def endorsed(self, worker: bytes) -> bool:
        """Registry._endorsed: a confidence above 0 and an endorsement not yet expired."""
        record = self.workers.get(worker)
        return (
            record is not None
            and record.confidence > 0
            and self.endorsed_until.get(worker, 0) > self.now()
        )

    # --- governance ---

    def set_measurement(
        self, measurement: bytes, allowed: bool = True, *, sender: bytes | None = None
    ) -> None:
        self._only_owner(sender)
        (self.measurements.add if allowed else self.measurements.discard)(measurement)
        self.pending.append(ev.MeasurementSet(measurement=measurement, allowed=allowed))

    def add_gatekeeper(self, gatekeeper: bytes, *, sender: bytes | None = None) -> None:
        self._only_owner(sender)
        if self.rotation_locked:
            raise Revert("rotation in progress")
        if self._kind(gatekeeper) != KIND_WORKER:
            raise Revert("not a registered worker")
        if gatekeeper in self.gatekeepers:
            raise Revert("already a gatekeeper")
        if not self.eligible(gatekeeper) and self.master:
            raise Revert("gatekeeper not endorsed")
        if not self.master and not self.gatekeepers:
            self.genesis_gatekeeper = gatekeeper
        self.gatekeepers.add(gatekeeper)
        self.pending.append(ev.GatekeeperAdded(gatekeeper=gatekeeper))

    def remove_gatekeeper(self, gatekeeper: bytes, *, sender: bytes | None = None) -> None:
        self._only_owner(sender)
        if self.rotation_locked:
            raise Revert("rotation in progress")
        if gatekeeper not in self.gatekeepers:
            raise Revert("not a gatekeeper")
        self.gatekeepers.discard(gatekeeper)
        if gatekeeper == self.genesis_gatekeeper:
            self.genesis_gatekeeper = _ZERO
        self.pending.append(ev.GatekeeperRemoved(gatekeeper=gatekeeper))

    def lock_rotation(self, *, sender: bytes | None = None) -> None:
        """Registry.lock_rotation: governance, or anyone once the master is due."""
        if sender is not None and sender != self.owner:
            due = self.master_since + self.rotation_interval
            if self.rotation_interval == 0 or self._next_block()[0] < due:
                raise Revert("rotation not due")
        if not self.master:
            raise Revert("no master key")
        if self.rotation_locked:
            raise Revert("rotation in progress")
        self.rotation_locked = True
        self.rotation_attempt += 1
        self.rotation_deadline = self._next_block()[0] + ROTATION_WINDOW
        self.pending.append(
            ev.RotationLocked(rotation=self.rotation_counter + 1, attempt=self.rotation_attempt)
        )

    def set_rotation_interval(self, blocks: int, *, sender: bytes | None = None) -> None:
        """Registry.set_rotation_interval (owner)."""
        self._only_owner(sender)
        self.rotation_interval = blocks

    def set_rotation_threshold(self, threshold: int, *, sender: bytes | None = None) -> None:
        """Registry.set_rotation_threshold (owner): confirmations that complete a rotation."""
        self._only_owner(sender)
        if self.rotation_locked:
            raise Revert("rotation in progress")
        self.rotation_threshold = threshold

    def abort_rotation(self, *, sender: bytes | None = None) -> None:
        """Release the lock: the owner at any time, anyone once the deadline passed."""
        if not self.rotation_locked:
            raise Revert("no rotation in progress")
        anyone = sender is not None and sender != self.owner
        if anyone and self._next_block()[0] <= self.rotation_deadline:
            raise Revert("rotation not expired")
        self.rotation_locked = False
        self.proposal = None
        self.rotation_confirmations = 0
        self.pending.append(ev.RotationAborted(rotation=self.rotation_counter + 1))

    def create_cluster(
        self,
        cluster_id: bytes,
        owner: bytes | None = None,
        *,
        suite: int = 1,
        sender: bytes | None = None,
    ) -> None:
        self._only_owner(sender)
        if cluster_id in self.clusters:
            raise Revert("cluster exists")
        owner = self.owner if owner is None else owner
        if owner == _ZERO:
            raise Revert("zero address")
        if suite not in (1, 2):
            raise Revert("unknown suite")
        self.clusters[cluster_id] = _Cluster(owner=owner)
        self.pending.append(ev.ClusterCreated(cluster_id=cluster_id, owner=owner, suite=suite))

    # --- workers and clusters ---

    def register_worker(self, request: Any, *, deposit: int = 0) -> None:
        """``register_worker`` sent by ``request.worker`` with ``deposit`` wei; a
        re-registration resets the endorsement and takes the worker out of its cluster."""
        # bytes too: the contract keeps any bytes a registration sends, UTF-8 or not
        api_url: str | bytes = getattr(request, "api_url", "")
        raw_url = api_url.encode() if isinstance(api_url, str) else api_url
        if (
            len(request.hpke_key) > MAX_HPKE_KEY
            or len(request.quote) > MAX_QUOTE
            or len(raw_url) > MAX_API_URL
        ):
            raise Revert("argument too long")
        attested_hash = self._attested(request.attested_block)
        if request.measurement not in self.measurements:
            raise Revert("measurement not allowed")
        if not request.hpke_key:
            raise Revert("empty key")
        self._check_deposit(deposit)
        if self._kind(request.worker) not in (KIND_NONE, KIND_WORKER):
            raise Revert("origin in use")
        quote_hash = keccak(request.quote)
        if request.worker in self.gatekeepers and self.rotation_locked:
            raise Revert("rotation in progress")
        self._evict(request.worker)
        self._hold_deposit(request.worker, deposit)
        self.endorsed_until[request.worker] = 0
        self.workers[request.worker] = _Worker(
            quote_hash=quote_hash,
            operator=request.operator,
            hpke_key=request.hpke_key,
            tee_kind=int(request.tee_kind),
            measurement=request.measurement,
            collateral_hash=request.collateral_hash,
        )
        self.origin_kind[request.worker] = KIND_WORKER
        registration = self._registration(request.worker)
        self.pending.append(
            ev.WorkerRegistered(
                worker=request.worker,
                operator=request.operator,
                hpke_key=request.hpke_key,
                tee_kind=int(request.tee_kind),
                measurement=request.measurement,
                quote_hash=quote_hash,
                collateral_hash=request.collateral_hash,
                quote=request.quote,
                attested_block=request.attested_block,
                attested_hash=attested_hash,
                registration=registration,
                api_url=api_url,  # type: ignore[arg-type]
            )
        )

    def _check_deposit(self, deposit: int) -> None:
        if deposit < self.registration_deposit:
            raise Revert("deposit too low")

    def _hold_deposit(self, worker: bytes, deposit: int) -> None:
        """Registry._hold_deposit: held with the identity's earlier ones until a verdict."""
        if deposit:
            self.deposit_of[worker] = self.deposit_of.get(worker, 0) + deposit
            self.deposit_block[worker] = self._next_block()[0]

    def _settle_deposit(self, worker: bytes, endorsed: bool) -> None:
        """Registry._settle_deposit: to the operator if endorsed, else forfeited."""
        held = self.deposit_of.pop(worker, 0)
        if not held:
            return
        if endorsed:
            operator = self.workers[worker].operator
            self.refund_of[operator] = self.refund_of.get(operator, 0) + held
        else:
            self.forfeited += held

    def set_registration_deposit(self, amount: int, *, sender: bytes | None = None) -> None:
        self._only_owner(sender)
        self.registration_deposit = amount

    def reclaim_deposit(self, worker: bytes) -> None:
        """Registry.reclaim_deposit (anyone): an unjudged deposit past the window."""
        if not self.deposit_of.get(worker, 0):
            raise Revert("no deposit")
        if self._next_block()[0] <= self.deposit_block[worker] + DEPOSIT_WINDOW:
            raise Revert("deposit not expired")
        self._settle_deposit(worker, True)

    def claim_refund(self, *, sender: bytes) -> int:
        """Registry.claim_refund: what ``sender`` takes (the model keeps no balances)."""
        amount = self.refund_of.get(sender, 0)
        if not amount:
            raise Revert("nothing to claim")
        self.refund_of[sender] = 0
        return amount

    def withdraw_forfeited(self, to: bytes, *, sender: bytes | None = None) -> int:
        self._only_owner(sender)
        if to == _ZERO:
            raise Revert("zero address")
        amount, self.forfeited = self.forfeited, 0
        return amount

    def _registration(self, worker: bytes) -> bytes:
        """Registry._registration: a digest of every field and a number that grows with each
        registration or re-attestation (what an endorsement must name)."""
        count = self.registration_count.get(worker, 0) + 1
        self.registration_count[worker] = count
        record = self.workers[worker]
        digest = keccak(
            abi_encode(
                ["address", "bytes32", "bytes32", "bytes32", "uint64"],
                [
                    Address(worker).hex,
                    keccak(record.hpke_key),
                    record.measurement,
                    record.quote_hash,
                    count,
                ],
            )
        )
        record.registration = digest
        return digest

    def reattest_worker(
        self,
        worker: bytes,
        quote: bytes,
        collateral_hash: bytes,
        attested_block: int,
        *,
        deposit: int = 0,
    ) -> None:
        """``reattest_worker`` sent by ``worker``: a fresh quote of the same registration; the
        endorsement and cluster stay until the gatekeepers' verdict on it."""
        if len(quote) > MAX_QUOTE:
            raise Revert("argument too long")
        attested_hash = self._attested(attested_block)
        if self._kind(worker) != KIND_WORKER:
            raise Revert("not a registered worker")
        if self.flagged.get(worker, 0):
            raise Revert("worker flagged")
        record = self.workers[worker]
        if record.measurement not in self.measurements:
            raise Revert("measurement not allowed")
        self._check_deposit(deposit)
        self._hold_deposit(worker, deposit)
        record.quote_hash = keccak(quote)
        record.collateral_hash = collateral_hash
        registration = self._registration(worker)
        self.pending.append(
            ev.WorkerReattested(
                worker=worker,
                quote_hash=record.quote_hash,
                collateral_hash=collateral_hash,
                quote=quote,
                attested_block=attested_block,
                attested_hash=attested_hash,
                registration=registration,
            )
        )

    def _attested(self, attested_block: int) -> bytes:
        """Registry._attested: the hash of one of the last 256 blocks, which the quote binds."""
        number, hash_of = self._next_block()
        if attested_block >= number:
            raise Revert("future attestation")
        if number - attested_block > ATTESTATION_WINDOW:
            raise Revert("stale attestation")
        return hash_of(attested_block)

    def _cluster_owned(self, cluster_id: bytes, sender: bytes | None) -> _Cluster:
        cluster = self.clusters.get(cluster_id)
        # An unknown cluster has the zero owner on chain, which no sender matches.
        if cluster is None or (self.owner if sender is None else sender) != cluster.owner:
            raise Revert("not cluster owner")
        return cluster

    def add_cluster_worker(
        self, cluster_id: bytes, worker: bytes, *, sender: bytes | None = None
    ) -> None:
        cluster = self._cluster_owned(cluster_id, sender)
        record = self.workers.get(worker)
        if record is None or not self.eligible(worker):
            raise Revert("worker not endorsed")
        if record.cluster is not None:
            raise Revert("worker in a cluster")
        if len(cluster.members) >= MAX_CLUSTER_WORKERS:
            raise Revert("cluster full")
        record.cluster = cluster_id
        cluster.members.add(worker)
        self.pending.append(ev.ClusterWorkerAdded(cluster_id=cluster_id, worker=worker))

    def remove_cluster_worker(
        self, cluster_id: bytes, worker: bytes, *, sender: bytes | None = None
    ) -> None:
        cluster = self._cluster_owned(cluster_id, sender)
        if worker not in cluster.members:
            raise Revert("not a member")
        cluster.members.discard(worker)
        self.workers[worker].cluster = None
        self.pending.append(ev.ClusterWorkerRemoved(cluster_id=cluster_id, worker=worker))

    # --- agent contracts ---

    def deploy_contract(
        self,
        *,
        sender: bytes,
        salt: bytes,
        cluster_id: bytes,
        code: bytes,
        init_args: bytes = b"",
        controller: bytes = _ZERO,
    ) -> bytes:
        if len(code) > MAX_CODE or len(init_args) > MAX_INIT:
            raise Revert("argument too long")
        cluster = self.clusters.get(cluster_id)
        if cluster is None:
            raise Revert("unknown cluster")
        if (
            cluster_id in self.deploy_closed
            and sender != cluster.owner
            and sender not in self.deployers.get(cluster_id, set())
        ):
            raise Revert("deploy not allowed")
        contract_id = keccak(b"\x00" * 12 + sender + salt)
        if contract_id in self.contracts:
            raise Revert("contract exists")
        code_hash = keccak(code)
        self.contracts[contract_id] = _Contract(
            cluster=cluster_id, code_hash=code_hash, owner=sender, controller=controller
        )
        self.pending.append(
            ev.ContractDeployed(
                contract_id=contract_id,
                cluster_id=cluster_id,
                owner=sender,
                controller=controller,
                code_hash=code_hash,
                code=code,
                init_args=init_args,
            )
        )
        return contract_id

    def set_deploy_policy(
        self, cluster_id: bytes, deployer: bytes, allowed: bool, *, sender: bytes
    ) -> None:
        """Bus.set_deploy_policy: the zero address opens or closes the cluster; another is
        allowed or refused while it is closed."""
        cluster = self.clusters.get(cluster_id)
        if cluster is None:
            raise Revert("unknown cluster")
        if cluster.owner != sender:
            raise Revert("not cluster owner")
        if deployer == _ZERO:
            if allowed:
                self.deploy_closed.discard(cluster_id)
            else:
                self.deploy_closed.add(cluster_id)
        elif allowed:
            self.deployers.setdefault(cluster_id, set()).add(deployer)
        else:
            self.deployers.get(cluster_id, set()).discard(deployer)

    def _control(self, contract_id: bytes, sender: bytes) -> _Contract:
        contract = self.contracts.get(contract_id)
        if contract is None:
            raise Revert("unknown contract")
        if sender not in (contract.owner, contract.controller):
            raise Revert("not owner or controller")
        return contract

    def set_paused(self, contract_id: bytes, paused: bool, *, sender: bytes) -> None:
        self._control(contract_id, sender).paused = paused
        self.pending.append(ev.ContractPaused(contract_id=contract_id, paused=paused, by=sender))

    def upgrade_contract(self, contract_id: bytes, code: bytes, *, sender: bytes) -> None:
        if len(code) > MAX_CODE:
            raise Revert("argument too long")
        contract = self._control(contract_id, sender)
        contract.code_hash = keccak(code)
        self.pending.append(
            ev.ContractUpgraded(contract_id=contract_id, code_hash=contract.code_hash, code=code)
        )

    def _owned(self, contract_id: bytes, sender: bytes) -> _Contract:
        contract = self.contracts.get(contract_id)
        if contract is None or contract.owner != sender:
            raise Revert("not owner")
        return contract

    def transfer_contract(self, contract_id: bytes, new_owner: bytes, *, sender: bytes) -> None:
        """The owner offers the contract; ``accept_contract`` by ``new_owner`` completes it."""
        self._owned(contract_id, sender)
        self.pending_contract_owner[contract_id] = new_owner

    def accept_contract(self, contract_id: bytes, *, sender: bytes) -> None:
        if self.pending_contract_owner.get(contract_id, _ZERO) != sender:
            raise Revert("not pending owner")
        self.pending_contract_owner[contract_id] = _ZERO
        self.contracts[contract_id].owner = sender
        self.pending.append(ev.ContractOwnerChanged(contract_id=contract_id, owner=sender))

    def set_controller(self, contract_id: bytes, controller: bytes, *, sender: bytes) -> None:
        self._owned(contract_id, sender).controller = controller
        self.pending.append(
            ev.ContractControllerChanged(contract_id=contract_id, controller=controller)
        )

    def set_egress(self, contract_id: bytes, host: str, allowed: bool, *, sender: bytes) -> None:
        """``Bus.set_egress``: the owner edits its agent's ``http.fetch`` allowlist."""
        contract = self._owned(contract_id, sender)
        if len(host.encode()) > MAX_HOST_NAME:
            raise Revert("argument too long")
        if not host:
            raise Revert("empty host")
        hosts = contract.egress_hosts
        if (host in hosts) == allowed:
            return
        if allowed:
            if len(hosts) >= MAX_EGRESS_HOSTS:
                raise Revert("too many hosts")
            hosts.add(host)
        else:
            hosts.discard(host)
        self.pending.append(ev.EgressHostSet(contract_id=contract_id, host=host, allowed=allowed))

    def schedule(
        self, contract_id: bytes, consumer: bytes, every: int, payload: bytes, *, sender: bytes
    ) -> int:
        """``Bus.schedule``: the agent's owner sets a standing job."""
        self._owned(contract_id, sender)
        return self._schedule(contract_id, consumer, every, payload)

    def _schedule(self, contract_id: bytes, consumer: bytes, every: int, payload: bytes) -> int:
        if len(payload) > MAX_REQUEST:
            raise Revert("argument too long")
        if every <= 0:
            raise Revert("bad interval")
        if consumer == _ZERO:
            raise Revert("zero address")
        schedule_id = len(self.schedules) + 1
        self.schedules[schedule_id] = (contract_id, True)
        self.pending.append(
            ev.JobScheduled(
                contract_id=contract_id,
                schedule_id=schedule_id,
                consumer=consumer,
                every=every,
                start=self._next_block()[0],
                payload=payload,
            )
        )
        return schedule_id

    def cancel_schedule(self, schedule_id: int, *, sender: bytes) -> None:
        contract_id, active = self.schedules.get(schedule_id, (bytes(32), False))
        if not active:
            raise Revert("no such schedule")
        self._owned(contract_id, sender)
        self.schedules[schedule_id] = (contract_id, False)
        self.pending.append(ev.ScheduleCancelled(contract_id=contract_id, schedule_id=schedule_id))

    # --- bus ---

    def push_command(self, contract_id: bytes, payload: bytes, *, sender: bytes) -> int:
        """``Bus.push_command`` with no fee configured (the model has no ``set_params``)."""
        _check_payload_bound(payload)
        if len(payload) > self.max_payload:
            raise Revert("payload too big")
        return self._record_commands(contract_id, [payload], sender)

    def push_commands(self, contract_id: bytes, payloads: list[bytes], *, sender: bytes) -> int:
        """``Bus.push_commands`` with no fee configured: each payload a ``Command`` under the
        next seq, all or none; returns the first seq."""
        if len(payloads) > MAX_COMMAND_BATCH or any(len(p) > MAX_BATCHED_PAYLOAD for p in payloads):
            raise Revert("argument too long")
        if not payloads:
            raise Revert("no commands")
        return self._record_commands(contract_id, payloads, sender)

    def _record_commands(self, contract_id: bytes, payloads: list[bytes], sender: bytes) -> int:
        """The rules both pushes share, then each payload a ``Command`` under the next seq."""
        contract = self.contracts.get(contract_id)
        if contract is not None and contract.paused:
            raise Revert("contract paused")
        if contract is None:
            raise Revert("unknown contract")
        first = self.command_seq.get(contract_id, 0)
        self.command_seq[contract_id] = first + len(payloads)
        self.pending.extend(
            ev.Command(contract_id=contract_id, seq=first + i, sender=sender, payload=payload)
            for i, payload in enumerate(payloads)
        )
        return first

    def _signer(self, message: EgressMessage) -> bytes:
        """What the Bus's ``_recover`` + ``ecrecover`` give: malformed signatures revert with
        "bad signature", ones that recover to no key yield the zero address."""
        signature = message.signature
        _check_signature(signature)
        values = {
            "origin": Address(message.origin),
            "seq": message.seq,
            "topic": message.topic,
            "payload": message.payload,
        }
        try:
            return recover_typed(signature, self.domain, EGRESS_TYPE, values).raw
        except SignatureInvalid:
            return _ZERO

    def post(self, message: EgressMessage) -> bool:
        """Bus.post: False (and no state change) if the sequence is already used."""
        _check_payload_bound(message.payload)
        expected = self.next_seq.get(message.origin, 0)
        if message.seq < expected and message.topic == topics.TOPIC_HEARTBEAT:
            self._duplicate_heartbeat(message)
            return True
        if message.seq < expected:
            return False
        if message.seq != expected:
            raise Revert("sequence gap")
        kind = self._verified(message)
        self.next_seq[message.origin] = expected + 1
        if (
            kind == KIND_WORKER
            and message.topic != topics.TOPIC_COLLATERAL
            and not self.may_post(message.origin)
        ):
            # Bus.post: the sequence is used, the payload goes nowhere
            self.rejected.append((message.origin, message.seq, "origin not endorsed"))
            self.pending.append(
                ev.EgressRejected(origin=message.origin, seq=message.seq, topic=message.topic)
            )
            return True
        self.pending.append(
            ev.Egress(
                origin=message.origin, seq=message.seq, topic=message.topic, payload=message.payload
            )
        )
        if message.topic in ROUTED_TOPICS:
            try:
                self.on_egress(message.origin, kind, message.topic, message.payload)
            except Revert as exc:
                self.rejected.append((message.origin, message.seq, str(exc)))
                self.pending.append(
                    ev.EgressRejected(origin=message.origin, seq=message.seq, topic=message.topic)
                )
        return True

    def _duplicate_heartbeat(self, message: EgressMessage) -> None:
        """Bus._duplicate_heartbeat: verified, routed, consumes nothing; reverts as a whole."""
        self.on_egress(message.origin, self._verified(message), message.topic, message.payload)

    def _verified(self, message: EgressMessage) -> int:
        """The Bus's checks after the sequence: size, known origin, its signature. Its kind."""
        if len(message.payload) > self.max_payload:
            raise Revert("payload too big")
        kind = self._kind(message.origin)
        if kind == KIND_NONE:
            raise Revert("unknown origin")
        signer = self._signer(message)
        if signer != message.origin or signer == _ZERO:
            raise Revert("wrong signer")
        return kind

    # --- effects of egress messages (Registry.on_egress) ---

    def on_egress(self, origin: bytes, kind: int, topic: bytes, payload: bytes) -> None:
        """Registry.on_egress as the Bus calls it; checks everything before changing anything."""
        handler = _EGRESS_HANDLERS.get(topic)
        if handler is None:
            raise Revert("unknown topic")
        handler(self, origin, kind, payload)

    def _is_gatekeeper_identity(self, origin: bytes, kind: int) -> bool:
        return kind == KIND_WORKER and origin in self.gatekeepers

    def _fresh_origin(self, key: bytes) -> None:
        """Registry._fresh_origin: never the zero address, never a key already in a role."""
        if key == _ZERO:
            raise Revert("zero address")
        if self._kind(key) != KIND_NONE:
            raise Revert("origin in use")

    def _take_origin(self, address: str, kind: int) -> bytes:
        """The last check of a key-publishing branch, then its first change."""
        key = _address(address)
        self._fresh_origin(key)
        self.origin_kind[key] = kind
        return key

    def _endorse(self, origin: bytes, kind: int, payload: bytes) -> None:
        if kind != KIND_MASTER:
            raise Revert("wrong origin")
        if origin != self.master:
            raise Revert("old master key")
        address, confidence, registration, valid_until = _decode(
            ["address", "uint8", "bytes32", "uint64"], payload
        )
        worker = _address(address)
        if self._kind(worker) != KIND_WORKER:
            raise Revert("unknown worker")
        record = self.workers[worker]
        if record.registration != registration:
            raise Revert("stale registration")
        if self.flagged.get(worker, 0):
            raise Revert("worker flagged")
        if confidence > MAX_CONFIDENCE:
            raise Revert("bad confidence")
        valid_until = valid_until if confidence else 0
        record.confidence = confidence
        self.endorsed_until[worker] = valid_until
        self._settle_deposit(worker, confidence > 0)
        self.pending.append(
            ev.WorkerEndorsed(
                worker=worker,
                confidence=confidence,
                registration=registration,
                valid_until=valid_until,
            )
        )
        if not confidence:
            self._evict(worker)

    def _master_key(self, origin: bytes, kind: int, payload: bytes) -> None:
        if not self._is_gatekeeper_identity(origin, kind):
            raise Revert("wrong origin")
        if self.master:
            raise Revert("master key exists")
        address, public = _decode(["address", "bytes"], payload)
        key = self._take_origin(address, KIND_MASTER)
        self.master, self.master_public_key = key, public
        self.master_since = self._next_block()[0]
        self.pending.append(ev.MasterKeySet(gatekeeper=origin, key_address=key, public_key=public))

    def _cluster_key(self, origin: bytes, kind: int, payload: bytes) -> None:
        if kind != KIND_MASTER or origin != self.master:
            raise Revert("wrong origin")
        cluster_id, epoch, address, public = _decode(_KEY_EPOCH_PAYLOAD, payload)
        cluster = self.clusters.get(cluster_id)
        if cluster is None:
            raise Revert("unknown cluster")
        if epoch <= cluster.key_epoch:
            raise Revert("stale epoch")
        key = self._take_origin(address, KIND_CLUSTER)
        cluster.key_epoch, cluster.key_address, cluster.public_key = epoch, key, public
        cluster.key_block = self._next_block()[0]
        self.pending.append(
            ev.ClusterKeySet(cluster_id=cluster_id, epoch=epoch, key_address=key, public_key=public)
        )

    def _contract_key(self, origin: bytes, kind: int, payload: bytes) -> None:
        if kind != KIND_CLUSTER:
            raise Revert("wrong origin")
        contract_id, epoch, address, public = _decode(_KEY_EPOCH_PAYLOAD, payload)
        contract = self.contracts.get(contract_id)
        if contract is None:
            raise Revert("unknown contract")
        cluster = self.clusters[contract.cluster]
        if cluster.key_address != origin:
            raise Revert("not the cluster key")
        if epoch != cluster.key_epoch:
            raise Revert("wrong epoch")
        if epoch <= contract.key_epoch:
            raise Revert("stale epoch")
        key = self._take_origin(address, KIND_CONTRACT)
        contract.key_epoch, contract.key_address, contract.public_key = epoch, key, public
        contract.key_block = self._next_block()[0]
        self.pending.append(
            ev.ContractKeySet(
                contract_id=contract_id, epoch=epoch, key_address=key, public_key=public
            )
        )

    def _agent_schedule(self, origin: bytes, kind: int, payload: bytes) -> None:
        """``Bus._agent_schedule``: an agent's own standing job, posted by its cluster key."""
        if kind != KIND_CLUSTER:
            raise Revert("wrong origin")
        contract_id, cancel_id, consumer, every, job = _decode(_AGENT_SCHEDULE_PAYLOAD, payload)
        self._check_cluster_key(contract_id, origin)
        if cancel_id == 0:
            self._schedule(contract_id, _address(consumer), every, job)
            return
        agent, active = self.schedules.get(cancel_id, (bytes(32), False))
        if not active:
            raise Revert("no such schedule")
        if agent != contract_id:
            raise Revert("not this agent's")
        self.schedules[cancel_id] = (agent, False)
        self.pending.append(ev.ScheduleCancelled(contract_id=contract_id, schedule_id=cancel_id))

    def _check_cluster_key(self, contract_id: bytes, origin: bytes) -> _Contract:
        """``Bus._check_cluster_key``: the agent exists and ``origin`` is its cluster's key."""
        contract = self.contracts.get(contract_id)
        if contract is None:
            raise Revert("unknown contract")
        if self.clusters[contract.cluster].key_address != origin:
            raise Revert("not the cluster key")
        return contract

    def _init_failed(self, origin: bytes, kind: int, payload: bytes) -> None:
        """``Bus._init_failed``: the agent's cluster key reports a failed ``init``; the agent is
        paused (``ContractInitFailed``, which no core consumes, goes with it)."""
        if kind != KIND_CLUSTER:
            raise Revert("wrong origin")
        # read as the bytes a String is encoded alike: Vyper does not check UTF-8 either
        contract_id, code = _decode(["bytes32", "bytes"], payload)
        if len(code) > MAX_ERROR_CODE:
            raise Revert("malformed payload")
        self._check_cluster_key(contract_id, origin).paused = True
        self.pending.append(ev.ContractPaused(contract_id=contract_id, paused=True, by=origin))

    def _rotation_propose(self, origin: bytes, kind: int, payload: bytes) -> None:
        if not self._is_gatekeeper_identity(origin, kind):
            raise Revert("wrong origin")
        if not self.rotation_locked:
            raise Revert("no rotation in progress")
        if self.proposal is not None:
            raise Revert("already proposed")
        rotation, address, public, proof = _decode(
            ["uint256", "address", "bytes", "bytes"], payload
        )
        _check_proof_bound(proof)
        if rotation != self.rotation_counter + 1:
            raise Revert("wrong rotation")
        key = _address(address)
        self._fresh_origin(key)
        # The proposal is also the proposer's confirmation; if that fails, the whole call
        # reverts on chain, so check it before recording the proposal.
        self._check_possession(origin, key, proof)
        self._check_unconfirmed(rotation, origin)
        self.proposal = (key, public)
        self.pending.append(
            ev.RotationProposed(
                rotation=rotation, proposer=origin, key_address=key, public_key=public
            )
        )
        self._confirm(rotation, origin, key)

    def _rotation_confirm(self, origin: bytes, kind: int, payload: bytes) -> None:
        if not self._is_gatekeeper_identity(origin, kind):
            raise Revert("wrong origin")
        rotation, address, public, proof = _decode(
            ["uint256", "address", "bytes", "bytes"], payload
        )
        _check_proof_bound(proof)
        if not self.rotation_locked:
            raise Revert("no rotation in progress")
        if rotation != self.rotation_counter + 1:
            raise Revert("wrong rotation")
        key = _address(address)
        if self.proposal is None or key != self.proposal[0] or key == _ZERO:
            raise Revert("wrong key")
        # the Registry keeps the proposed key's hash only: each confirmation carries the key
        if public != self.proposal[1]:
            raise Revert("wrong key")
        self._check_possession(origin, key, proof)
        self._check_unconfirmed(rotation, origin)
        self._confirm(rotation, origin, key)

    def _heartbeat(self, origin: bytes, kind: int, payload: bytes) -> None:
        """Registry._heartbeat: a replaced boot id reporting a newer height flags the worker."""
        if kind != KIND_WORKER:
            raise Revert("wrong origin")
        height, block_hash, sealed_height, boot_id = _decode(
            ["uint64", "bytes32", "uint64", "bytes32"], payload
        )
        number, hash_of = self._next_block()
        if height >= number:
            raise Revert("future heartbeat")
        if number - height > HEARTBEAT_WINDOW:
            raise Revert("stale heartbeat")
        if hash_of(height) != block_hash:
            raise Revert("unknown block")
        last_height, last_boot = self.last_heartbeat.get(origin, (0, b"\x00" * 32))
        if (origin, boot_id) in self.retired_boot:
            if height <= last_height:
                raise Revert("stale heartbeat")
            if not self.flagged.get(origin, 0):
                self.flagged[origin] = FLAG_CLONE
                self.workers[origin].confidence = 0
                self.pending.append(ev.WorkerFlagged(worker=origin, reason=FLAG_CLONE))
                self._evict(origin)
            return
        if height < last_height:
            raise Revert("stale heartbeat")
        if last_boot not in (boot_id, b"\x00" * 32):
            self.retired_boot.add((origin, last_boot))
        self.last_heartbeat[origin] = (height, boot_id)
        self.pending.append(
            ev.HeartbeatRecorded(
                worker=origin, height=height, boot_id=boot_id, sealed_height=sealed_height
            )
        )

    def _worker_key(self, origin: bytes, kind: int, payload: bytes) -> None:
        """Registry ``TOPIC_WORKER_KEY``: a worker's next encryption key, numbered from 1."""
        if kind != KIND_WORKER:
            raise Revert("wrong origin")
        index, public_key = _decode(["uint64", "bytes"], payload)
        if len(public_key) not in (32, MAX_HPKE_KEY):
            raise Revert("bad key")
        if index != self.encryption_index.get(origin, 0) + 1:
            raise Revert("wrong key index")
        self.encryption_index[origin] = index
        self.pending.append(
            ev.WorkerKeyPublished(worker=origin, index=index, public_key=public_key)
        )

    def _state_commitment(self, origin: bytes, kind: int, payload: bytes) -> None:
        """Registry._state_commitment: the majority's value is the verdict for a height; every
        member that posted another value is de-endorsed and named in ``ReplicaDiverged``."""
        if kind != KIND_WORKER:
            raise Revert("wrong origin")
        cluster_id, height, commitment = _decode(["bytes32", "uint64", "bytes32"], payload)
        cluster = self.clusters.get(cluster_id)
        if cluster is None or origin not in cluster.members:
            raise Revert("not a member")
        if not self.endorsed(origin):
            raise Revert("worker not endorsed")
        number, _ = self._next_block()
        if height >= number:
            raise Revert("future commitment")
        if commitment == b"\x00" * 32:
            raise Revert("empty commitment")
        posted = self.commitments.setdefault((cluster_id, height), {})
        if origin in posted:
            raise Revert("already committed")
        reference = next(iter(posted.values()), commitment)
        posted[origin] = commitment
        verdict = self.verdicts.get((cluster_id, height))
        if verdict is not None:
            if commitment != verdict:
                self._diverged(cluster_id, origin, height, commitment, verdict)
            return
        votes = sum(1 for value in posted.values() if value == commitment)
        if votes * 2 > len(cluster.members):
            self.verdicts[(cluster_id, height)] = commitment
            first = list(posted.items())[:MAX_SCANNED_AT_VERDICT]
            dissenters = [(m, v) for m, v in first if v != commitment]
            for member, value in dissenters[:MAX_NAMED_AT_VERDICT]:
                self._diverged(cluster_id, member, height, value, commitment)
            return
        if commitment != reference:  # a split without a majority: reported, nothing more
            self._report(cluster_id, origin, height, commitment, b"\x00" * 32)

    def report_divergence(self, cluster_id: bytes, height: int, worker: bytes) -> None:
        """Registry.report_divergence (anyone): name a dissenter the verdict did not name."""
        verdict = self.verdicts.get((cluster_id, height))
        if verdict is None:
            raise Revert("no verdict")
        posted = self.commitments.get((cluster_id, height), {}).get(worker)
        if posted is None:
            raise Revert("no commitment")
        if posted == verdict:
            raise Revert("agrees with the verdict")
        if (cluster_id, height, worker) in self.named:
            raise Revert("already named")
        self._diverged(cluster_id, worker, height, posted, verdict)

    def _diverged(
        self, cluster_id: bytes, worker: bytes, height: int, commitment: bytes, majority: bytes
    ) -> None:
        self.named.add((cluster_id, height, worker))
        self.workers[worker].confidence = 0
        self.diverged_at[worker] = max(height, self.diverged_at.get(worker, 0))
        self._report(cluster_id, worker, height, commitment, majority)

    def _report(
        self, cluster_id: bytes, worker: bytes, height: int, commitment: bytes, majority: bytes
    ) -> None:
        self.pending.append(
            ev.ReplicaDiverged(
                cluster_id=cluster_id,
                worker=worker,
                height=height,
                commitment=commitment,
                majority=majority,
            )
        )

    def _next_block(self) -> tuple[int, Callable[[int], bytes]]:
        """``block.number`` of the block the next call lands in, and ``BLOCKHASH``: the real
        chain's where a test runs this model beside one (``block_env``), else this model's."""
        if self.block_env is not None:
            return self.block_env()
        return len(self.blocks) + 1, self._block_hash

    def _block_hash(self, number: int) -> bytes:
        """BLOCKHASH over this model's own blocks (block 0 is the anchor it starts from)."""
        return self.blocks[number - 1].header.hash if number >= 1 else LEDGER_ANCHOR_HASH

    def _check_possession(self, gatekeeper: bytes, key: bytes, proof: bytes) -> None:
        """Registry._confirm_rotation: the new key signed this attempt for this gatekeeper."""
        _check_signature(proof)  # the Registry asks the Bus to recover the signer
        if not proves_possession(
            proof,
            key,
            chain_id=self.chain_id,
            registry=self.registry,
            attempt=self.rotation_attempt,
            gatekeeper=gatekeeper,
        ):
            raise Revert("no key possession")

    def _check_unconfirmed(self, rotation: int, gatekeeper: bytes) -> None:
        if (self.rotation_attempt, gatekeeper) in self.rotation_confirmed:
            raise Revert("already confirmed")

    def _confirm(self, rotation: int, gatekeeper: bytes, key: bytes) -> None:
        """Registry._confirm_rotation: the confirmation that reaches the threshold (every
        gatekeeper unless governance set fewer) switches the master key."""
        self.rotation_confirmed.add((self.rotation_attempt, gatekeeper))
        self.rotation_confirmations += 1
        self.pending.append(
            ev.RotationConfirmed(
                rotation=rotation, gatekeeper=gatekeeper, confirmations=self.rotation_confirmations
            )
        )
        needed = len(self.gatekeepers)
        if self.rotation_threshold:
            needed = min(self.rotation_threshold, needed)
        if self.rotation_confirmations < needed or self.proposal is None:
            return
        public = self.proposal[1]
        self.master, self.master_public_key = key, public
        self.origin_kind[key] = KIND_MASTER
        self.rotation_counter = rotation
        self.rotation_locked = False
        self.proposal = None
        self.rotation_confirmations = 0
        self.master_since = self._next_block()[0]
        self.pending.append(
            ev.MasterKeyRotated(rotation=rotation, key_address=key, public_key=public)
        )


_EGRESS_HANDLERS: Final[dict[bytes, Callable[[LedgerSim, bytes, int, bytes], None]]] = {
    topics.TOPIC_ENDORSE: LedgerSim._endorse,
    topics.TOPIC_MASTER_KEY: LedgerSim._master_key,
    topics.TOPIC_CLUSTER_KEY: LedgerSim._cluster_key,
    topics.TOPIC_CONTRACT_KEY: LedgerSim._contract_key,
    topics.TOPIC_AGENT_SCHEDULE: LedgerSim._agent_schedule,
    topics.TOPIC_INIT_FAILED: LedgerSim._init_failed,
    topics.TOPIC_ROTATION_PROPOSE: LedgerSim._rotation_propose,
    topics.TOPIC_ROTATION_CONFIRM: LedgerSim._rotation_confirm,
    topics.TOPIC_HEARTBEAT: LedgerSim._heartbeat,
    topics.TOPIC_STATE_COMMITMENT: LedgerSim._state_commitment,
    topics.TOPIC_WORKER_KEY: LedgerSim._worker_key,
}


def _decode(types: list[str], payload: bytes) -> tuple[Any, ...]:
    """Vyper's ``abi_decode``: malformed payloads and oversized ``Bytes`` revert the call."""
    try:
        values = abi_decode(types, payload)
    except CodecError as exc:
        raise Revert("malformed payload") from exc
    # Every ``bytes`` field of a routed payload is a public key, ``Bytes[MAX_HPKE_KEY]``.
    if any(t == "bytes" and len(v) > MAX_HPKE_KEY for t, v in zip(types, values, strict=True)):
        raise Revert("malformed payload")
    return values


def _check_signature(signature: bytes) -> None:
    """Bus._recover's checks: 65 bytes, low s, v 27 or 28 ("bad signature" otherwise)."""
    if len(signature) != SIGNATURE_LENGTH:
        raise Revert("bad signature")
    if int.from_bytes(signature[32:64], "big") > SECP256K1_HALF_N or signature[64] not in (27, 28):
        raise Revert("bad signature")


def _check_proof_bound(proof: bytes) -> None:
    """A possession proof is ``Bytes[65]``: a longer one fails ABI decoding on chain."""
    if len(proof) > 65:
        raise Revert("malformed payload")


def _check_payload_bound(payload: bytes) -> None:
    """The Bus takes payloads as ``Bytes[MAX_PAYLOAD_BOUND]``: longer ones fail ABI decoding."""
    if len(payload) > MAX_PAYLOAD_BOUND:
        raise Revert("argument too long")
