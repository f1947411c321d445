# pragma version 0.4.3
# pragma evm-version cancun
"""
@title Veilnet Bus
@notice The agent contracts of a Veilnet network and the event pipe to and from them.
        Agent contracts are deployed here (into a cluster of the Registry, as its owner's
        deploy policy allows), paused, upgraded and handed over. `push_command` carries
        (normally encrypted) commands to them; `post` accepts egress messages signed
        (EIP-712) by an origin's registered key, exactly at the next sequence number of that
        origin: the first copy wins and later copies revert cheaply before any signature
        work. Worker identities post only while the Registry counts them eligible.
"""

interface IRegistry:
    def owner() -> address: view
    def origin_kind(origin: address) -> uint8: view
    def may_post(origin: address) -> bool: view
    def cluster_info(cluster_id: bytes32) -> (address, address, uint64): view
    def claim_origin(key_address: address): nonpayable
    def on_egress(origin: address, kind: uint8, topic: bytes32, payload: Bytes[32768]): nonpayable

interface IFeeHook:
    def on_command(sender: address, contract_id: bytes32, size: uint256): payable

MAX_PAYLOAD_BOUND: constant(uint256) = 32768
MAX_HPKE_KEY: constant(uint256) = 1216
MAX_CODE: constant(uint256) = 24576
MAX_INIT: constant(uint256) = 4096
# One `push_commands` carries up to MAX_COMMAND_BATCH commands of up to MAX_BATCHED_PAYLOAD
# bytes each: one transaction's overhead (signature, nonce, base gas) shared by them all. The
# bounds are small because Vyper reserves memory for the whole array (a 32 KiB item bound would
# cost millions of gas); MAX_BATCHED_PAYLOAD is under MIN_MAX_PAYLOAD, so every item fits the
# `max_payload` a single `push_command` enforces.
MAX_COMMAND_BATCH: constant(uint256) = 32
MAX_BATCHED_PAYLOAD: constant(uint256) = 2048
KIND_WORKER: constant(uint8) = 1
KIND_CLUSTER: constant(uint8) = 3
# Job requests from EVM contracts: a request's payload, and how many blocks it may wait for
# its result (the consumer's deadline: past it, the consumer refunds and refuses a result).
MAX_REQUEST: constant(uint256) = 4096
MAX_REQUEST_TTL: constant(uint256) = 7200
# Blocks a contract's previous key may still sign results once its next key landed: the
# enclave cores' default key window, so results signed just before a rotation still count.
RESULT_KEY_WINDOW: constant(uint256) = 200
# An agent's HTTPS egress allowlist: at most this many host names (DNS names stay under 254).
MAX_EGRESS_HOSTS: constant(uint256) = 16
MAX_HOST_NAME: constant(uint256) = 253
# The largest payload an enclave core emits (`limits.MAX_EGRESS_PAYLOAD`): a lower limit would
# make some signed message unpostable, and every later message of its origin a gap.
MIN_MAX_PAYLOAD: constant(uint256) = 8192
REGISTRY_GAS: constant(uint256) = 400000


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
TOPIC_AGENT_SCHEDULE: constant(bytes32) = keccak256("veil/egress/agent-schedule")
TOPIC_INIT_FAILED: constant(bytes32) = keccak256("veil/egress/init-failed")
MAX_ERROR_CODE: constant(uint256) = 64
# Not routed: a registrant's collateral, which unendorsed identities may post.
COLLATERAL: constant(bytes32) = keccak256("veil/egress/collateral")


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

event ContractDeployed:
    contract_id: indexed(bytes32)
    cluster_id: indexed(bytes32)
    owner: indexed(address)
    controller: address
    code_hash: bytes32
    code: Bytes[MAX_CODE]
    init_args: Bytes[MAX_INIT]

event ContractKeySet:
    contract_id: indexed(bytes32)
    epoch: uint64
    key_address: indexed(address)
    public_key: Bytes[MAX_HPKE_KEY]

event ContractPaused:
    contract_id: indexed(bytes32)
    paused: bool
    by: indexed(address)

event ContractUpgraded:
    contract_id: indexed(bytes32)
    code_hash: bytes32
    code: Bytes[MAX_CODE]

event ContractOwnerChanged:
    contract_id: indexed(bytes32)
    owner: indexed(address)

event ContractControllerChanged:
    contract_id: indexed(bytes32)
    controller: indexed(address)

event ContractInitFailed:
    contract_id: indexed(bytes32)
    code: String[MAX_ERROR_CODE]

event DeployPolicySet:
    cluster_id: indexed(bytes32)
    deployer: indexed(address)
    allowed: bool

event JobRequested:
    contract_id: indexed(bytes32)
    request_id: indexed(bytes32)
    consumer: indexed(address)
    deadline: uint64
    payload: Bytes[MAX_REQUEST]

event JobScheduled:
    contract_id: indexed(bytes32)
    schedule_id: indexed(uint256)
    consumer: indexed(address)
    every: uint64
    start: uint64
    payload: Bytes[MAX_REQUEST]

event ScheduleCancelled:
    contract_id: indexed(bytes32)
    schedule_id: indexed(uint256)

event EgressHostSet:
    contract_id: indexed(bytes32)
    host: String[MAX_HOST_NAME]
    allowed: bool


struct Schedule:
    contract_id: bytes32
    consumer: address
    every: uint64
    start: uint64
    active: bool


struct AgentContract:
    cluster: bytes32
    code_hash: bytes32
    owner: address
    controller: address
    key_epoch: uint64
    key_address: address
    key_hash: bytes32
    key_block: uint64
    paused: bool


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
contracts: public(HashMap[bytes32, AgentContract])
# A contract's owner hands it over in two steps: an offer, then the new owner's acceptance.
pending_contract_owner: public(HashMap[bytes32, address])
# Who may deploy agents into a cluster, as its owner chose: anyone while it is open (the
# default); while it is closed, the owner and the deployers it allowed.
deploy_closed: public(HashMap[bytes32, bool])
deployers: public(HashMap[bytes32, HashMap[address, bool]])
# Each consumer's next request number: request ids derive from (chain, Bus, consumer, number),
# so a reorg that drops a request cannot give its id to another.
request_nonce: public(HashMap[address, uint64])
# Standing jobs: every `every` blocks after `start`, the agent's workers run its job with the
# schedule's payload and deliver the result to `consumer` (`VeilConsumer.fulfill_tick`).
schedules: public(HashMap[uint256, Schedule])
schedule_count: public(uint256)
# A contract's previous key and the block until which it may still sign results.
retired_key: public(HashMap[bytes32, address])
retired_until: public(HashMap[bytes32, uint256])
# The host names an agent's `http.fetch` may reach (by keccak256 of the name), and how many.
egress_hosts: public(HashMap[bytes32, HashMap[bytes32, bool]])
egress_host_count: public(HashMap[bytes32, uint256])


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
    assert not self.contracts[contract_id].paused, "contract paused"
    assert self.contracts[contract_id].owner != empty(address), "unknown contract"
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


@payable
@external
@nonreentrant
def push_commands(
    contract_id: bytes32, payloads: DynArray[Bytes[MAX_BATCHED_PAYLOAD], MAX_COMMAND_BATCH]
) -> uint64:
    """
    @notice `push_command` for several commands of one sender to one contract: one
            transaction for them all, each a `Command` under the next seq, in their order; the
            first seq is returned. Each pays `command_fee` (to the hook one by one, as
            `push_command` does); anything paid above their sum goes back to the sender. All
            are recorded before any external call.
    """
    count: uint256 = len(payloads)
    assert count > 0, "no commands"
    assert not self.contracts[contract_id].paused, "contract paused"
    assert self.contracts[contract_id].owner != empty(address), "unknown contract"
    fee: uint256 = self.command_fee
    assert msg.value >= fee * count, "fee too low"
    first: uint64 = self.command_seq[contract_id]
    for i: uint256 in range(count, bound=MAX_COMMAND_BATCH):
        seq: uint64 = first + convert(i, uint64)
        log Command(contract_id=contract_id, seq=seq, sender=msg.sender, payload=payloads[i])
    self.command_seq[contract_id] = first + convert(count, uint64)
    hook: address = self.fee_hook
    if hook != empty(address):
        for i: uint256 in range(count, bound=MAX_COMMAND_BATCH):
            extcall IFeeHook(hook).on_command(msg.sender, contract_id, len(payloads[i]), value=fee)
    if msg.value > fee * count:
        raw_call(msg.sender, b"", value=msg.value - fee * count)
    return first


# --- agent contracts --------------------------------------------------------------------

@view
@external
def contract_id_for(owner: address, salt: bytes32) -> bytes32:
    return keccak256(abi_encode(owner, salt))


@external
def deploy_contract(
    salt: bytes32,
    cluster_id: bytes32,
    controller: address,
    code: Bytes[MAX_CODE],
    init_args: Bytes[MAX_INIT],
) -> bytes32:
    """
    @notice Deploys an agent into a cluster whose policy lets the sender. The id is derived
            from the sender and a salt, so nobody can take another's id. `init_args` is opaque
            (normally encrypted to the cluster key); `code` is public.
    """
    cluster_owner: address = self._cluster_owner(cluster_id)
    assert (
        not self.deploy_closed[cluster_id]
        or msg.sender == cluster_owner
        or self.deployers[cluster_id][msg.sender]
    ), "deploy not allowed"
    contract_id: bytes32 = keccak256(abi_encode(msg.sender, salt))
    assert self.contracts[contract_id].owner == empty(address), "contract exists"
    code_hash: bytes32 = keccak256(code)
    self.contracts[contract_id].cluster = cluster_id
    self.contracts[contract_id].code_hash = code_hash
    self.contracts[contract_id].owner = msg.sender
    self.contracts[contract_id].controller = controller
    log ContractDeployed(
        contract_id=contract_id,
        cluster_id=cluster_id,
        owner=msg.sender,
        controller=controller,
        code_hash=code_hash,
        code=code,
        init_args=init_args,
    )
    return contract_id


@internal
@view
def _cluster_owner(cluster_id: bytes32) -> address:
    owner: address = empty(address)
    key_address: address = empty(address)
    epoch: uint64 = 0
    owner, key_address, epoch = staticcall IRegistry(registry).cluster_info(cluster_id)
    assert owner != empty(address), "unknown cluster"
    return owner


@external
def set_deploy_policy(cluster_id: bytes32, deployer: address, allowed: bool):
    """
    @notice The cluster owner's consent to deployments. For the zero address: whether the
            cluster is open to anyone (the default) or closed; for another address: whether
            that deployer may deploy while the cluster is closed.
    """
    assert self._cluster_owner(cluster_id) == msg.sender, "not cluster owner"
    if deployer == empty(address):
        self.deploy_closed[cluster_id] = not allowed
    else:
        self.deployers[cluster_id][deployer] = allowed
    log DeployPolicySet(cluster_id=cluster_id, deployer=deployer, allowed=allowed)


@internal
@view
def _check_control(contract_id: bytes32):
    owner: address = self.contracts[contract_id].owner
    assert owner != empty(address), "unknown contract"
    assert msg.sender == owner or msg.sender == self.contracts[contract_id].controller, "not owner or controller"


@external
def set_paused(contract_id: bytes32, paused: bool):
    self._check_control(contract_id)
    self.contracts[contract_id].paused = paused
    log ContractPaused(contract_id=contract_id, paused=paused, by=msg.sender)


@external
def upgrade_contract(contract_id: bytes32, code: Bytes[MAX_CODE]):
    self._check_control(contract_id)
    code_hash: bytes32 = keccak256(code)
    self.contracts[contract_id].code_hash = code_hash
    log ContractUpgraded(contract_id=contract_id, code_hash=code_hash, code=code)


@external
def transfer_contract(contract_id: bytes32, new_owner: address):
    """
    @notice The owner (never the controller) offers the contract to `new_owner`, which takes
            it with `accept_contract`; offering to the zero address withdraws the offer.
    """
    assert self.contracts[contract_id].owner == msg.sender, "not owner"
    self.pending_contract_owner[contract_id] = new_owner


@external
def accept_contract(contract_id: bytes32):
    assert self.pending_contract_owner[contract_id] == msg.sender, "not pending owner"
    self.pending_contract_owner[contract_id] = empty(address)
    self.contracts[contract_id].owner = msg.sender
    log ContractOwnerChanged(contract_id=contract_id, owner=msg.sender)


@external
def set_controller(contract_id: bytes32, controller: address):
    assert self.contracts[contract_id].owner == msg.sender, "not owner"
    self.contracts[contract_id].controller = controller
    log ContractControllerChanged(contract_id=contract_id, controller=controller)


@external
def on_egress(origin: address, kind: uint8, topic: bytes32, payload: Bytes[MAX_PAYLOAD_BOUND]):
    """
    @notice A contract's key for its cluster's current epoch, or a standing job its agent set
            or ended, posted by that cluster's key. Called by the Bus itself from `post`, so
            that a refusal (a revert here) leaves the message posted and the origin's sequence
            advanced, as for the Registry's topics.
    """
    assert msg.sender == self, "only bus"
    assert kind == KIND_CLUSTER, "wrong origin"
    if topic == TOPIC_AGENT_SCHEDULE:
        self._agent_schedule(origin, payload)
        return
    if topic == TOPIC_INIT_FAILED:
        self._init_failed(origin, payload)
        return
    contract_id: bytes32 = empty(bytes32)
    epoch: uint64 = 0
    key_address: address = empty(address)
    public_key: Bytes[MAX_HPKE_KEY] = b""
    contract_id, epoch, key_address, public_key = abi_decode(
        payload, (bytes32, uint64, address, Bytes[MAX_HPKE_KEY])
    )
    assert self.contracts[contract_id].owner != empty(address), "unknown contract"
    cluster_owner: address = empty(address)
    cluster_key: address = empty(address)
    cluster_epoch: uint64 = 0
    cluster_owner, cluster_key, cluster_epoch = staticcall IRegistry(registry).cluster_info(
        self.contracts[contract_id].cluster
    )
    assert cluster_key == origin, "not the cluster key"
    assert epoch == cluster_epoch, "wrong epoch"
    assert epoch > self.contracts[contract_id].key_epoch, "stale epoch"
    extcall IRegistry(registry).claim_origin(key_address)
    previous: address = self.contracts[contract_id].key_address
    if previous != empty(address):
        self.retired_key[contract_id] = previous
        self.retired_until[contract_id] = block.number + RESULT_KEY_WINDOW
    self.contracts[contract_id].key_epoch = epoch
    self.contracts[contract_id].key_address = key_address
    self.contracts[contract_id].key_hash = keccak256(public_key)
    self.contracts[contract_id].key_block = convert(block.number, uint64)
    log ContractKeySet(contract_id=contract_id, epoch=epoch, key_address=key_address, public_key=public_key)


# --- jobs and results -------------------------------------------------------------------

@external
def request(contract_id: bytes32, payload: Bytes[MAX_REQUEST], ttl: uint256) -> bytes32:
    """
    @notice An EVM contract (the consumer) asks an agent for work: its workers run the agent's
            `job` entry point and sign the result with the contract's key, which the consumer
            checks with `may_sign_results`. Returns the request id; the result is due within
            `ttl` blocks (1 to MAX_REQUEST_TTL).
    """
    assert self.contracts[contract_id].owner != empty(address), "unknown contract"
    assert not self.contracts[contract_id].paused, "contract paused"
    assert ttl > 0 and ttl <= MAX_REQUEST_TTL, "bad ttl"
    nonce: uint64 = self.request_nonce[msg.sender]
    self.request_nonce[msg.sender] = nonce + 1
    request_id: bytes32 = keccak256(abi_encode(chain.id, self, msg.sender, nonce))
    deadline: uint64 = convert(block.number + ttl, uint64)
    log JobRequested(
        contract_id=contract_id, request_id=request_id, consumer=msg.sender, deadline=deadline, payload=payload
    )
    return request_id


@internal
def _agent_schedule(origin: address, payload: Bytes[MAX_PAYLOAD_BOUND]):
    """
    @notice An agent's own `jobs.schedule` / `jobs.cancel`, carried out by its cluster: a new
            standing job (`cancel_id` 0) or the end of one of its own.
    """
    contract_id: bytes32 = empty(bytes32)
    cancel_id: uint256 = 0
    consumer: address = empty(address)
    every: uint64 = 0
    job: Bytes[MAX_REQUEST] = b""
    contract_id, cancel_id, consumer, every, job = abi_decode(
        payload, (bytes32, uint256, address, uint64, Bytes[MAX_REQUEST])
    )
    self._check_cluster_key(contract_id, origin)
    if cancel_id == 0:
        self._schedule(contract_id, consumer, every, job)
        return
    assert self.schedules[cancel_id].active, "no such schedule"
    assert self.schedules[cancel_id].contract_id == contract_id, "not this agent's"
    self.schedules[cancel_id].active = False
    log ScheduleCancelled(contract_id=contract_id, schedule_id=cancel_id)


@internal
def _check_cluster_key(contract_id: bytes32, origin: address):
    """
    @notice What an agent's cluster may post about it comes from that cluster's current key.
    """
    assert self.contracts[contract_id].owner != empty(address), "unknown contract"
    cluster_key: address = empty(address)
    cluster_owner: address = empty(address)
    cluster_epoch: uint64 = 0
    cluster_owner, cluster_key, cluster_epoch = staticcall IRegistry(registry).cluster_info(
        self.contracts[contract_id].cluster
    )
    assert cluster_key == origin, "not the cluster key"


@internal
def _init_failed(origin: address, payload: Bytes[MAX_PAYLOAD_BOUND]):
    """
    @notice The agent's `init` failed on its workers (posted by its cluster's key): the agent is
            paused, so it takes no command on a state its `init` never made, and the event says
            why (an error code; its owner reads the message with an outcome query). The owner
            may upgrade and resume it.
    """
    contract_id: bytes32 = empty(bytes32)
    code: String[MAX_ERROR_CODE] = ""
    contract_id, code = abi_decode(payload, (bytes32, String[MAX_ERROR_CODE]))
    self._check_cluster_key(contract_id, origin)
    self.contracts[contract_id].paused = True
    log ContractPaused(contract_id=contract_id, paused=True, by=origin)
    log ContractInitFailed(contract_id=contract_id, code=code)


@external
def schedule(contract_id: bytes32, consumer: address, every: uint64, payload: Bytes[MAX_REQUEST]) -> uint256:
    """
    @notice The agent's owner sets a standing job: every `every` blocks (1 or more) from now,
            the agent's workers run its job with `payload` and deliver the signed result to
            `consumer`. Returns the schedule's id (numbered from 1). An agent may also set
            its own (`jobs.schedule`, carried out through its cluster's egress).
    """
    assert self.contracts[contract_id].owner == msg.sender, "not owner"
    return self._schedule(contract_id, consumer, every, payload)


@internal
def _schedule(contract_id: bytes32, consumer: address, every: uint64, payload: Bytes[MAX_REQUEST]) -> uint256:
    assert every > 0, "bad interval"
    assert consumer != empty(address), "zero address"
    schedule_id: uint256 = self.schedule_count + 1
    self.schedule_count = schedule_id
    start: uint64 = convert(block.number, uint64)
    self.schedules[schedule_id] = Schedule(
        contract_id=contract_id, consumer=consumer, every=every, start=start, active=True
    )
    log JobScheduled(
        contract_id=contract_id,
        schedule_id=schedule_id,
        consumer=consumer,
        every=every,
        start=start,
        payload=payload,
    )
    return schedule_id


@external
def cancel_schedule(schedule_id: uint256):
    contract_id: bytes32 = self.schedules[schedule_id].contract_id
    assert self.schedules[schedule_id].active, "no such schedule"
    assert self.contracts[contract_id].owner == msg.sender, "not owner"
    self.schedules[schedule_id].active = False
    log ScheduleCancelled(contract_id=contract_id, schedule_id=schedule_id)


@external
def set_egress(contract_id: bytes32, host: String[MAX_HOST_NAME], allowed: bool):
    """
    @notice The agent's owner lets its `http.fetch` reach `host` (a lower-case DNS name or IP
            address, any port), or takes that back. Default deny; at most MAX_EGRESS_HOSTS
            names. The workers enforce the list inside the enclave.
    """
    assert self.contracts[contract_id].owner == msg.sender, "not owner"
    assert len(host) > 0, "empty host"
    key: bytes32 = keccak256(host)
    if self.egress_hosts[contract_id][key] == allowed:
        return
    count: uint256 = self.egress_host_count[contract_id]
    if allowed:
        assert count < MAX_EGRESS_HOSTS, "too many hosts"
        count += 1
    else:
        count -= 1
    self.egress_hosts[contract_id][key] = allowed
    self.egress_host_count[contract_id] = count
    log EgressHostSet(contract_id=contract_id, host=host, allowed=allowed)


@view
@external
def may_sign_results(contract_id: bytes32, signer: address) -> bool:
    """
    @notice Whether `signer` is the agent's current contract key, or its previous one within
            RESULT_KEY_WINDOW blocks of the rotation: what a consumer checks before it takes a
            result.
    """
    if signer == empty(address):
        return False
    if signer == self.contracts[contract_id].key_address:
        return True
    return signer == self.retired_key[contract_id] and block.number <= self.retired_until[contract_id]


# --- egress -----------------------------------------------------------------------------

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
    # Every core reads what workers post: from an identity the Registry does not let post (no
    # endorsement, or none any more) only its collateral, which gatekeepers need to judge it,
    # gets through. Anything else uses its sequence number (so nothing it posts can ever block
    # it) and is logged as rejected, without its payload.
    if kind == KIND_WORKER and topic != COLLATERAL:
        if not staticcall IRegistry(registry).may_post(origin):
            log EgressRejected(origin=origin, seq=seq, topic=topic)
            return
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
        or topic == TOPIC_AGENT_SCHEDULE
        or topic == TOPIC_INIT_FAILED
    ):
        # Forward enough gas that a relayer cannot starve the registry call on purpose.
        assert msg.gas >= REGISTRY_GAS * 64 // 63 + 10000, "out of gas"
        target: address = registry
        if topic == TOPIC_CONTRACT_KEY or topic == TOPIC_AGENT_SCHEDULE or topic == TOPIC_INIT_FAILED:
            target = self  # agent contracts live here
        ok: bool = raw_call(
            target,
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
