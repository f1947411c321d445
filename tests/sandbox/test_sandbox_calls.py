"""Agent-to-agent calls: synchronous, same cluster, depth-limited, all-or-nothing, both modes."""

from __future__ import annotations

import runpy
from pathlib import Path

from veilnet.sandbox.testing import MemoryHost

_SHARED = runpy.run_path(str(Path(__file__).with_name("scenario_runner.py")))
EXAMPLES = _SHARED["EXAMPLES"]
TEST_LIMITS = _SHARED["TEST_LIMITS"]

PROXY = {
    "js": b"""
export function handle(cmd) {
  state.set("last", cmd.by);
  const r = call(cmd.target, { by: cmd.by });
  if (cmd.fail_after) throw new Error("caller failed after the call");
  emit({ type: "proxied", result: r });
  return r;
}
export function query(req) { return call(req.target, {}); }
""",
    "py": b"""
def handle(cmd):
    state.set("last", cmd["by"])
    r = call(cmd["target"], {"by": cmd["by"]})
    if cmd.get("fail_after"):
        raise ValueError("caller failed after the call")
    emit({"type": "proxied", "result": r})
    return r


def query(req):
    return call(req["target"], {})
""",
}

CHAIN = {
    "js": b"export function handle(cmd) { return cmd.n <= 0 ? 0 : 1 + call(cmd.next, { n: cmd.n - 1, next: cmd.back, back: cmd.next }); }",
    "py": b"def handle(cmd):\n    if cmd['n'] <= 0:\n        return 0\n    return 1 + call(cmd['next'], {'n': cmd['n'] - 1, 'next': cmd['back'], 'back': cmd['next']})\n",
}


def _setup(net: MemoryHost, language: str) -> None:
    net.deploy("counter", language, (EXAMPLES / f"counter.{language}").read_bytes())
    net.deploy("proxy", language, PROXY[language])


def test_call_commits_both_contracts(net: MemoryHost, language: str) -> None:
    _setup(net, language)
    inv = net.run("proxy", "handle", {"target": "counter", "by": 3})
    assert inv.outcome.error is None and inv.result == 3
    assert net.states["counter"]["count"] == b"3" and net.states["proxy"]["last"] == b"3"
    assert [contract for contract, _ in inv.events] == ["proxy", "counter"]
    counted = inv.events[1][1]
    assert counted["caller"] == "proxy"


def test_call_is_all_or_nothing(net: MemoryHost, language: str) -> None:
    _setup(net, language)
    before = net.state_digest()
    out = net.run("proxy", "handle", {"target": "counter", "by": 3, "fail_after": True}).outcome
    assert out.error is not None and out.error.code == "sandbox_agent_error"
    assert net.state_digest() == before
    out = net.run("proxy", "handle", {"target": "counter", "by": "bad"}).outcome
    assert out.error is not None and out.error.code == "sandbox_agent_error"
    assert net.state_digest() == before


def test_callee_fuel_is_charged_to_caller(net: MemoryHost, language: str) -> None:
    _setup(net, language)
    alone = net.run("counter", "handle", {"by": 1}).outcome.fuel_used
    via = net.run("proxy", "handle", {"target": "counter", "by": 1}).outcome.fuel_used
    assert via > alone


def test_call_depth_and_reentrancy(net: MemoryHost, language: str) -> None:
    net.deploy("a", language, CHAIN[language])
    net.deploy("b", language, CHAIN[language])
    net.deploy("c", language, CHAIN[language])
    out = net.run("a", "handle", {"n": 1, "next": "b", "back": "c"}).outcome
    assert out.error is None and out.result == 1
    out = net.run("a", "handle", {"n": 2, "next": "b", "back": "a"}).outcome
    assert out.error is not None and out.error.code == "sandbox_reentrant_call"
    for i in range(6):
        net.deploy(f"n{i}", language, CHAIN[language])
    # n0 -> n1 -> ... each hop alternates next/back, so build a straight line of distinct ids.
    line = {
        "js": b"export function handle(cmd) { return cmd.rest.length === 0 ? 0 : 1 + call(cmd.rest[0], { rest: cmd.rest.slice(1) }); }",
        "py": b"def handle(cmd):\n    if not cmd['rest']:\n        return 0\n    return 1 + call(cmd['rest'][0], {'rest': cmd['rest'][1:]})\n",
    }[language]
    for i in range(7):
        net.deploy(f"l{i}", language, line)
    ok = net.run("l0", "handle", {"rest": [f"l{i}" for i in range(1, 5)]}).outcome
    assert ok.error is None and ok.result == 4
    deep = net.run("l0", "handle", {"rest": [f"l{i}" for i in range(1, 7)]}).outcome
    assert deep.error is not None and deep.error.code == "sandbox_call_depth"


def test_call_in_query_mode_discards_writes(net: MemoryHost, language: str) -> None:
    _setup(net, language)
    net.run("counter", "init", {"start": 4})
    inv = net.run("proxy", "query", {"target": "counter"})
    assert inv.outcome.error is None and inv.result["count"] == 4
    assert inv.outcome.state_writes == {}
