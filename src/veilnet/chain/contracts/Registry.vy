# pragma version 0.4.3
# pragma evm-version cancun
# pragma optimize codesize
"""
@title Veilnet Registry
@notice Public registry of a Veilnet network: governance, allowed measurements, workers and
        their registration deposits, gatekeepers, the master public key and its rotation,
        clusters, and the one table of origins (keys that may post egress). Agent contracts
        live in the Bus, which claims their keys as origins here.
        Every change a worker's enclave core must replay is an event carrying all its fields.
        Effects that come from enclave keys (endorsements, keys, rotation steps) arrive as
        signed egress messages relayed by the Bus, which calls `on_egress`.
"""

from snekmate.auth import ownable
from snekmate.auth import ownable_2step

initializes: ownable
initializes: ownable_2step[ownable := ownable]

exports: (
    ownable.owner,
    ownable_2step.pending_owner,
    ownable_2step.transfer_ownership,
    ownable_2step.accept_ownership,
)

interface IBus:
    def recover(digest: bytes32, sig: Bytes[65]) -> address: view

MAX_HPKE_KEY: constant(uint256) = 1216
MAX_QUOTE: constant(uint256) = 8192
MAX_API_URL: constant(uint256) = 256
MAX_EGRESS: constant(uint256) = 32768
MAX_CLUSTER_WORKERS: constant(uint256) = 64

KIND_NONE: constant(uint8) = 0
KIND_WORKER: constant(uint8) = 1
KIND_MASTER: constant(uint8) = 2
KIND_CLUSTER: constant(uint8) = 3
KIND_CONTRACT: constant(uint8) = 4


TOPIC_MASTER_KEY: constant(bytes32) = keccak256("veil/egress/master-key")
TOPIC_ENDORSE: constant(bytes32) = keccak256("veil/egress/endorse")
TOPIC_CLUSTER_KEY: constant(bytes32) = keccak256("veil/egress/cluster-key")
TOPIC_ROTATION_PROPOSE: constant(bytes32) = keccak256("veil/egress/rotation-propose")
TOPIC_ROTATION_CONFIRM: constant(bytes32) = keccak256("veil/egress/rotation-confirm")
TOPIC_HEARTBEAT: constant(bytes32) = keccak256("veil/egress/heartbeat")
TOPIC_STATE_COMMITMENT: constant(bytes32) = keccak256("veil/egress/state-commitment")
TOPIC_WORKER_KEY: constant(bytes32) = keccak256("veil/egress/worker-key")

# Blocks a heartbeat stays postable: as far back as BLOCKHASH can check its block hash.
HEARTBEAT_WINDOW: constant(uint256) = 256
# How old the block a registration quote binds may be (as far back as BLOCKHASH reaches).
ATTESTATION_WINDOW: constant(uint256) = 256
FLAG_CLONE: constant(uint8) = 1
# Blocks a rotation may take (from its lock) before anyone may abort it: a gatekeeper that went
# offline, or a host that drops its confirmations, cannot hold the master key in place.
ROTATION_WINDOW: constant(uint256) = 600
# A proposal or confirmation carries the new master key's signature over (this tag, chain,
# Registry, attempt, gatekeeper): only a gatekeeper that holds the key can confirm it.
POSSESSION_TAG: constant(bytes32) = keccak256("veil/rotation-possession")
# The post that forms a verdict looks at the first 16 posters and names at most 4 earlier
# dissenters among them (each costs ~38k gas, and the Bus forwards 400k in all);
# `report_divergence` names any others.
MAX_SCANNED_AT_VERDICT: constant(uint256) = 16
# Blocks after which the operator of a registration nobody judged may take its deposit back
# (a day of 12-second blocks): gatekeepers that never answer cannot keep it.
DEPOSIT_WINDOW: constant(uint256) = 7200
MAX_NAMED_AT_VERDICT: constant(uint256) = 4


struct Worker:
    operator: address
    hpke_key_hash: bytes32
    tee_kind: uint8
    measurement: bytes32
    confidence: uint8
    quote_hash: bytes32
    collateral_hash: bytes32
    cluster: bytes32


struct Heartbeat:
    height: uint64
    boot_id: bytes32


struct Cluster:
    owner: address
    key_epoch: uint64
    key_address: address
    key_hash: bytes32
    key_block: uint64
    worker_count: uint256


event BusSet:
    bus: indexed(address)

event MeasurementSet:
    measurement: indexed(bytes32)
    allowed: bool

event GatekeeperAdded:
    gatekeeper: indexed(address)

event GatekeeperRemoved:
    gatekeeper: indexed(address)

event WorkerRegistered:
    worker: indexed(address)
    operator: indexed(address)
    hpke_key: Bytes[MAX_HPKE_KEY]
    tee_kind: uint8
    measurement: bytes32
    quote_hash: bytes32
    collateral_hash: bytes32
    quote: Bytes[MAX_QUOTE]
    attested_block: uint64
    attested_hash: bytes32
    registration: bytes32
    api_url: String[MAX_API_URL]

event WorkerEndorsed:
    worker: indexed(address)
    confidence: uint8
    registration: bytes32
    valid_until: uint64

event WorkerReattested:
    worker: indexed(address)
    quote_hash: bytes32
    collateral_hash: bytes32
    quote: Bytes[MAX_QUOTE]
    attested_block: uint64
    attested_hash: bytes32
    registration: bytes32

event WorkerKeyPublished:
    worker: indexed(address)
    index: uint64
    public_key: Bytes[MAX_HPKE_KEY]

event HeartbeatRecorded:
    worker: indexed(address)
    height: uint64
    boot_id: bytes32
    sealed_height: uint64

event WorkerFlagged:
    worker: indexed(address)
    reason: uint8

event ReplicaDiverged:
    cluster_id: indexed(bytes32)
    worker: indexed(address)
    height: uint64
    commitment: bytes32
    majority: bytes32

event MasterKeySet:
    gatekeeper: indexed(address)
    key_address: indexed(address)
    public_key: Bytes[MAX_HPKE_KEY]

event RotationLocked:
    rotation: indexed(uint256)
    attempt: uint256

event RotationProposed:
    rotation: indexed(uint256)
    proposer: indexed(address)
    key_address: address
    public_key: Bytes[MAX_HPKE_KEY]

event RotationConfirmed:
    rotation: indexed(uint256)
    gatekeeper: indexed(address)
    confirmations: uint256

event MasterKeyRotated:
    rotation: indexed(uint256)
    key_address: indexed(address)
    public_key: Bytes[MAX_HPKE_KEY]

event RotationAborted:
    rotation: indexed(uint256)

event RotationThresholdSet:
    threshold: uint256

event RegistrationDepositSet:
    amount: uint256

event ClusterCreated:
    cluster_id: indexed(bytes32)
    owner: indexed(address)
    suite: uint8

event ClusterWorkerAdded:
    cluster_id: indexed(bytes32)
    worker: indexed(address)

event ClusterWorkerRemoved:
    cluster_id: indexed(bytes32)
    worker: indexed(address)

event ClusterKeySet:
    cluster_id: indexed(bytes32)
    epoch: uint64
    key_address: indexed(address)
    public_key: Bytes[MAX_HPKE_KEY]

bus: public(address)
allowed_measurements: public(HashMap[bytes32, bool])
workers: public(HashMap[address, Worker])
origin_kind: public(HashMap[address, uint8])
gatekeepers: public(HashMap[address, bool])
gatekeeper_count: public(uint256)
master_key_address: public(address)
master_key_hash: public(bytes32)
rotation_counter: public(uint256)
rotation_locked: public(bool)
proposal_key_address: address
proposal_key_hash: bytes32
# Confirmations count per attempt (a number that grows at every lock), so an aborted attempt
# leaves nothing behind that could refuse a gatekeeper in the next one.
rotation_confirmed: HashMap[uint256, HashMap[address, bool]]
rotation_confirmations: public(uint256)
rotation_attempt: public(uint256)
rotation_deadline: public(uint256)
# Confirmations that complete a rotation: 0 means every gatekeeper; k means k of them (all, if
# fewer are left).
rotation_threshold: public(uint256)
# Forward secrecy has the master's lifetime as its bound (it derives every cluster epoch made
# under it): governance sets how many blocks a master key may serve, after which anyone may
# start its rotation (0: only governance does).
rotation_interval: public(uint256)
master_since: public(uint256)
clusters: public(HashMap[bytes32, Cluster])
cluster_members: public(HashMap[bytes32, HashMap[address, bool]])
last_heartbeat: public(HashMap[address, Heartbeat])
retired_boot: HashMap[address, HashMap[bytes32, bool]]
flagged: public(HashMap[address, uint8])
# Until when (unix seconds, block time) a worker's endorsement holds: the collateral and TCB
# validity the gatekeeper judged its quote under. Past it the worker is not endorsed.
endorsed_until: public(HashMap[address, uint64])
# State commitments, per cluster and height: what each member posted, how many posted each
# value, who posted (in order), and the value a strict majority of the members posted.
commitment_of: public(HashMap[bytes32, HashMap[uint64, HashMap[address, bytes32]]])
commitment_votes: HashMap[bytes32, HashMap[uint64, HashMap[bytes32, uint256]]]
commitment_posters: HashMap[bytes32, HashMap[uint64, DynArray[address, MAX_CLUSTER_WORKERS]]]
commitment_verdict: public(HashMap[bytes32, HashMap[uint64, bytes32]])
commitment_named: HashMap[bytes32, HashMap[uint64, HashMap[address, bool]]]
diverged_at: public(HashMap[address, uint64])
# The number of each worker's newest encryption key (`WorkerKeyPublished`); never reset, so a
# key number names one key for good.
encryption_index: public(HashMap[address, uint64])
# The gatekeeper named before any master key existed (so before anyone could endorse it): it
# may hold its role unjudged until the first verdict on it lands.
genesis_gatekeeper: public(address)
# What an endorsement names: a digest of every field of the registration (identity, HPKE key,
# measurement, quote) and a number that grows with each registration or re-attestation of the
# identity, so a verdict never carries over to anything registered after it was judged.
registration_of: public(HashMap[address, bytes32])
registration_count: HashMap[address, uint64]
# Registration deposits: what each identity's pending registrations hold (refunded to its
# operator on endorsement, forfeited on refusal), since which block (the operator reclaims a
# deposit nobody judged within DEPOSIT_WINDOW), what each operator may claim, and what was
# forfeited (governance withdraws it).
registration_deposit: public(uint256)
deposit_of: public(HashMap[address, uint256])
deposit_block: HashMap[address, uint256]
refund_of: public(HashMap[address, uint256])
forfeited: public(uint256)


@deploy
def __init__():
    ownable.__init__()
    ownable_2step.__init__()


# --- governance -------------------------------------------------------------------------

@external
def set_bus(bus: address):
    ownable._check_owner()
    assert self.bus == empty(address), "bus already set"
    assert bus != empty(address), "zero address"
    self.bus = bus
    log BusSet(bus=bus)


@external
def set_measurement(measurement: bytes32, allowed: bool):
    ownable._check_owner()
    self.allowed_measurements[measurement] = allowed
    log MeasurementSet(measurement=measurement, allowed=allowed)


@external
def add_gatekeeper(gatekeeper: address):
    ownable._check_owner()
    assert not self.rotation_locked, "rotation in progress"
    assert self.origin_kind[gatekeeper] == KIND_WORKER, "not a registered worker"
    assert not self.gatekeepers[gatekeeper], "already a gatekeeper"
    # gatekeepers receive the master key: only endorsed workers, except the genesis gatekeeper
    # (named before any master key exists, so before anyone could endorse it)
    assert (
        self._eligible(gatekeeper) or self.master_key_address == empty(address)
    ), "gatekeeper not endorsed"
    if self.master_key_address == empty(address) and self.gatekeeper_count == 0:
        self.genesis_gatekeeper = gatekeeper
    self.gatekeepers[gatekeeper] = True
    self.gatekeeper_count += 1
    log GatekeeperAdded(gatekeeper=gatekeeper)


@external
def remove_gatekeeper(gatekeeper: address):
    ownable._check_owner()
    assert not self.rotation_locked, "rotation in progress"
    assert self.gatekeepers[gatekeeper], "not a gatekeeper"
    self.gatekeepers[gatekeeper] = False
    self.gatekeeper_count -= 1
    if gatekeeper == self.genesis_gatekeeper:
        self.genesis_gatekeeper = empty(address)
    log GatekeeperRemoved(gatekeeper=gatekeeper)


@external
def lock_rotation():
    """
    @notice Governance, or anyone once the master key is `rotation_interval` blocks old.
    """
    if msg.sender != ownable.owner:
        assert self.rotation_interval != 0, "rotation not due"
        assert block.number >= self.master_since + self.rotation_interval, "rotation not due"
    assert self.master_key_address != empty(address), "no master key"
    assert not self.rotation_locked, "rotation in progress"
    self.rotation_locked = True
    self.rotation_attempt += 1
    self.rotation_deadline = block.number + ROTATION_WINDOW
    log RotationLocked(rotation=self.rotation_counter + 1, attempt=self.rotation_attempt)


@external
def set_rotation_interval(blocks: uint256):
    """
    @notice Governance: after how many blocks of a master key anyone may rotate it (0: never).
    """
    ownable._check_owner()
    self.rotation_interval = blocks


@external
def set_rotation_threshold(threshold: uint256):
    """
    @notice Governance: how many gatekeepers' confirmations complete a rotation (0: all).
    """
    ownable._check_owner()
    assert not self.rotation_locked, "rotation in progress"
    self.rotation_threshold = threshold
    log RotationThresholdSet(threshold=threshold)


@external
def abort_rotation():
    """
    @notice The owner may abort a rotation at any time; anyone may once its deadline passed.
    """
    assert self.rotation_locked, "no rotation in progress"
    if msg.sender != ownable.owner:
        assert block.number > self.rotation_deadline, "rotation not expired"
    self.rotation_locked = False
    self.proposal_key_address = empty(address)
    self.proposal_key_hash = empty(bytes32)
    self.rotation_confirmations = 0
    log RotationAborted(rotation=self.rotation_counter + 1)


@external
def set_registration_deposit(amount: uint256):
    """
    @notice Governance: what a registration or re-attestation must pay (refunded to the
            operator on endorsement): junk quotes, which every gatekeeper must verify, cost
            their sender.
    """
    ownable._check_owner()
    self.registration_deposit = amount
    log RegistrationDepositSet(amount=amount)


@external
@nonreentrant
def withdraw_forfeited(to: address):
    """
    @notice Governance: the deposits of refused registrations, sent with all gas (a multisig
            can receive).
    """
    ownable._check_owner()
    assert to != empty(address), "zero address"
    amount: uint256 = self.forfeited
    self.forfeited = 0
    raw_call(to, b"", value=amount)


@external
def create_cluster(cluster_id: bytes32, owner: address, suite: uint8):
    """
    @notice `suite` is the HPKE suite of the cluster's keys and its contracts' keys: 1
            X25519, 2 ML-KEM-768 + X25519 (post-quantum hybrid, 1,216-byte keys). Keys are
            stored by hash, so either costs the same gas.
    """
    ownable._check_owner()
    assert self.clusters[cluster_id].owner == empty(address), "cluster exists"
    assert owner != empty(address), "zero address"
    assert suite == 1 or suite == 2, "unknown suite"
    self.clusters[cluster_id].owner = owner
    log ClusterCreated(cluster_id=cluster_id, owner=owner, suite=suite)


# --- workers ----------------------------------------------------------------------------

@payable
@external
def register_worker(
    operator: address,
    hpke_key: Bytes[MAX_HPKE_KEY],
    tee_kind: uint8,
    measurement: bytes32,
    quote: Bytes[MAX_QUOTE],
    collateral_hash: bytes32,
    attested_block: uint256,
    api_url: String[MAX_API_URL],
):
    """
    @notice Called by the worker's identity address. The quote stays in calldata and in the
            event so anyone can re-verify the registration later. Re-registering starts from
            nothing: the endorsement is reset and the worker leaves its cluster (its new key
            gets no cluster key until it is endorsed and added again). The quote's report
            data binds the hash of `attested_block`, which must be one of the last 256
            blocks: the event carries that hash, and gatekeepers judge the quote against it,
            so no quote older than that can register. A gatekeeper leaves the gatekeeper set
            as well (not during a rotation, which counts it: then it cannot re-register).
            `api_url` is where the worker serves queries (empty: it serves none); only the
            event keeps it, so clients find a worker from the chain alone.
    """
    attested_hash: bytes32 = self._attested(attested_block)
    assert self.allowed_measurements[measurement], "measurement not allowed"
    assert len(hpke_key) > 0, "empty key"
    self._hold_deposit(msg.value)
    kind: uint8 = self.origin_kind[msg.sender]
    assert kind == KIND_NONE or kind == KIND_WORKER, "origin in use"
    # a gatekeeper's new key must not count towards a rotation it cannot confirm
    assert not (self.gatekeepers[msg.sender] and self.rotation_locked), "rotation in progress"
    self._evict(msg.sender)
    quote_hash: bytes32 = keccak256(quote)
    self.workers[msg.sender].operator = operator
    self.workers[msg.sender].hpke_key_hash = keccak256(hpke_key)
    self.workers[msg.sender].tee_kind = tee_kind
    self.workers[msg.sender].measurement = measurement
    self.workers[msg.sender].confidence = 0
    self.endorsed_until[msg.sender] = 0
    self.workers[msg.sender].quote_hash = quote_hash
    self.workers[msg.sender].collateral_hash = collateral_hash
    self.origin_kind[msg.sender] = KIND_WORKER
    registration: bytes32 = self._registration(msg.sender)
    log WorkerRegistered(
        worker=msg.sender,
        operator=operator,
        hpke_key=hpke_key,
        tee_kind=tee_kind,
        measurement=measurement,
        quote_hash=quote_hash,
        collateral_hash=collateral_hash,
        quote=quote,
        attested_block=convert(attested_block, uint64),
        attested_hash=attested_hash,
        registration=registration,
        api_url=api_url,
    )


@internal
def _registration(worker: address) -> bytes32:
    count: uint64 = self.registration_count[worker] + 1
    self.registration_count[worker] = count
    digest: bytes32 = keccak256(
        abi_encode(
            worker,
            self.workers[worker].hpke_key_hash,
            self.workers[worker].measurement,
            self.workers[worker].quote_hash,
            count,
        )
    )
    self.registration_of[worker] = digest
    return digest


@payable
@external
def reattest_worker(quote: Bytes[MAX_QUOTE], collateral_hash: bytes32, attested_block: uint256):
    """
    @notice Called by a registered worker's identity before its endorsement expires: a fresh
            quote of the same registration (key, measurement, operator), judged like the first.
            Unlike `register_worker` it keeps the worker's endorsement and cluster until the
            verdict: an accepted quote extends the endorsement, a refused one ends it.
    """
    attested_hash: bytes32 = self._attested(attested_block)
    assert self.origin_kind[msg.sender] == KIND_WORKER, "not a registered worker"
    assert self.flagged[msg.sender] == 0, "worker flagged"
    assert self.allowed_measurements[self.workers[msg.sender].measurement], "measurement not allowed"
    self._hold_deposit(msg.value)
    quote_hash: bytes32 = keccak256(quote)
    self.workers[msg.sender].quote_hash = quote_hash
    self.workers[msg.sender].collateral_hash = collateral_hash
    registration: bytes32 = self._registration(msg.sender)
    log WorkerReattested(
        worker=msg.sender,
        quote_hash=quote_hash,
        collateral_hash=collateral_hash,
        quote=quote,
        attested_block=convert(attested_block, uint64),
        attested_hash=attested_hash,
        registration=registration,
    )


@internal
def _hold_deposit(paid: uint256):
    """The registration's deposit joins what the identity holds until its next verdict."""
    assert paid >= self.registration_deposit, "deposit too low"
    if paid > 0:  # a network without deposits pays no storage for them
        self.deposit_of[msg.sender] += paid
        self.deposit_block[msg.sender] = block.number


@internal
def _settle_deposit(worker: address, endorsed: bool):
    """A verdict settles what the worker's registrations hold: back to its operator if it was
    endorsed, forfeited if it was refused."""
    held: uint256 = self.deposit_of[worker]
    if held == 0:
        return
    self.deposit_of[worker] = 0
    if endorsed:
        self.refund_of[self.workers[worker].operator] += held
    else:
        self.forfeited += held


@external
def reclaim_deposit(worker: address):
    """
    @notice Anyone may hand a deposit nobody judged within DEPOSIT_WINDOW blocks back to the
            worker's operator: a registration that leaves unjudged costs nothing.
    """
    assert self.deposit_of[worker] > 0, "no deposit"
    assert block.number > self.deposit_block[worker] + DEPOSIT_WINDOW, "deposit not expired"
    self._settle_deposit(worker, True)


@external
@nonreentrant
def claim_refund():
    """
    @notice An operator takes the deposits refunded to it (sent with all gas).
    """
    amount: uint256 = self.refund_of[msg.sender]
    assert amount > 0, "nothing to claim"
    self.refund_of[msg.sender] = 0
    raw_call(msg.sender, b"", value=amount)


@view
@external
def may_post(origin: address) -> bool:
    """
    @notice Whether a worker identity may post egress (the Bus asks): only while eligible,
            except the genesis gatekeeper before its first verdict, which posts the first
            master key before anyone can endorse it.
    """
    return self._eligible(origin) or (origin == self.genesis_gatekeeper and self.endorsed_until[origin] == 0)


@view
@external
def cluster_info(cluster_id: bytes32) -> (address, address, uint64):
    """
    @notice (owner, key address, key epoch) of a cluster, for the Bus: who decides its deploy
            policy, and which key may post its contracts' keys.
    """
    return self.clusters[cluster_id].owner, self.clusters[cluster_id].key_address, self.clusters[cluster_id].key_epoch


@external
def claim_origin(key_address: address):
    """
    @notice The Bus makes a contract key an origin. One table holds every origin, so no key
            ever holds two roles.
    """
    assert msg.sender == self.bus, "only bus"
    self._fresh_origin(key_address)
    self.origin_kind[key_address] = KIND_CONTRACT


@internal
@view
def _attested(attested_block: uint256) -> bytes32:
    assert attested_block < block.number, "future attestation"
    assert block.number - attested_block <= ATTESTATION_WINDOW, "stale attestation"
    return blockhash(attested_block)


@internal
@view
def _fresh_origin(key_address: address):
    """A key about to become an origin: never the zero address (no signature recovers to it,
    so the role would be dead), never a key that already holds a role."""
    assert key_address != empty(address), "zero address"
    assert self.origin_kind[key_address] == KIND_NONE, "origin in use"


@internal
@view
def _endorsed(worker: address) -> bool:
    return self.workers[worker].confidence > 0 and convert(self.endorsed_until[worker], uint256) > block.timestamp


@internal
@view
def _eligible(worker: address) -> bool:
    """Endorsed now, running a measurement that is still allowed, never caught running twice:
    what a cluster member or a gatekeeper must be."""
    return (
        self._endorsed(worker)
        and self.allowed_measurements[self.workers[worker].measurement]
        and self.flagged[worker] == 0
    )


@internal
def _evict(worker: address) -> bool:
    """Take `worker` out of its cluster and (outside a rotation, whose confirmations count the
    gatekeepers) out of the gatekeeper set. True if it held either role."""
    evicted: bool = False
    cluster_id: bytes32 = self.workers[worker].cluster
    if cluster_id != empty(bytes32):
        self.workers[worker].cluster = empty(bytes32)
        self.cluster_members[cluster_id][worker] = False
        self.clusters[cluster_id].worker_count -= 1
        log ClusterWorkerRemoved(cluster_id=cluster_id, worker=worker)
        evicted = True
    if self.gatekeepers[worker] and not self.rotation_locked:
        self.gatekeepers[worker] = False
        self.gatekeeper_count -= 1
        if worker == self.genesis_gatekeeper:
            self.genesis_gatekeeper = empty(address)
        log GatekeeperRemoved(gatekeeper=worker)
        evicted = True
    return evicted


@external
def evict(worker: address):
    """
    @notice Anyone may take a worker that is no longer eligible (its endorsement ended or
            expired, its measurement was revoked, it was flagged or found diverged) out of its
            cluster and the gatekeeper set. De-endorsement and flagging evict at once; expiry,
            revocation and divergence verdicts (which name several workers at a time) leave
            it to this call.
    """
    assert not self._eligible(worker), "still eligible"
    unjudged: bool = self.endorsed_until[worker] == 0 and self.workers[worker].confidence == 0
    assert not (
        worker == self.genesis_gatekeeper
        and unjudged
        and self.flagged[worker] == 0
        and self.allowed_measurements[self.workers[worker].measurement]
    ), "genesis gatekeeper not judged yet"
    assert self._evict(worker), "nothing to evict"


# --- clusters ---------------------------------------------------------------------------

@external
def add_cluster_worker(cluster_id: bytes32, worker: address):
    assert self.clusters[cluster_id].owner == msg.sender, "not cluster owner"
    assert self._eligible(worker), "worker not endorsed"
    assert self.workers[worker].cluster == empty(bytes32), "worker in a cluster"
    assert self.clusters[cluster_id].worker_count < MAX_CLUSTER_WORKERS, "cluster full"
    self.workers[worker].cluster = cluster_id
    self.cluster_members[cluster_id][worker] = True
    self.clusters[cluster_id].worker_count += 1
    log ClusterWorkerAdded(cluster_id=cluster_id, worker=worker)


@external
def remove_cluster_worker(cluster_id: bytes32, worker: address):
    assert self.clusters[cluster_id].owner == msg.sender, "not cluster owner"
    assert self.cluster_members[cluster_id][worker], "not a member"
    self.workers[worker].cluster = empty(bytes32)
    self.cluster_members[cluster_id][worker] = False
    self.clusters[cluster_id].worker_count -= 1
    log ClusterWorkerRemoved(cluster_id=cluster_id, worker=worker)


@internal
def _confirm_rotation(
    rotation: uint256, gatekeeper: address, key_address: address, public_key: Bytes[MAX_HPKE_KEY], proof: Bytes[65]
):
    # the key travels in each confirmation (the Registry keeps its hash only), so the one that
    # completes the rotation can put it in `MasterKeyRotated`
    assert keccak256(public_key) == self.proposal_key_hash, "wrong key"
    attempt: uint256 = self.rotation_attempt
    digest: bytes32 = keccak256(abi_encode(POSSESSION_TAG, chain.id, self, attempt, gatekeeper))
    # the Bus's signature check (low s, v 27/28: "bad signature"), shared to save code here
    assert staticcall IBus(self.bus).recover(digest, proof) == key_address, "no key possession"
    assert not self.rotation_confirmed[attempt][gatekeeper], "already confirmed"
    self.rotation_confirmed[attempt][gatekeeper] = True
    self.rotation_confirmations += 1
    log RotationConfirmed(rotation=rotation, gatekeeper=gatekeeper, confirmations=self.rotation_confirmations)
    needed: uint256 = self.gatekeeper_count
    if self.rotation_threshold != 0:
        needed = min(self.rotation_threshold, needed)
    if self.rotation_confirmations >= needed:
        self.master_key_address = key_address
        self.master_key_hash = self.proposal_key_hash
        self.origin_kind[key_address] = KIND_MASTER
        self.rotation_counter = rotation
        self.rotation_locked = False
        self.proposal_key_address = empty(address)
        self.proposal_key_hash = empty(bytes32)
        self.rotation_confirmations = 0
        self.master_since = block.number
        log MasterKeyRotated(rotation=rotation, key_address=key_address, public_key=public_key)


# --- effects of egress messages (called by the Bus after it checked signature and seq) ----

@external
def on_egress(origin: address, kind: uint8, topic: bytes32, payload: Bytes[MAX_EGRESS]):
    """
    @notice A revert here does not undo the egress: the Bus records `EgressRejected` and the
            origin's sequence still advances, so a bad message can never block an origin.
    """
    assert msg.sender == self.bus, "only bus"
    if topic == TOPIC_ENDORSE:
        assert kind == KIND_MASTER, "wrong origin"
        # a rotated-out master key endorses nothing: rotating a leaked key must end its powers
        assert origin == self.master_key_address, "old master key"
        worker: address = empty(address)
        confidence: uint8 = 0
        registration: bytes32 = empty(bytes32)
        valid_until: uint64 = 0
        worker, confidence, registration, valid_until = abi_decode(payload, (address, uint8, bytes32, uint64))
        assert self.origin_kind[worker] == KIND_WORKER, "unknown worker"
        assert self.registration_of[worker] == registration, "stale registration"
        assert self.flagged[worker] == 0, "worker flagged"
        assert confidence <= 5, "bad confidence"
        if confidence == 0:
            valid_until = 0
        self.workers[worker].confidence = confidence
        self.endorsed_until[worker] = valid_until
        self._settle_deposit(worker, confidence > 0)
        log WorkerEndorsed(worker=worker, confidence=confidence, registration=registration, valid_until=valid_until)
        if confidence == 0:
            self._evict(worker)
    elif topic == TOPIC_MASTER_KEY:
        assert kind == KIND_WORKER and self.gatekeepers[origin], "wrong origin"
        assert self.master_key_address == empty(address), "master key exists"
        key_address: address = empty(address)
        public_key: Bytes[MAX_HPKE_KEY] = b""
        key_address, public_key = abi_decode(payload, (address, Bytes[MAX_HPKE_KEY]))
        self._fresh_origin(key_address)
        self.master_key_address = key_address
        self.master_key_hash = keccak256(public_key)
        self.origin_kind[key_address] = KIND_MASTER
        self.master_since = block.number
        log MasterKeySet(gatekeeper=origin, key_address=key_address, public_key=public_key)
    elif topic == TOPIC_CLUSTER_KEY:
        assert kind == KIND_MASTER and origin == self.master_key_address, "wrong origin"
        cluster_id: bytes32 = empty(bytes32)
        epoch: uint64 = 0
        key_address: address = empty(address)
        public_key: Bytes[MAX_HPKE_KEY] = b""
        cluster_id, epoch, key_address, public_key = abi_decode(
            payload, (bytes32, uint64, address, Bytes[MAX_HPKE_KEY])
        )
        assert self.clusters[cluster_id].owner != empty(address), "unknown cluster"
        assert epoch > self.clusters[cluster_id].key_epoch, "stale epoch"
        self._fresh_origin(key_address)
        self.clusters[cluster_id].key_epoch = epoch
        self.clusters[cluster_id].key_address = key_address
        self.clusters[cluster_id].key_hash = keccak256(public_key)
        self.clusters[cluster_id].key_block = convert(block.number, uint64)
        self.origin_kind[key_address] = KIND_CLUSTER
        log ClusterKeySet(cluster_id=cluster_id, epoch=epoch, key_address=key_address, public_key=public_key)
    elif topic == TOPIC_ROTATION_PROPOSE:
        assert kind == KIND_WORKER and self.gatekeepers[origin], "wrong origin"
        assert self.rotation_locked, "no rotation in progress"
        assert self.proposal_key_address == empty(address), "already proposed"
        rotation: uint256 = 0
        key_address: address = empty(address)
        public_key: Bytes[MAX_HPKE_KEY] = b""
        proof: Bytes[65] = b""
        rotation, key_address, public_key, proof = abi_decode(payload, (uint256, address, Bytes[MAX_HPKE_KEY], Bytes[65]))
        assert rotation == self.rotation_counter + 1, "wrong rotation"
        self._fresh_origin(key_address)
        self.proposal_key_address = key_address
        self.proposal_key_hash = keccak256(public_key)
        log RotationProposed(rotation=rotation, proposer=origin, key_address=key_address, public_key=public_key)
        # The proposer holds the key it proposed: its proposal is also its confirmation, so a
        # network with a single gatekeeper rotates in one step.
        self._confirm_rotation(rotation, origin, key_address, public_key, proof)
    elif topic == TOPIC_ROTATION_CONFIRM:
        assert kind == KIND_WORKER and self.gatekeepers[origin], "wrong origin"
        rotation: uint256 = 0
        key_address: address = empty(address)
        public_key: Bytes[MAX_HPKE_KEY] = b""
        proof: Bytes[65] = b""
        rotation, key_address, public_key, proof = abi_decode(
            payload, (uint256, address, Bytes[MAX_HPKE_KEY], Bytes[65])
        )
        assert self.rotation_locked, "no rotation in progress"
        assert rotation == self.rotation_counter + 1, "wrong rotation"
        assert key_address == self.proposal_key_address and key_address != empty(address), "wrong key"
        self._confirm_rotation(rotation, origin, key_address, public_key, proof)
    elif topic == TOPIC_HEARTBEAT:
        assert kind == KIND_WORKER, "wrong origin"
        self._heartbeat(origin, payload)
    elif topic == TOPIC_STATE_COMMITMENT:
        assert kind == KIND_WORKER, "wrong origin"
        self._state_commitment(origin, payload)
    elif topic == TOPIC_WORKER_KEY:
        # A worker's encryption keys, numbered from 1, one per cluster epoch: gatekeepers wrap
        # keys to the newest (never to the identity), and the worker destroys the older ones.
        assert kind == KIND_WORKER, "wrong origin"
        index: uint64 = 0
        public_key: Bytes[MAX_HPKE_KEY] = b""
        index, public_key = abi_decode(payload, (uint64, Bytes[MAX_HPKE_KEY]))
        assert len(public_key) == 32 or len(public_key) == MAX_HPKE_KEY, "bad key"
        assert index == self.encryption_index[origin] + 1, "wrong key index"
        self.encryption_index[origin] = index
        log WorkerKeyPublished(worker=origin, index=index, public_key=public_key)
    else:
        raise "unknown topic"


@internal
def _heartbeat(worker: address, payload: Bytes[MAX_EGRESS]):
    """
    @notice Each boot of an enclave core draws a fresh boot id. A boot id that was replaced
            and then reports a newer height means two live copies of one identity: the
            worker is flagged for good. A restart (new boot id, old one never seen again) is
            not a clone.
    """
    height: uint64 = 0
    block_hash: bytes32 = empty(bytes32)
    sealed_height: uint64 = 0
    boot_id: bytes32 = empty(bytes32)
    height, block_hash, sealed_height, boot_id = abi_decode(payload, (uint64, bytes32, uint64, bytes32))
    assert convert(height, uint256) < block.number, "future heartbeat"
    assert block.number - convert(height, uint256) <= HEARTBEAT_WINDOW, "stale heartbeat"
    assert blockhash(convert(height, uint256)) == block_hash, "unknown block"
    last: Heartbeat = self.last_heartbeat[worker]
    if self.retired_boot[worker][boot_id]:
        assert height > last.height, "stale heartbeat"
        if self.flagged[worker] == 0:
            self.flagged[worker] = FLAG_CLONE
            self.workers[worker].confidence = 0
            log WorkerFlagged(worker=worker, reason=FLAG_CLONE)
            self._evict(worker)
        return
    assert height >= last.height, "stale heartbeat"
    if last.boot_id != boot_id and last.boot_id != empty(bytes32):
        self.retired_boot[worker][last.boot_id] = True
    self.last_heartbeat[worker] = Heartbeat(height=height, boot_id=boot_id)
    log HeartbeatRecorded(worker=worker, height=height, boot_id=boot_id, sealed_height=sealed_height)


@internal
def _state_commitment(worker: address, payload: Bytes[MAX_EGRESS]):
    """
    @notice Members post a keyed commitment to their cluster's state at the same heights. Once
            a strict majority of the cluster's members posted one value, that is the verdict
            for the height: every member that posted another value, before or after, diverged.
            It is de-endorsed (confidence 0: no new keys, clients refuse it) and named in
            `ReplicaDiverged`. A value that differs from the first one posted while no majority
            exists is reported with an empty `majority` and changes nothing else.
    """
    cluster_id: bytes32 = empty(bytes32)
    height: uint64 = 0
    commitment: bytes32 = empty(bytes32)
    cluster_id, height, commitment = abi_decode(payload, (bytes32, uint64, bytes32))
    assert self.cluster_members[cluster_id][worker], "not a member"
    assert self._endorsed(worker), "worker not endorsed"
    assert convert(height, uint256) < block.number, "future commitment"
    assert commitment != empty(bytes32), "empty commitment"
    assert self.commitment_of[cluster_id][height][worker] == empty(bytes32), "already committed"
    self.commitment_of[cluster_id][height][worker] = commitment
    votes: uint256 = self.commitment_votes[cluster_id][height][commitment] + 1
    self.commitment_votes[cluster_id][height][commitment] = votes
    first: bool = len(self.commitment_posters[cluster_id][height]) == 0
    reference: bytes32 = commitment
    if not first:
        reference = self.commitment_of[cluster_id][height][self.commitment_posters[cluster_id][height][0]]
    self.commitment_posters[cluster_id][height].append(worker)
    verdict: bytes32 = self.commitment_verdict[cluster_id][height]
    if verdict != empty(bytes32):
        if commitment != verdict:
            self._diverged(cluster_id, worker, height, commitment, verdict)
        return
    if votes * 2 > self.clusters[cluster_id].worker_count:
        self.commitment_verdict[cluster_id][height] = commitment
        named: uint256 = 0
        posters: uint256 = len(self.commitment_posters[cluster_id][height])
        for index: uint256 in range(MAX_SCANNED_AT_VERDICT):
            if index == posters or named == MAX_NAMED_AT_VERDICT:
                break
            poster: address = self.commitment_posters[cluster_id][height][index]
            posted: bytes32 = self.commitment_of[cluster_id][height][poster]
            if posted != commitment:
                self._diverged(cluster_id, poster, height, posted, commitment)
                named += 1
        return
    if commitment != reference:
        log ReplicaDiverged(
            cluster_id=cluster_id, worker=worker, height=height, commitment=commitment, majority=empty(bytes32)
        )


@external
def report_divergence(cluster_id: bytes32, height: uint64, worker: address):
    """
    @notice Anyone may name a member whose commitment for `height` differs from the verdict
            and that is not named yet: the post that forms a verdict names at most
            `MAX_NAMED_AT_VERDICT` earlier dissenters, so that it stays within the gas the Bus
            forwards however many dissent at once.
    """
    verdict: bytes32 = self.commitment_verdict[cluster_id][height]
    assert verdict != empty(bytes32), "no verdict"
    posted: bytes32 = self.commitment_of[cluster_id][height][worker]
    assert posted != empty(bytes32), "no commitment"
    assert posted != verdict, "agrees with the verdict"
    assert not self.commitment_named[cluster_id][height][worker], "already named"
    self._diverged(cluster_id, worker, height, posted, verdict)


@internal
def _diverged(cluster_id: bytes32, worker: address, height: uint64, commitment: bytes32, majority: bytes32):
    self.commitment_named[cluster_id][height][worker] = True
    self.workers[worker].confidence = 0
    if height > self.diverged_at[worker]:
        self.diverged_at[worker] = height
    log ReplicaDiverged(cluster_id=cluster_id, worker=worker, height=height, commitment=commitment, majority=majority)
