# pragma version 0.4.3
# pragma evm-version cancun
"""
@title Veilnet consumer
@notice An EVM contract that asks one Veilnet agent for work and takes only results its
        workers signed with the agent's contract key: deploy it as is, or copy it into a
        DApp's own contract. `request` goes through the Bus (`JobRequested`); any relayer may
        deliver the result with `fulfill` (or ten at once with `fulfill_batch`); the first
        valid one wins, and every later copy reverts. A request that gets no result by its
        deadline can be expired, which refunds what its requester paid.
"""

struct Schedule:
    contract_id: bytes32
    consumer: address
    every: uint64
    start: uint64
    active: bool


interface IBus:
    def request(contract_id: bytes32, payload: Bytes[4096], ttl: uint256) -> bytes32: nonpayable
    def may_sign_results(contract_id: bytes32, signer: address) -> bool: view
    def schedules(schedule_id: uint256) -> Schedule: view

MAX_REQUEST: constant(uint256) = 4096
MAX_RESULT: constant(uint256) = 32768
MAX_BATCH: constant(uint256) = 10
MAX_BATCH_RESULT: constant(uint256) = 1024
# What an agent's key signs: keccak256(abi_encode(RESULT_TAG, chain.id, consumer, request,
# keccak256(result))), so a result answers one request of one consumer on one chain.
RESULT_TAG: constant(bytes32) = keccak256("veil/job-result")
SECP256K1_HALF_N: constant(uint256) = 57896044618658097711785492504343953926418782139537452191302581570759080747168
PENDING_BOUND: constant(uint256) = 2**64


event Requested:
    request_id: indexed(bytes32)
    requester: indexed(address)
    deadline: uint64
    paid: uint256

event Fulfilled:
    request_id: indexed(bytes32)
    result: Bytes[MAX_RESULT]

event Expired:
    request_id: indexed(bytes32)
    refunded: uint256


BUS: public(immutable(address))
AGENT: public(immutable(bytes32))
TTL: public(immutable(uint256))

# Per request, one slot: its deadline (a number below 2**64) while it waits, then the
# keccak256 of its result. A result costs one storage write, not a new slot.
state: public(HashMap[bytes32, bytes32])
payer: HashMap[bytes32, address]
paid: public(HashMap[bytes32, uint256])
# Per schedule of the Bus that names this consumer: the newest tick whose result it took.
last_tick: public(HashMap[uint256, uint256])


@deploy
def __init__(bus: address, agent: bytes32, ttl: uint256):
    BUS = bus
    AGENT = agent
    TTL = ttl


@payable
@external
@nonreentrant
def request(payload: Bytes[MAX_REQUEST]) -> bytes32:
    """
    @notice Ask the agent for work; what the sender pays is refunded if no result arrives by
            the deadline (`expire`).
    """
    request_id: bytes32 = extcall IBus(BUS).request(AGENT, payload, TTL)
    deadline: uint256 = block.number + TTL
    self.state[request_id] = convert(deadline, bytes32)
    if msg.value > 0:
        self.payer[request_id] = msg.sender
        self.paid[request_id] = msg.value
    log Requested(request_id=request_id, requester=msg.sender, deadline=convert(deadline, uint64), paid=msg.value)
    return request_id


@external
def fulfill(request_id: bytes32, result: Bytes[MAX_RESULT], signature: Bytes[65]):
    """
    @notice Deliver a result signed by the agent's contract key (its previous key within the
            Bus's window after a rotation). Anyone may relay it.
    """
    self._accept(request_id, keccak256(result), signature)
    log Fulfilled(request_id=request_id, result=result)


@external
def fulfill_batch(
    request_ids: DynArray[bytes32, MAX_BATCH],
    results: DynArray[Bytes[MAX_BATCH_RESULT], MAX_BATCH],
    signatures: DynArray[Bytes[65], MAX_BATCH],
):
    """
    @notice Up to ten results (of at most 1 KiB each) in one transaction; any invalid one
            reverts the batch.
    """
    assert len(request_ids) == len(results) and len(results) == len(signatures), "batch mismatch"
    for index: uint256 in range(MAX_BATCH):
        if index == len(request_ids):
            break
        self._accept(request_ids[index], keccak256(results[index]), signatures[index])
        log Fulfilled(request_id=request_ids[index], result=results[index])


@external
def fulfill_tick(schedule_id: uint256, height: uint256, result: Bytes[MAX_RESULT], signature: Bytes[65]):
    """
    @notice Deliver the result of a standing job (`Bus.schedule`) for its tick at `height`:
            signed like any result, for the request id `keccak256(abi_encode(chain.id, BUS,
            schedule_id, height))`. Only a tick newer than the last one taken counts.
    """
    self._take_tick(schedule_id, height, result, signature)


@internal
def _take_tick(schedule_id: uint256, height: uint256, result: Bytes[MAX_RESULT], signature: Bytes[65]):
    """The checks and bookkeeping of `fulfill_tick` (for contracts that use this module)."""
    standing: Schedule = staticcall IBus(BUS).schedules(schedule_id)
    assert standing.contract_id == AGENT and standing.consumer == self and standing.active, "not this consumer's schedule"
    start: uint256 = convert(standing.start, uint256)
    assert height > start and height <= block.number and (height - start) % convert(standing.every, uint256) == 0, "bad tick"
    assert height > self.last_tick[schedule_id], "stale tick"
    request_id: bytes32 = keccak256(abi_encode(chain.id, BUS, schedule_id, height))
    self.last_tick[schedule_id] = height
    self._check(request_id, keccak256(result), signature)
    self.state[request_id] = keccak256(result)
    log Fulfilled(request_id=request_id, result=result)


@external
@nonreentrant
def expire(request_id: bytes32):
    """
    @notice Anyone may close a request whose deadline passed without a result: its requester
            gets back what it paid.
    """
    waiting: uint256 = self._waiting(request_id)
    assert block.number > waiting, "not expired"
    self.state[request_id] = empty(bytes32)
    refund: uint256 = self.paid[request_id]
    self.paid[request_id] = 0
    log Expired(request_id=request_id, refunded=refund)
    if refund > 0:
        raw_call(self.payer[request_id], b"", value=refund)


@view
@external
def result_digest(request_id: bytes32, result_hash: bytes32) -> bytes32:
    return self._digest(request_id, result_hash)


@internal
@view
def _digest(request_id: bytes32, result_hash: bytes32) -> bytes32:
    return keccak256(abi_encode(RESULT_TAG, chain.id, self, request_id, result_hash))


@internal
@view
def _waiting(request_id: bytes32) -> uint256:
    """The deadline of a request that still waits for its result."""
    value: uint256 = convert(self.state[request_id], uint256)
    assert value != 0, "unknown request"
    assert value < PENDING_BOUND, "already fulfilled"
    return value


@internal
def _accept(request_id: bytes32, result_hash: bytes32, signature: Bytes[65]):
    deadline: uint256 = self._waiting(request_id)
    assert block.number <= deadline, "request expired"
    self._check(request_id, result_hash, signature)
    self.state[request_id] = result_hash


@internal
@view
def _check(request_id: bytes32, result_hash: bytes32, signature: Bytes[65]):
    """The agent's contract key (or its previous one, within the window) signed this result."""
    assert len(signature) == 65, "bad signature"
    r: uint256 = convert(extract32(signature, 0), uint256)
    s: uint256 = convert(extract32(signature, 32), uint256)
    v: uint256 = convert(slice(signature, 64, 1), uint256)
    assert s <= SECP256K1_HALF_N and (v == 27 or v == 28), "bad signature"
    signer: address = ecrecover(self._digest(request_id, result_hash), v, r, s)
    assert staticcall IBus(BUS).may_sign_results(AGENT, signer), "not the agent's key"
