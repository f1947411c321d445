// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Veilnet consumer (Solidity)
/// @notice The same contract as VeilConsumer.vy, with the same ABI and the same reverts, for
///         DApps written in Solidity: ask one Veilnet agent for work through the Bus and take
///         only results its workers signed with the agent's contract key. Inherit it and
///         override `_onResult` to act on a result.
interface IVeilBus {
    function request(bytes32 contractId, bytes calldata payload, uint256 ttl) external returns (bytes32);

    function may_sign_results(bytes32 contractId, address signer) external view returns (bool);

    function schedules(uint256 scheduleId)
        external
        view
        returns (bytes32 contractId, address consumer, uint64 every, uint64 start, bool active);
}

contract VeilConsumer {
    uint256 private constant MAX_REQUEST = 4096;
    uint256 private constant MAX_RESULT = 32768;
    uint256 private constant MAX_BATCH = 10;
    uint256 private constant MAX_BATCH_RESULT = 1024;
    // What an agent's key signs: keccak256(abi.encode(RESULT_TAG, chainid, consumer, request,
    // keccak256(result))), so a result answers one request of one consumer on one chain.
    bytes32 private constant RESULT_TAG = keccak256("veil/job-result");
    uint256 private constant SECP256K1_HALF_N =
        57896044618658097711785492504343953926418782139537452191302581570759080747168;
    uint256 private constant PENDING_BOUND = 2 ** 64;

    event Requested(bytes32 indexed request_id, address indexed requester, uint64 deadline, uint256 paid);
    event Fulfilled(bytes32 indexed request_id, bytes result);
    event Expired(bytes32 indexed request_id, uint256 refunded);

    address public immutable BUS;
    bytes32 public immutable AGENT;
    uint256 public immutable TTL;

    /// Per request, one slot: its deadline (below 2**64) while it waits, then the keccak256
    /// of its result.
    mapping(bytes32 => bytes32) public state;
    mapping(bytes32 => address) private payer;
    mapping(bytes32 => uint256) public paid;
    /// Per schedule of the Bus that names this consumer: the newest tick whose result it took.
    mapping(uint256 => uint256) public last_tick;
    uint256 private locked = 1;

    modifier nonReentrant() {
        require(locked == 1, "nonreentrant lock");
        locked = 2;
        _;
        locked = 1;
    }

    constructor(address bus, bytes32 agent, uint256 ttl) {
        BUS = bus;
        AGENT = agent;
        TTL = ttl;
    }

    /// @notice Ask the agent for work; what the sender pays is refunded if no result arrives
    ///         by the deadline (`expire`).
    function request(bytes calldata payload) external payable nonReentrant returns (bytes32) {
        require(payload.length <= MAX_REQUEST);
        bytes32 requestId = IVeilBus(BUS).request(AGENT, payload, TTL);
        uint256 deadline = block.number + TTL;
        state[requestId] = bytes32(deadline);
        if (msg.value > 0) {
            payer[requestId] = msg.sender;
            paid[requestId] = msg.value;
        }
        emit Requested(requestId, msg.sender, uint64(deadline), msg.value);
        return requestId;
    }

    /// @notice Deliver a result signed by the agent's contract key (its previous key within
    ///         the Bus's window after a rotation). Anyone may relay it.
    function fulfill(bytes32 request_id, bytes calldata result, bytes calldata signature) external {
        require(result.length <= MAX_RESULT);
        _accept(request_id, keccak256(result), signature);
        emit Fulfilled(request_id, result);
        _onResult(request_id, result);
    }

    /// @notice Up to ten results (of at most 1 KiB each) in one transaction; any invalid one
    ///         reverts the batch.
    function fulfill_batch(
        bytes32[] calldata request_ids,
        bytes[] calldata results,
        bytes[] calldata signatures
    ) external {
        require(request_ids.length <= MAX_BATCH);
        require(request_ids.length == results.length && results.length == signatures.length, "batch mismatch");
        for (uint256 i = 0; i < request_ids.length; i++) {
            require(results[i].length <= MAX_BATCH_RESULT);
            _accept(request_ids[i], keccak256(results[i]), signatures[i]);
            emit Fulfilled(request_ids[i], results[i]);
            _onResult(request_ids[i], results[i]);
        }
    }

    /// @notice Deliver the result of a standing job (`Bus.schedule`) for its tick at
    ///         `height`, signed for the request id keccak256(abi.encode(chainid, BUS,
    ///         schedule_id, height)). Only a tick newer than the last one taken counts.
    function fulfill_tick(uint256 schedule_id, uint256 height, bytes calldata result, bytes calldata signature)
        external
    {
        require(result.length <= MAX_RESULT);
        (bytes32 agent, address target, uint64 every, uint64 start, bool active) = IVeilBus(BUS).schedules(schedule_id);
        require(agent == AGENT && target == address(this) && active, "not this consumer's schedule");
        require(height > start && height <= block.number && (height - start) % every == 0, "bad tick");
        require(height > last_tick[schedule_id], "stale tick");
        bytes32 requestId = keccak256(abi.encode(block.chainid, BUS, schedule_id, height));
        last_tick[schedule_id] = height;
        _check(requestId, keccak256(result), signature);
        state[requestId] = keccak256(result);
        emit Fulfilled(requestId, result);
        _onResult(requestId, result);
    }

    /// @notice Anyone may close a request whose deadline passed without a result: its
    ///         requester gets back what it paid.
    function expire(bytes32 request_id) external nonReentrant {
        uint256 deadline = _waiting(request_id);
        require(block.number > deadline, "not expired");
        state[request_id] = bytes32(0);
        uint256 refund = paid[request_id];
        paid[request_id] = 0;
        emit Expired(request_id, refund);
        if (refund > 0) {
            (bool ok,) = payer[request_id].call{value: refund}("");
            require(ok, "refund failed");
        }
    }

    function result_digest(bytes32 request_id, bytes32 result_hash) public view returns (bytes32) {
        return keccak256(abi.encode(RESULT_TAG, block.chainid, address(this), request_id, result_hash));
    }

    /// @dev Override to act on a result (it is already checked and recorded).
    function _onResult(bytes32 request_id, bytes calldata result) internal virtual {}

    function _waiting(bytes32 request_id) private view returns (uint256) {
        uint256 value = uint256(state[request_id]);
        require(value != 0, "unknown request");
        require(value < PENDING_BOUND, "already fulfilled");
        return value;
    }

    function _accept(bytes32 request_id, bytes32 result_hash, bytes calldata signature) private {
        uint256 deadline = _waiting(request_id);
        require(block.number <= deadline, "request expired");
        _check(request_id, result_hash, signature);
        state[request_id] = result_hash;
    }

    function _check(bytes32 request_id, bytes32 result_hash, bytes calldata signature) private view {
        require(signature.length == 65, "bad signature");
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        require(uint256(s) <= SECP256K1_HALF_N && (v == 27 || v == 28), "bad signature");
        address signer = ecrecover(result_digest(request_id, result_hash), v, r, s);
        require(IVeilBus(BUS).may_sign_results(AGENT, signer), "not the agent's key");
    }
}
