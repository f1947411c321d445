"""The consumers the acting examples feed, on the embedded chain and anvil: ``PriceFeed`` takes a
price from a signed tick result, ``Escrow`` pays the party a signed ruling names."""

from __future__ import annotations

import pytest

from veilnet.chain import ContractReverted
from veilnet.chain.consumer import Consumer, deploy_escrow, deploy_price_feed
from veilnet.chain.contracts import TxSender
from veilnet.chain.interfaces import ChainBackend
from veilnet.chain.testing import KeyedAgent, keyed_agent
from veilnet.crypto import Address, SecretKey

STRANGER = SecretKey.derive(b"acting-test-seed-0123456789abcde", "stranger")


@pytest.fixture
def agent(any_backend: ChainBackend) -> KeyedAgent:
    return keyed_agent(any_backend)


@pytest.fixture
def stranger(any_backend: ChainBackend, agent: KeyedAgent) -> TxSender:
    """A funded account that is neither party."""
    return agent.network.sender(any_backend.dev_accounts[3][1])


def _signed(
    agent: KeyedAgent,
    consumer: Consumer,
    request_id: bytes,
    result: bytes,
    key: SecretKey | None = None,
) -> bytes:
    return agent.sign_result(consumer.address, request_id, result, key)


def _reverts(reason: str, fn: object, *args: object) -> None:
    with pytest.raises(ContractReverted) as info:
        fn(*args)  # type: ignore[operator]
    assert reason in info.value.reason, info.value.reason


def _mine(agent: KeyedAgent, blocks: int) -> None:
    for _ in range(blocks):
        agent.network.client.call("evm_mine")


def test_a_price_feed_takes_the_newest_signed_price(agent: KeyedAgent) -> None:
    network, owner, user = agent.network, agent.admin, agent.relayer
    feed = deploy_price_feed(network, owner, agent.contract_id, ttl=10)
    assert feed.latest() == (0, 0)
    schedule_id = network.schedule(owner, agent.contract_id, feed.address, 2, b"null")
    start = int(network.bus.call(network.client, "schedules", schedule_id)[3])
    _mine(agent, 6)

    def tick(height: int, result: bytes, key: SecretKey | None = None) -> None:
        request = feed.tick_id(schedule_id, height)
        feed.fulfill_tick(
            user, schedule_id, height, result, _signed(agent, feed, request, result, key)
        )

    for bad in (
        b'{"ok":true,"result":"3141590000"}',  # a string, not a number
        b'{"ok":false,"error":{"code":"x","message":"y"}}',  # a failed job
        b'{"ok":true,"result":3141.59}',
        b'{"ok":true,"result":}',
        b'{"ok":true,"result":' + b"9" * 33 + b"}",
        b'{"ok":true,"result":12',
    ):
        _reverts("not a price", tick, start + 2, bad)
    _reverts("not the agent's key", tick, start + 2, b'{"ok":true,"result":1}', STRANGER)
    tick(start + 4, b'{"ok":true,"result":3141590000}')
    assert feed.latest() == (3141590000, start + 4)
    _reverts("stale tick", tick, start + 2, b'{"ok":true,"result":1}')
    tick(start + 6, b'{"ok":true,"result":3150000000}')
    assert feed.latest() == (3150000000, start + 6)


def _balance(agent: KeyedAgent, address: Address) -> int:
    return int(agent.network.client.call("eth_getBalance", address.hex, "latest"), 16)


@pytest.mark.parametrize(("ruling", "winner"), [("buyer", "buyer"), ("seller", "seller")])
def test_an_escrow_pays_the_party_the_judge_names(
    agent: KeyedAgent, stranger: TxSender, ruling: str, winner: str
) -> None:
    network, buyer, seller = agent.network, agent.relayer, agent.admin
    escrow = deploy_escrow(
        network, buyer, agent.contract_id, seller=seller.address, ttl=20, value=10**15
    )
    assert str(escrow.view("buyer")).lower() == buyer.address.hex.lower()
    assert escrow.view("settled") is False
    _reverts("not a party", escrow.ask_judge, stranger, b"claim")
    request_id = escrow.ask_judge(seller, b"I delivered; pay me")
    assert bytes(escrow.view("dispute")) == request_id  # type: ignore[arg-type]
    result = b'{"ok":true,"result":"%s"}' % ruling.encode()
    _reverts(
        "not the agent's key",
        escrow.fulfill,
        buyer,
        request_id,
        result,
        _signed(agent, escrow, request_id, result, STRANGER),
    )
    _reverts(
        "not the open dispute",
        escrow.fulfill,
        buyer,
        b"\x01" * 32,
        result,
        _signed(agent, escrow, b"\x01" * 32, result),
    )
    party = buyer.address if winner == "buyer" else seller.address
    before = _balance(agent, party)
    escrow.fulfill(stranger, request_id, result, _signed(agent, escrow, request_id, result))
    assert escrow.view("settled") is True
    assert _balance(agent, party) == before + 10**15
    assert _balance(agent, escrow.address) == 0
    _reverts(
        "already fulfilled",
        escrow.fulfill,
        buyer,
        request_id,
        result,
        _signed(agent, escrow, request_id, result),
    )
    _reverts("settled", escrow.ask_judge, buyer, b"again")


def test_an_unclear_ruling_moves_nothing_and_the_buyer_may_still_release(
    agent: KeyedAgent,
) -> None:
    network, buyer, seller = agent.network, agent.relayer, agent.admin
    escrow = deploy_escrow(
        network, buyer, agent.contract_id, seller=seller.address, ttl=20, value=10**15
    )
    request_id = escrow.ask_judge(buyer, b"it broke")
    unclear = b'{"ok":false,"error":{"code":"sandbox_agent_error","message":"no model"}}'
    escrow.fulfill(buyer, request_id, unclear, _signed(agent, escrow, request_id, unclear))
    assert escrow.view("settled") is False and _balance(agent, escrow.address) == 10**15
    _reverts("not buyer", escrow.release, seller)
    before = _balance(agent, seller.address)
    escrow.release(buyer)
    assert _balance(agent, seller.address) == before + 10**15
