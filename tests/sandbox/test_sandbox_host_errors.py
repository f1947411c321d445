"""A failed host call is an error the agent can catch and inspect, in both languages
(``VeilError`` in JavaScript, ``RuntimeError`` + ``veil_error(e)`` in Python); limit exhaustion
is not; a caught nested call leaves nothing of the callee behind and its fuel is still paid."""

from __future__ import annotations

import pytest

from veilnet.sandbox.testing import MemoryHost

UNKNOWN = "0x" + "22" * 32

CATCHER = {
    "js": b"""
export function handle(cmd) {
  if (cmd.fetch) return http.fetch({ url: "https://example.com" });
  state.set("mine", 1);
  try {
    return call(cmd.target, cmd.msg);
  } catch (e) {
    return { caught: e instanceof VeilError, name: e.name, code: e.code, message: e.message };
  }
}
""",
    "py": b"""
def handle(cmd):
    if cmd.get("fetch"):
        return http.fetch({"url": "https://example.com"})
    state.set("mine", 1)
    try:
        return call(cmd["target"], cmd["msg"])
    except RuntimeError as e:
        err = veil_error(e)
        return {"caught": err is not None, "code": err["code"], "message": err["message"]}
""",
}

CALLEE = {
    "js": b"""
export function handle(cmd) {
  state.set("callee", "written");
  emit({ from: "callee" });
  if (cmd.burn) { let x = 0; for (let i = 0; i < cmd.burn; i++) { x += i; } }
  if (cmd.forever) { while (true) {} }
  throw new Error("callee refuses");
}
""",
    "py": b"""
def handle(cmd):
    state.set("callee", "written")
    emit({"from": "callee"})
    if cmd.get("burn"):
        x = 0
        for i in range(cmd["burn"]):
            x += i
    if cmd.get("forever"):
        while True:
            pass
    raise ValueError("callee refuses")
""",
}


@pytest.fixture(params=["js", "py"])
def language(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _setup(net: MemoryHost, language: str) -> None:
    net.deploy("caller", language, CATCHER[language])
    net.deploy("callee", language, CALLEE[language])


def test_a_failed_host_call_is_caught_and_inspected(net: MemoryHost, language: str) -> None:
    _setup(net, language)
    done = net.run("caller", "handle", {"target": UNKNOWN, "msg": {}})
    assert done.outcome.error is None, done.outcome.error
    result = done.result
    assert isinstance(result, dict) and result["caught"] is True
    assert result["code"] == "sandbox_agent_error"
    assert "no such contract" in result["message"]
    if language == "js":
        assert result["name"] == "VeilError"
    assert net.states["caller"]["mine"] == b"1"  # the caller went on and committed


def test_an_uncaught_host_error_keeps_its_code(net: MemoryHost, language: str) -> None:
    _setup(net, language)
    outcome = net.run("caller", "handle", {"target": "caller", "msg": {}}).outcome  # reentrant
    assert outcome.error is None and outcome.result["code"] == "sandbox_reentrant_call"
    failed = net.run("caller", "handle", {"fetch": True}).outcome  # not in command mode
    assert failed.error is not None and failed.error.code == "sandbox_forbidden"


def test_a_caught_nested_failure_leaves_nothing_and_its_fuel_is_paid(
    net: MemoryHost, language: str
) -> None:
    _setup(net, language)
    cheap = net.run("caller", "handle", {"target": "callee", "msg": {}})
    burned = net.run("caller", "handle", {"target": "callee", "msg": {"burn": 20000}})
    for done in (cheap, burned):
        assert done.outcome.error is None and done.result["caught"] is True
        assert "callee refuses" in done.result["message"]
        assert done.events == []  # the callee's event went with it
    assert "callee" not in net.states.get("callee", {})
    assert net.states["caller"]["mine"] == b"1"
    # what the callee burned before failing is on the caller's bill
    assert burned.outcome.fuel_used > cheap.outcome.fuel_used + 100_000


def test_limit_exhaustion_in_a_callee_cannot_be_caught(net: MemoryHost, language: str) -> None:
    _setup(net, language)
    outcome = net.run("caller", "handle", {"target": "callee", "msg": {"forever": True}}).outcome
    assert outcome.error is not None and outcome.error.code == "sandbox_out_of_fuel"
    assert "mine" not in net.states.get("caller", {})
