"""EVM contracts that take an agent's results: ``Bus.request`` and ``VeilConsumer`` (the Vyper
contract and its Solidity twin) on the embedded chain and anvil. Only the agent's contract key (or its previous one, within the
window) signs a result; replays, expired requests and foreign signers are refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from eth_hash.auto import keccak

from veilnet.chain import ContractReverted
from veilnet.chain.artifacts import load_artifact
from veilnet.chain.consumer import Consumer, deploy_consumer
from veilnet.chain.follower import Follower
from veilnet.chain.interfaces import ChainBackend
from veilnet.chain.model import JobRequested
from veilnet.chain.solidity import compile_solidity
from veilnet.chain.testing import KeyedAgent, keyed_agent
from veilnet.crypto import SecretKey
from veilnet.protocol.results import result_digest
from veilnet.testing import require_tool

RESULT_KEY_WINDOW = 200
"""``Bus.vy``'s window for a rotated-out contract key (the cores' default key window)."""


@pytest.fixture
def agent(any_backend: ChainBackend) -> KeyedAgent:
    """A keyed agent on the embedded chain, then on anvil (``any_backend``)."""
    return keyed_agent(any_backend)


@pytest.fixture(scope="module")
def solidity_consumer() -> bytes:
    require_tool("solc")
    return bytes(compile_solidity("VeilConsumer")["bytecode"])


@pytest.fixture(params=["vyper", "solidity"])
def make_consumer(request: pytest.FixtureRequest, agent: KeyedAgent) -> Callable[[int], Consumer]:
    """Deploys the Vyper consumer or its Solidity twin: the same tests hold for both."""
    code = request.getfixturevalue("solidity_consumer") if request.param == "solidity" else None

    def make(ttl: int) -> Consumer:
        return deploy_consumer(
            agent.network, agent.admin, agent.contract_id, ttl=ttl, bytecode=code
        )

    return make


def _abi_shape(abi: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    """Functions, events and the constructor with their types (getter argument names aside)."""
    shape = set()
    for entry in abi:
        if entry["type"] not in ("function", "event", "constructor"):
            continue
        inputs = tuple((i["type"], i.get("indexed", False)) for i in entry.get("inputs", []))
        names = tuple(i["name"] for i in entry.get("inputs", []))
        outputs = tuple(o["type"] for o in entry.get("outputs", []))
        named = (
            names if entry["type"] != "function" or entry.get("stateMutability") != "view" else ()
        )
        shape.add(
            (entry["type"], entry.get("name"), inputs, named, outputs, entry.get("stateMutability"))
        )
    return shape


def test_the_solidity_consumer_has_the_vyper_consumers_abi(solidity_consumer: bytes) -> None:
    solidity = compile_solidity("VeilConsumer")["abi"]
    assert _abi_shape(solidity) == _abi_shape(load_artifact("VeilConsumer").abi)


def _reverts(reason: str, fn: object, *args: object, **kwargs: object) -> None:
    with pytest.raises(ContractReverted) as info:
        fn(*args, **kwargs)  # type: ignore[operator]
    assert reason in info.value.reason, info.value.reason


def _signed(
    agent: KeyedAgent,
    consumer: Consumer,
    request_id: bytes,
    result: bytes,
    key: SecretKey | None = None,
) -> bytes:
    return agent.sign_result(consumer.address, request_id, result, key)


def test_a_request_gets_exactly_one_result_signed_by_the_agent(
    agent: KeyedAgent, make_consumer: Callable[[int], Consumer]
) -> None:
    consumer = make_consumer(50)
    user = agent.relayer
    request_id, _ = consumer.request(user, b'{"pair": "ETH/USD"}')
    assert consumer.waiting(request_id)
    for _ in range(2):  # the follower reads final blocks only
        agent.network.client.call("evm_mine")
    events = Follower(agent.network.client, agent.network.addresses, start_block=0).poll()
    asked = [e for b in events for e in b.events if isinstance(e, JobRequested)]
    assert [(e.request_id, e.contract_id, e.consumer.raw, e.payload) for e in asked] == [
        (request_id, agent.contract_id, consumer.address.raw, b'{"pair": "ETH/USD"}')
    ]
    digest = consumer.handle.call(agent.network.client, "result_digest", request_id, keccak(b"r"))
    assert bytes(digest) == result_digest(
        chain_id=agent.network.addresses.chain_id,
        consumer=consumer.address.raw,
        request_id=request_id,
        result=b"r",
    )
    result = b'{"price": 3120.5}'
    stranger = SecretKey.derive(b"consumer-test-seed-0123456789abc", "stranger")
    _reverts(
        "not the agent's key",
        consumer.fulfill,
        user,
        request_id,
        result,
        _signed(agent, consumer, request_id, result, stranger),
    )
    # a signature made out to another request, or to another result, is not this one's
    other = _signed(agent, consumer, b"\x01" * 32, result)
    _reverts("not the agent's key", consumer.fulfill, user, request_id, result, other)
    _reverts(
        "not the agent's key",
        consumer.fulfill,
        user,
        request_id,
        b"forged",
        _signed(agent, consumer, request_id, result),
    )
    good = _signed(agent, consumer, request_id, result)
    _reverts("bad signature", consumer.fulfill, user, request_id, result, good[:64])
    high_s = good[:32] + (2**256 - 1).to_bytes(32, "big") + good[64:]
    _reverts("bad signature", consumer.fulfill, user, request_id, result, high_s)
    consumer.fulfill(user, request_id, result, good)  # the first valid copy wins...
    assert consumer.state(request_id) == keccak(result)
    _reverts("already fulfilled", consumer.fulfill, user, request_id, result, good)  # ...once
    _reverts("unknown request", consumer.fulfill, user, b"\x02" * 32, result, good)


def test_an_expired_request_refunds_and_takes_no_result(
    agent: KeyedAgent, make_consumer: Callable[[int], Consumer]
) -> None:
    consumer = make_consumer(3)
    user = agent.relayer
    request_id, _ = consumer.request(user, b"job", value=10**15)
    _reverts("not expired", consumer.expire, user, request_id)
    for _ in range(4):
        agent.network.client.call("evm_mine")
    late = _signed(agent, consumer, request_id, b"late")
    _reverts("request expired", consumer.fulfill, user, request_id, b"late", late)
    balance = int(agent.network.client.call("eth_getBalance", user.address.hex, "latest"), 16)
    receipt = consumer.expire(agent.admin, request_id)  # anyone may; the requester is refunded
    assert receipt.status == 1
    after = int(agent.network.client.call("eth_getBalance", user.address.hex, "latest"), 16)
    assert after - balance == 10**15
    _reverts("unknown request", consumer.expire, user, request_id)


def test_a_rotated_out_key_signs_results_only_within_the_window(
    agent: KeyedAgent, make_consumer: Callable[[int], Consumer]
) -> None:
    consumer = make_consumer(1000)
    user = agent.relayer
    old = agent.contract_key
    first, _ = consumer.request(user, b"a")
    second, _ = consumer.request(user, b"b")
    agent.rotate()  # a master-key rotation re-keyed the cluster and its contracts
    consumer.fulfill(user, first, b"A", _signed(agent, consumer, first, b"A", old))
    for _ in range(RESULT_KEY_WINDOW + 1):
        agent.network.client.call("evm_mine")
    _reverts(
        "not the agent's key",
        consumer.fulfill,
        user,
        second,
        b"B",
        _signed(agent, consumer, second, b"B", old),
    )
    consumer.fulfill(user, second, b"B", _signed(agent, consumer, second, b"B"))


def test_ten_results_in_one_batch(
    agent: KeyedAgent, make_consumer: Callable[[int], Consumer]
) -> None:
    consumer = make_consumer(100)
    user = agent.relayer
    ids = [consumer.request(user, b"job-%d" % i)[0] for i in range(10)]
    items = [
        (i, b"result-%d" % n, _signed(agent, consumer, i, b"result-%d" % n))
        for n, i in enumerate(ids)
    ]
    forged = [*items[:9], (items[9][0], b"forged", items[9][2])]
    _reverts("not the agent's key", consumer.fulfill_batch, user, forged)
    assert all(consumer.waiting(i) for i in ids)  # a bad item reverts the batch as a whole
    consumer.fulfill_batch(user, items)
    assert [consumer.state(i) for i in ids] == [keccak(b"result-%d" % n) for n in range(10)]


def test_the_bus_takes_requests_only_for_live_agents(agent: KeyedAgent) -> None:
    bus = agent.network.bus
    user = agent.relayer

    def request(contract_id: bytes, ttl: int) -> None:
        user.transact(bus.address, bus.encode("request", contract_id, b"x", ttl))

    _reverts("unknown contract", request, b"\x07" * 32, 10)
    _reverts("bad ttl", request, agent.contract_id, 0)
    _reverts("bad ttl", request, agent.contract_id, 7201)
    agent.network.set_paused(agent.admin, agent.contract_id, True)
    _reverts("contract paused", request, agent.contract_id, 10)


def test_a_standing_job_delivers_newer_ticks_only(
    agent: KeyedAgent, make_consumer: Callable[[int], Consumer]
) -> None:
    """``Bus.schedule``: every N blocks the agent's result for that tick goes to the consumer,
    which takes each tick once, in order, and none after the schedule is cancelled."""
    consumer = make_consumer(10)
    network, owner, user = agent.network, agent.admin, agent.relayer
    _reverts("not owner", network.schedule, user, agent.contract_id, consumer.address, 3, b"p")
    _reverts("bad interval", network.schedule, owner, agent.contract_id, consumer.address, 0, b"p")
    schedule_id = network.schedule(owner, agent.contract_id, consumer.address, 3, b"tick")
    start = int(network.bus.call(network.client, "schedules", schedule_id)[3])
    for _ in range(7):
        network.client.call("evm_mine")

    def tick(height: int, result: bytes, key: SecretKey | None = None) -> None:
        request = consumer.tick_id(schedule_id, height)
        signature = _signed(agent, consumer, request, result, key)
        consumer.fulfill_tick(user, schedule_id, height, result, signature)

    _reverts("bad tick", tick, start + 2, b"off the beat")
    _reverts("bad tick", tick, start, b"the start itself")
    _reverts("bad tick", tick, start + 30, b"in the future")
    stranger = SecretKey.derive(b"consumer-test-seed-0123456789abc", "stranger")
    _reverts("not the agent's key", tick, start + 3, b"forged", stranger)
    tick(start + 6, b"second")
    _reverts("stale tick", tick, start + 3, b"first, too late")
    _reverts("stale tick", tick, start + 6, b"second again")
    assert consumer.state(consumer.tick_id(schedule_id, start + 6)) == keccak(b"second")
    _reverts("not owner", network.cancel_schedule, user, schedule_id)
    network.cancel_schedule(owner, schedule_id)
    _reverts("no such schedule", network.cancel_schedule, owner, schedule_id)
    for _ in range(3):
        network.client.call("evm_mine")
    _reverts("not this consumer's schedule", tick, start + 9, b"after the end")
    other = make_consumer(10)
    elsewhere = network.schedule(owner, agent.contract_id, other.address, 1, b"x")
    _reverts("not this consumer's schedule", consumer.fulfill_tick, user, elsewhere, 1, b"", b"")
