"""Agents set and end their own standing jobs (``jobs.schedule`` / ``jobs.cancel``) from committed
commands, in both languages: the cluster posts them, the Bus records them, the members tick them."""

from __future__ import annotations

from typing import Any

import pytest

from veilnet.protocol import topics
from veilnet.sandbox import AgentRuntime
from veilnet.testing import Network, query_core

from .conftest import OWNER

CONSUMER = "0x" + "c5" * 20
SOURCES = {
    "js": b"""
export function handle(cmd) {
  if (cmd.op === "start") { jobs.schedule({ consumer: cmd.consumer, every: cmd.every, payload: { pair: "ETH/USD" } }); return "asked"; }
  if (cmd.op === "stop") { jobs.cancel(cmd.id); return "stopped"; }
  if (cmd.op === "bad") { jobs.schedule({ consumer: "0x00", every: 0 }); }
  if (cmd.op === "then_fail") { jobs.schedule({ consumer: cmd.consumer, every: 5 }); throw new Error("no"); }
}
export function query(q) { jobs.schedule({ consumer: q.consumer, every: 1 }); }
""",
    "py": b"""
def handle(cmd):
    if cmd["op"] == "start":
        jobs.schedule({"consumer": cmd["consumer"], "every": cmd["every"], "payload": {"pair": "ETH/USD"}})
        return "asked"
    if cmd["op"] == "stop":
        jobs.cancel(cmd["id"])
        return "stopped"
    if cmd["op"] == "bad":
        jobs.schedule({"consumer": "0x00", "every": 0})
    if cmd["op"] == "then_fail":
        jobs.schedule({"consumer": cmd["consumer"], "every": 5})
        raise ValueError("no")

def query(q):
    jobs.schedule({"consumer": q["consumer"], "every": 1})
""",
}


def _command(net: Network, contract: bytes, msg: Any, nonce: int) -> Any:
    seq = net.command(OWNER, contract, msg, nonce=nonce)
    net.settle()
    outcomes = [net.cores[w].runtimes[contract].outcomes[seq] for w in ("w1", "w2")]
    assert outcomes[0] == outcomes[1]
    return outcomes[0]


@pytest.mark.parametrize("language", ["js", "py"])
def test_an_agent_schedules_and_cancels_its_own_job(engine: AgentRuntime, language: str) -> None:
    net = Network(engine=engine)
    net.bootstrap()
    contract = net.deploy(OWNER, language, SOURCES[language])
    started = _command(net, contract, {"op": "start", "consumer": CONSUMER, "every": 3}, 1)
    assert started.ok and started.result == "asked"
    # both members emitted the same numbered message; the first landed, the second was a repeat
    assert net.ledger.schedules == {1: (contract, True)}
    (scheduled,) = [
        e for block in net.ledger.blocks for e in block.events if type(e).__name__ == "JobScheduled"
    ]
    assert scheduled.consumer == bytes.fromhex(CONSUMER[2:]) and scheduled.every == 3
    assert scheduled.payload == b'{"pair":"ETH/USD"}'
    for core in ("w1", "w2"):
        assert net.cores[core].state.schedules[1].every == 3
    stopped = _command(net, contract, {"op": "stop", "id": 1}, 2)
    assert stopped.ok and net.ledger.schedules == {1: (contract, False)}
    assert all(1 not in net.cores[c].state.schedules for c in ("w1", "w2"))


@pytest.mark.parametrize("language", ["js", "py"])
def test_what_an_agent_cannot_schedule(engine: AgentRuntime, language: str) -> None:
    """Bad arguments fail the command; a command that fails posts nothing; a query cannot set
    a job; an agent cannot end another agent's job (the Bus refuses, the numbering goes on)."""
    net = Network(engine=engine)
    net.bootstrap()
    contract = net.deploy(OWNER, language, SOURCES[language])
    other = net.deploy(OWNER, language, SOURCES[language], salt=b"\x02" * 32)
    bad = _command(net, contract, {"op": "bad"}, 1)
    assert not bad.ok and bad.error.code == "sandbox_agent_error"
    failed = _command(net, contract, {"op": "then_fail", "consumer": CONSUMER}, 2)
    assert not failed.ok and net.ledger.schedules == {}
    answer = query_core(net, OWNER, contract, {"consumer": CONSUMER})
    assert answer["ok"] is False and answer["error"]["code"] == "sandbox_forbidden"
    assert _command(net, other, {"op": "start", "consumer": CONSUMER, "every": 2}, 1).ok
    assert net.ledger.schedules == {1: (other, True)}
    assert _command(net, contract, {"op": "stop", "id": 1}, 3).ok  # committed, then refused
    assert net.ledger.schedules == {1: (other, True)}
    assert any(reason == "not this agent's" for _, _, reason in net.ledger.rejected)
    # the cluster origin's numbering went on: the next schedule still lands
    assert _command(net, contract, {"op": "start", "consumer": CONSUMER, "every": 4}, 4).ok
    assert net.ledger.schedules[2] == (contract, True)
    assert topics.TOPIC_AGENT_SCHEDULE in {m.topic for m in net.posted}
