"""No agent can halt a cluster: the hostile corpus through real cores on two replicas, and a
wall-clock backstop that only ever makes the core re-run a command with fuel as its only limit."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from veilnet.sandbox import AgentRuntime, Limits
from veilnet.sandbox.errors import SandboxTimeout
from veilnet.sandbox.interfaces import Entry
from veilnet.testing import Network
from veilnet.testing.hostile import HOSTILE, hostile_agent

from .conftest import ALICE, EXAMPLES, OWNER, outcomes

LIMITS = Limits(fuel=100_000_000, memory_bytes=16 * 1024 * 1024, wall_clock_s=20.0)
"""The corpus's limits in tests/sandbox (a tenth of the default fuel: the suite stays quick)."""


def _network(engine: Any) -> Network:
    net = Network(engine=engine)
    assert net.config is not None
    net.config = dataclasses.replace(net.config, limits=LIMITS)
    net.bootstrap()
    return net


@pytest.mark.parametrize("language", ["js", "py"])
def test_hostile_corpus_fails_alike_on_both_replicas_and_workers_go_on(
    engine: AgentRuntime, language: str
) -> None:
    net = _network(engine)
    expected: dict[bytes, tuple[int, str]] = {}
    for i, (name, (js, py, js_code, py_code)) in enumerate(sorted(HOSTILE.items())):
        source = hostile_agent(language, js if language == "js" else py)
        contract = net.deploy(OWNER, language, source, salt=i.to_bytes(32, "big"))
        seq = net.command(ALICE, contract, {"case": name}, nonce=i + 1)
        expected[contract] = (seq, js_code if language == "js" else py_code)
    net.settle()
    w1, w2 = net.cores["w1"], net.cores["w2"]
    for contract, (seq, code) in expected.items():
        first, second = outcomes(net, contract)[seq], outcomes(net, contract, "w2")[seq]
        assert not first.ok and first.error is not None and first.error.code == code
        assert first == second  # same failure, same fuel charged
        assert first.fuel > 0
        assert w1.runtimes[contract].state.values == {}  # the write before the failure is gone
    assert w1.state_root() == w2.state_root()
    # Both workers keep applying blocks and serving commands.
    counter = net.deploy(OWNER, language, (EXAMPLES / f"counter.{language}").read_bytes())
    seq = net.command(ALICE, counter, {"by": 2}, nonce=len(HOSTILE) + 1)
    net.settle()
    assert outcomes(net, counter)[seq].result == 2 == outcomes(net, counter, "w2")[seq].result


class _SlowMachine:
    """A real engine on a machine so slow (or so starved by its host) that one agent's commands
    hit the wall clock whenever there is one."""

    def __init__(self, engine: AgentRuntime, slow_marker: bytes) -> None:
        self.engine = engine
        self.slow_marker = slow_marker
        self.reruns = 0

    def load(self, language: Any, code: bytes, limits: Limits | None = None) -> Any:
        return (self.slow_marker in code, self.engine.load(language, code, limits))

    def holds_instance(self, agent: Any) -> bool:
        return bool(self.engine.holds_instance(agent[1]))

    def park(self, agent: Any) -> bool:
        return bool(self.engine.park(agent[1]))

    def footprint(self, agent: Any) -> int:
        return self.engine.footprint(agent[1])

    def invoke(self, agent: Any, entry: Entry, *args: Any, **kwargs: Any) -> Any:
        slow, loaded = agent
        limits: Limits = args[-1]
        if slow and entry is Entry.HANDLE:
            if math.isfinite(limits.wall_clock_s):
                raise SandboxTimeout("Python agent hit the wall-clock backstop")
            self.reruns += 1
        return self.engine.invoke(loaded, entry, *args, **kwargs)


def test_the_wall_clock_backstop_decides_nothing_and_halts_nothing(engine: AgentRuntime) -> None:
    machine = _SlowMachine(engine, b"# slow")
    net = Network(engine=machine)
    net.bootstrap()
    slow = net.deploy(OWNER, "py", (EXAMPLES / "counter.py").read_bytes() + b"\n# slow\n")
    fine = net.deploy(
        OWNER, "py", (EXAMPLES / "counter.py").read_bytes(), salt=b"\x02" * 32, init={"start": 1}
    )
    head = net.cores["w1"].head
    first = net.command(ALICE, slow, {"by": 3}, nonce=1)
    second = net.command(ALICE, fine, {"by": 1}, nonce=2)
    net.settle()
    for worker in ("w1", "w2"):
        # fuel decided, as on a fast machine: the command applied
        assert outcomes(net, slow, worker)[first].result == 3
        assert outcomes(net, fine, worker)[second].result == 2
    assert machine.reruns == 2  # once on each replica, without a wall clock
    assert net.cores["w1"].head is not None and head is not None
    assert net.cores["w1"].head.number > head.number
    assert net.cores["w1"].state_root() == net.cores["w2"].state_root()
