"""Every example agent, in JavaScript and in Python, through the real enclave core: encrypted
commands from real wallets, certified queries, both languages giving the same answers."""

from __future__ import annotations

from typing import Any

import pytest

from veilnet.crypto import SecretKey
from veilnet.runtime import QueryIO
from veilnet.sandbox import AgentRuntime
from veilnet.testing import Network, query_core
from veilnet.testing.gateway import GatewayHost, dev_gateway
from veilnet.testing.network import NETWORK_SEED, TEST_TIME

from .conftest import ALICE, EXAMPLES, OWNER

BOB = SecretKey.derive(b"\x77" * 32, "bob")


class Run:
    """One example deployed on a fresh network; commands applied and answered by w1 and w2."""

    def __init__(self, engine: AgentRuntime, name: str, language: str, init: Any) -> None:
        self.net = Network(engine=engine)
        self.net.bootstrap()
        self.contract = self.net.deploy(
            OWNER, language, (EXAMPLES / f"{name}.{language}").read_bytes(), init=init
        )
        self.nonce = 0

    def command(self, wallet: SecretKey, msg: Any) -> dict[str, Any]:
        self.nonce += 1
        seq = self.net.command(wallet, self.contract, msg, nonce=self.nonce)
        self.net.settle()
        results = [self.net.cores[w].runtimes[self.contract].outcomes[seq] for w in ("w1", "w2")]
        assert results[0] == results[1]
        return results[0].to_public()

    def query(self, wallet: SecretKey, msg: Any, **kw: Any) -> dict[str, Any]:
        answers = [
            query_core(self.net, wallet, self.contract, msg, worker=w, **kw) for w in ("w1", "w2")
        ]
        assert answers[0] == answers[1]
        return answers[0]

    def ahead(self, blocks: int) -> None:
        for _ in range(blocks):
            self.net.step()


def _counter(engine: AgentRuntime, language: str) -> list[Any]:
    run = Run(engine, "counter", language, {"start": 10})
    return [
        run.command(ALICE, {"by": 5})["result"],
        run.command(ALICE, {"by": "x"})["error"]["code"],
        run.query(BOB, {})["result"]["count"],
    ]


def _vault(engine: AgentRuntime, language: str) -> list[Any]:
    run = Run(engine, "vault", language, {})
    return [
        run.command(OWNER, {"op": "put", "key": "k", "value": {"secret": 1}})["result"],
        run.command(ALICE, {"op": "put", "key": "k", "value": 2})["error"]["code"],
        run.query(ALICE, {"key": "k"})["ok"],
        run.command(OWNER, {"op": "grant", "role": "reader", "who": ALICE.address.hex})["ok"],
        run.query(ALICE, {"key": "k"})["result"],
        run.query(BOB, {"key": "k"})["ok"],
    ]


def _auction(engine: AgentRuntime, language: str) -> list[Any]:
    probe = Network(engine=engine)
    probe.bootstrap()
    ends = probe.ledger.head.number + 14  # bootstrap is deterministic: same head on every run
    run = Run(engine, "auction", language, {"ends_at_block": ends, "reserve": 5})
    out = [
        run.command(ALICE, {"op": "bid", "amount": 7})["ok"],
        run.command(BOB, {"op": "bid", "amount": 9})["ok"],
        run.command(OWNER, {"op": "close"})["error"]["code"],
        run.query(BOB, {"op": "my_bid"})["result"],
        run.query(ALICE, {"op": "my_bid"})["result"],
    ]
    run.ahead(max(0, ends - run.net.ledger.head.number))
    closed = run.command(OWNER, {"op": "close"})
    out += [closed["result"], closed["events"], run.query(ALICE, {})["result"]]
    return out


def _assistant(engine: AgentRuntime, language: str) -> list[Any]:
    """The assistant asks a real gateway on the dev TEE (an echo model stands in for the LLM):
    the core verifies its quote, seals the prompt to it and checks the receipt."""
    run = Run(engine, "assistant", language, {"persona": "You are terse."})
    noted = run.command(OWNER, {"op": "note", "text": "likes tea"})["result"]
    with dev_gateway(NETWORK_SEED, collateral_issued_at=TEST_TIME - 3600) as url:
        io = QueryIO(gateway=GatewayHost(url))
        both = [
            query_core(
                run.net, OWNER, run.contract, {"question": "what do I like?"}, worker=w, io=io
            )
            for w in ("w1", "w2")
        ]
    asked = both[0]["result"]
    assert asked["answer"] == both[1]["result"]["answer"]
    assert asked["receipt_id"] != both[1]["result"]["receipt_id"]  # each worker asked itself
    return [noted, asked["answer"]]


SCENARIOS = {"counter": _counter, "vault": _vault, "auction": _auction, "assistant": _assistant}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_example_in_both_languages_on_the_core(engine: AgentRuntime, name: str) -> None:
    py = SCENARIOS[name](engine, "py")
    js = SCENARIOS[name](engine, "js")
    assert py == js
    if name == "counter":
        assert py == [15, "sandbox_agent_error", 15]
    if name == "vault":
        assert py == [True, "sandbox_agent_error", False, True, {"secret": 1}, False]
    if name == "auction":
        assert py[:5] == [True, True, "sandbox_agent_error", 9, 7]
        assert py[5] == {"winner": BOB.address.hex, "price": 7}
    if name == "assistant":
        assert py[1] == "echo: You are terse.\nNotes:\n- likes tea | what do I like?"
