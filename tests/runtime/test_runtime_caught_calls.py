"""Caught nested-call failures through real cores: an agent that catches its callee's failure
goes on, and nothing the callee or the callee's own callees wrote, emitted or scheduled stays;
both replicas agree."""

from __future__ import annotations

from veilnet.sandbox import AgentRuntime
from veilnet.testing import Network

from .conftest import OWNER

TOP = b"""
export function handle(cmd) {
  state.set("top", cmd.n);
  try { call(cmd.middle, { bottom: cmd.bottom }); return "no failure?"; }
  catch (e) { return { caught: e.code, message: e.message }; }
}
"""
MIDDLE = b"""
def handle(cmd):
    call(cmd["bottom"], {"n": 1})
    jobs.schedule({"consumer": "0x" + "c5" * 20, "every": 2})
    raise ValueError("middle gives up after its callee wrote")
"""
BOTTOM = b"""
export function handle(cmd) { state.set("bottom", cmd.n); emit({ wrote: true }); return 1; }
export function query(q) { return state.get("bottom"); }
"""


def test_a_caught_failure_rolls_back_the_whole_failed_branch(engine: AgentRuntime) -> None:
    net = Network(engine=engine)
    net.bootstrap()
    top = net.deploy(OWNER, "js", TOP, salt=b"\x01" * 32)
    middle = net.deploy(OWNER, "py", MIDDLE, salt=b"\x02" * 32)
    bottom = net.deploy(OWNER, "js", BOTTOM, salt=b"\x03" * 32)
    msg = {"n": 7, "middle": "0x" + middle.hex(), "bottom": "0x" + bottom.hex()}
    seq = net.command(OWNER, top, msg, nonce=1)
    net.settle()
    outcomes = [net.cores[w].runtimes[top].outcomes[seq] for w in ("w1", "w2")]
    assert outcomes[0] == outcomes[1]
    outcome = outcomes[0]
    assert outcome.ok and outcome.result["caught"] == "sandbox_agent_error"
    assert "middle gives up" in outcome.result["message"]
    assert outcome.events == ()  # the bottom's event went with its branch
    for worker in ("w1", "w2"):
        runtimes = net.cores[worker].runtimes
        assert runtimes[top].state.get("top") == b"7"
        assert runtimes[bottom].state.get("bottom") is None
    assert net.ledger.schedules == {}  # the middle's job request went too
