"""No agent can halt a cluster: the hostile corpus through real cores on two replicas, and the
wall-clock backstop recorded as a charged failure instead of a failed block."""

from __future__ import annotations

import dataclasses
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
    """A real engine on a machine so slow that one agent's commands hit the wall clock."""

    def __init__(self, engine: AgentRuntime, slow_marker: bytes) -> None:
        self.engine = engine
        self.slow_marker = slow_marker

    def load(self, language: Any, code: bytes, limits: Limits | None = None) -> Any:
        return (self.slow_marker in code, self.engine.load(language, code, limits))

    def invoke(self, agent: Any, entry: Entry, *args: Any, **kwargs: Any) -> Any:
        slow, loaded = agent
        if slow and entry is Entry.HANDLE:
            raise SandboxTimeout("Python agent hit the wall-clock backstop")
        return self.engine.invoke(loaded, entry, *args, **kwargs)


def test_the_wall_clock_backstop_is_a_charged_failure_not_a_halt(engine: AgentRuntime) -> None:
    net = Network(engine=_SlowMachine(engine, b"# slow"))
    net.bootstrap()
    slow = net.deploy(OWNER, "py", (EXAMPLES / "counter.py").read_bytes() + b"\n# slow\n")
    fine = net.deploy(
        OWNER, "py", (EXAMPLES / "counter.py").read_bytes(), salt=b"\x02" * 32, init={"start": 1}
    )
    head = net.cores["w1"].head
    stuck = net.command(ALICE, slow, {"by": 1}, nonce=1)
    ok = net.command(ALICE, fine, {"by": 1}, nonce=2)
    net.settle()
    for worker in ("w1", "w2"):
        failed = outcomes(net, slow, worker)[stuck]
        assert failed.error is not None and failed.error.code == "sandbox_timeout"
        assert failed.fuel == net.cores[worker].config.limits.fuel  # charged the whole budget
        assert outcomes(net, fine, worker)[ok].result == 2
    assert net.cores["w1"].head is not None and head is not None
    assert net.cores["w1"].head.number > head.number
    assert net.cores["w1"].state_root() == net.cores["w2"].state_root()
