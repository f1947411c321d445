# pragma version 0.4.3
# pragma evm-version cancun
"""
@title Veilnet Bus
@notice The event pipe of a Veilnet network. `push_command` carries (normally encrypted)
        commands to agent contracts; `post` accepts egress messages signed (EIP-712) by an
        origin's registered key, exactly at the next sequence number of that origin: the
        first copy wins and later copies revert cheaply before any signature work.
"""

interface IRegistry:
    def owner() -> address: view
    def origin_kind(origin: address) -> uint8: view
    def contract_status(contract_id: bytes32) -> uint8: view
    def on_egress(origin: address, kind: uint8, topic: bytes32, payload: Bytes[32768]): nonpayable

interface IFeeHook:
    def on_command(sender: address, contract_id: bytes32, size: uint256): payable

MAX_PAYLOAD_BOUND: constant(uint256) = 32768
# The largest payload an enclave core emits (`limits.MAX_EGRESS_PAYLOAD`): a lower limit would
# make some signed message unpostable, and every later message of its origin a gap.
MIN_MAX_PAYLOAD: constant(uint256) = 8192
REGISTRY_GAS: constant(uint256) = 400000

STATUS_ACTIVE: constant(uint8) = 1
STATUS_PAUSED: constant(uint8) = 2

DOMAIN_TYPEHASH: constant(bytes32) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
EGRESS_TYPEHASH: public(constant(bytes32)) = keccak256(
    "Egress(address origin,uint64 seq,bytes32 topic,bytes payload)"
)
SECP256K1_HALF_N: constant(uint256) = 57896044618658097711785492504343953926418782139537452191302581570759080747168

TOPIC_MASTER_KEY: constant(bytes32) = keccak256("veil/egress/master-key")
TOPIC_ENDORSE: constant(bytes32) = keccak256("veil/egress/endorse")
TOPIC_CLUSTER_KEY: constant(bytes32) = keccak256("veil/egress/cluster-key")
TOPIC_CONTRACT_KEY: constant(bytes32) = keccak256("veil/egress/contract-key")
TOPIC_ROTATION_PROPOSE: constant(bytes32) = keccak256("veil/egress/rotation-propose")
TOPIC_ROTATION_CONFIRM: constant(bytes32) = keccak256("veil/egress/rotation-confirm")
TOPIC_HEARTBEAT: constant(bytes32) = keccak256("veil/egress/heartbeat")
TOPIC_STATE_COMMITMENT: constant(bytes32) = keccak256("veil/egress/state-commitment")
TOPIC_WORKER_KEY: constant(bytes32) = keccak256("veil/egress/worker-key")


event Command:
    contract_id: indexed(bytes32)
    seq: uint64
    sender: indexed(address)
    payload: Bytes[MAX_PAYLOAD_BOUND]

event Egress:
    origin: indexed(address)
    seq: uint64
    topic: indexed(bytes32)
    payload: Bytes[MAX_PAYLOAD_BOUND]

event EgressRejected:
    origin: indexed(address)
    seq: uint64
    topic: indexed(bytes32)

event ParamsChanged:
    max_payload: uint256
    command_fee: uint256
    fee_hook: address

event FeesWithdrawn:
    to: indexed(address)
    amount: uint256


registry: public(immutable(address))
# The EIP-712 domain as of deployment, and the chain id it was computed for: after a fork that
# changes `chain.id` the domain is computed afresh, so signatures do not replay across forks.
CACHED_CHAIN_ID: immutable(uint256)
CACHED_DOMAIN: immutable(bytes32)
next_seq: public(HashMap[address, uint64])
command_seq: public(HashMap[bytes32, uint64])
max_payload: public(uint256)
command_fee: public(uint256)
fee_hook: public(address)


@deploy
def __init__(registry_address: address, max_payload: uint256):
    assert max_payload <= MAX_PAYLOAD_BOUND, "payload too big"
    assert max_payload >= MIN_MAX_PAYLOAD, "payload limit too small"
    registry = registry_address
    CACHED_CHAIN_ID = chain.id
    CACHED_DOMAIN = self._domain_for(chain.id)
    self.max_payload = max_payload


@internal
@view
def _domain_for(chain_id: uint256) -> bytes32:
    return keccak256(abi_encode(DOMAIN_TYPEHASH, keccak256("Veilnet"), keccak256("1"), chain_id, self))


@internal
@view
def _domain() -> bytes32:
    if chain.id == CACHED_CHAIN_ID:
        return CACHED_DOMAIN
    return self._domain_for(chain.id)


@view
@external
def DOMAIN_SEPARATOR() -> bytes32:
    return self._domain()


@external
def set_params(max_payload: uint256, command_fee: uint256, fee_hook: address):
    assert msg.sender == staticcall IRegistry(registry).owner(), "ownable: caller is not the owner"
    assert max_payload <= MAX_PAYLOAD_BOUND, "payload too big"
    assert max_payload >= MIN_MAX_PAYLOAD, "payload limit too small"
    # a hook without code would take every command's fee and make each one revert
    assert fee_hook == empty(address) or fee_hook.is_contract, "fee hook has no code"
    self.max_payload = max_payload
    self.command_fee = command_fee
    self.fee_hook = fee_hook
    log ParamsChanged(max_payload=max_payload, command_fee=command_fee, fee_hook=fee_hook)


@external
@nonreentrant
def withdraw_fees(to: address):
    """
    @notice Governance: send the fees the Bus holds to `to` (a multisig is fine: the call
            forwards all gas, unlike `send`).
    """
    assert msg.sender == staticcall IRegistry(registry).owner(), "ownable: caller is not the owner"
    assert to != empty(address), "zero address"
    amount: uint256 = self.balance
    raw_call(to, b"", value=amount)
    log FeesWithdrawn(to=to, amount=amount)


@payable
@external
@nonreentrant
def push_command(contract_id: bytes32, payload: Bytes[MAX_PAYLOAD_BOUND]) -> uint64:
    """
    @notice One fee rule: `command_fee`, hook or not. The command is recorded before any
            external call; the fee goes to the hook if one is set (else it stays here for
            `withdraw_fees`), and anything paid above it goes back to the sender.
    """
    assert len(payload) <= self.max_payload, "payload too big"
    status: uint8 = staticcall IRegistry(registry).contract_status(contract_id)
    assert status != STATUS_PAUSED, "contract paused"
    assert status == STATUS_ACTIVE, "unknown contract"
    fee: uint256 = self.command_fee
    assert msg.value >= fee, "fee too low"
    seq: uint64 = self.command_seq[contract_id]
    self.command_seq[contract_id] = seq + 1
    log Command(contract_id=contract_id, seq=seq, sender=msg.sender, payload=payload)
    hook: address = self.fee_hook
    if hook != empty(address):
        extcall IFeeHook(hook).on_command(msg.sender, contract_id, len(payload), value=fee)
    if msg.value > fee:
        raw_call(msg.sender, b"", value=msg.value - fee)
    return seq


@view
@external
def egress_digest(origin: address, seq: uint64, topic: bytes32, payload: Bytes[MAX_PAYLOAD_BOUND]) -> bytes32:
    return self._digest(origin, seq, topic, payload)


@internal
@view
def _digest(origin: address, seq: uint64, topic: bytes32, payload: Bytes[MAX_PAYLOAD_BOUND]) -> bytes32:
    struct_hash: bytes32 = keccak256(abi_encode(EGRESS_TYPEHASH, origin, seq, topic, keccak256(payload)))
    return keccak256(concat(x"1901", self._domain(), struct_hash))


@view
@external
def recover(digest: bytes32, sig: Bytes[65]) -> address:
    return self._recover(digest, sig)


@internal
@pure
def _recover(digest: bytes32, sig: Bytes[65]) -> address:
    assert len(sig) == 65, "bad signature"
    r: uint256 = convert(extract32(sig, 0), uint256)
    s: uint256 = convert(extract32(sig, 32), uint256)
    v: uint256 = convert(slice(sig, 64, 1), uint256)
    assert s <= SECP256K1_HALF_N, "bad signature"
    assert v == 27 or v == 28, "bad signature"
    return ecrecover(digest, v, r, s)


@external
def post(origin: address, seq: uint64, topic: bytes32, payload: Bytes[MAX_PAYLOAD_BOUND], sig: Bytes[65]):
    expected: uint64 = self.next_seq[origin]
    if seq < expected and topic == TOPIC_HEARTBEAT:
        self._duplicate_heartbeat(origin, seq, payload, sig)
        return
    assert seq >= expected, "sequence already used"
    assert seq == expected, "sequence gap"
    assert len(payload) <= self.max_payload, "payload too big"
    kind: uint8 = staticcall IRegistry(registry).origin_kind(origin)
    assert kind != 0, "unknown origin"
    signer: address = self._recover(self._digest(origin, seq, topic, payload), sig)
    assert signer == origin and signer != empty(address), "wrong signer"
    self.next_seq[origin] = seq + 1
    log Egress(origin=origin, seq=seq, topic=topic, payload=payload)
    if (
        topic == TOPIC_ENDORSE
        or topic == TOPIC_MASTER_KEY
        or topic == TOPIC_CLUSTER_KEY
        or topic == TOPIC_CONTRACT_KEY
        or topic == TOPIC_ROTATION_PROPOSE
        or topic == TOPIC_ROTATION_CONFIRM
        or topic == TOPIC_HEARTBEAT
        or topic == TOPIC_STATE_COMMITMENT
        or topic == TOPIC_WORKER_KEY
    ):
        # Forward enough gas that a relayer cannot starve the registry call on purpose.
        assert msg.gas >= REGISTRY_GAS * 64 // 63 + 10000, "out of gas"
        ok: bool = raw_call(
            registry,
            abi_encode(origin, kind, topic, payload, method_id=method_id("on_egress(address,uint8,bytes32,bytes)")),
            gas=REGISTRY_GAS,
            revert_on_failure=False,
        )
        if not ok:
            log EgressRejected(origin=origin, seq=seq, topic=topic)


@internal
def _duplicate_heartbeat(origin: address, seq: uint64, payload: Bytes[MAX_PAYLOAD_BOUND], sig: Bytes[65]):
    """
    @notice A second heartbeat signed for a sequence number already used: two copies of one
            identity emit the same numbered stream, so only this path lets the Registry see
            both. It consumes nothing and reverts unless the Registry records it.
    """
    assert len(payload) <= self.max_payload, "payload too big"
    kind: uint8 = staticcall IRegistry(registry).origin_kind(origin)
    assert kind != 0, "unknown origin"
    signer: address = self._recover(self._digest(origin, seq, TOPIC_HEARTBEAT, payload), sig)
    assert signer == origin and signer != empty(address), "wrong signer"
    extcall IRegistry(registry).on_egress(origin, kind, TOPIC_HEARTBEAT, payload)
