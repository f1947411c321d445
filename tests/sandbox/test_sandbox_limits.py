"""Hostile agents: each hits its documented deterministic failure at the same point every run,
changes no state, and the worker keeps serving."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from veilnet.sandbox import AgentRuntime, Limits
from veilnet.sandbox.testing import MemoryHost
from veilnet.testing.hostile import HOSTILE, hostile_agent

_SHARED = runpy.run_path(str(Path(__file__).with_name("scenario_runner.py")))
EXAMPLES = _SHARED["EXAMPLES"]
TEST_LIMITS = _SHARED["TEST_LIMITS"]


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_agent_fails_deterministically(
    runtime: AgentRuntime, net: MemoryHost, language: str, case: str
) -> None:
    js, py, js_code, py_code = HOSTILE[case]
    code = js_code if language == "js" else py_code
    net.deploy("bad", language, hostile_agent(language, js if language == "js" else py))
    before = net.state_digest()
    first = net.run("bad", "handle", {}).outcome
    second = net.run("bad", "handle", {}).outcome
    assert first.error is not None, first
    assert first.error.code == code
    assert first.state_writes == {} and first.events == ()
    assert (second.error and second.error.code, second.fuel_used) == (code, first.fuel_used)
    assert net.state_digest() == before
    # A fresh runtime cuts off at exactly the same point.
    with AgentRuntime(default_limits=TEST_LIMITS) as other:
        replica = MemoryHost(other, limits=TEST_LIMITS)
        replica.deploy("bad", language, hostile_agent(language, js if language == "js" else py))
        third = replica.run("bad", "handle", {}).outcome
    assert third.error is not None and (third.error.code, third.fuel_used) == (
        code,
        first.fuel_used,
    )
    # The worker keeps serving.
    net.deploy("counter", language, (EXAMPLES / f"counter.{language}").read_bytes())
    assert net.run("counter", "handle", {"by": 2}).outcome.result == 2


def test_clock_and_randomness_are_deterministic(net: MemoryHost, language: str) -> None:
    code = {
        "js": b"export function handle(c) { return [Date.now(), Math.random(), random(), new Date().getUTCFullYear()]; }",
        "py": b"import random as r\ndef handle(c):\n    return [ctx.block_timestamp * 1000, r.random(), random(), 2023]\n",
    }[language]
    net.deploy("t", language, code)
    a = net.run("t", "handle", {}, block_timestamp=1_700_000_000).outcome
    b = net.run("t", "handle", {}, block_timestamp=1_700_000_000).outcome
    assert a.error is None and a.result == b.result and a.fuel_used == b.fuel_used
    assert a.result[0] == 1_700_000_000_000 and a.result[3] == 2023
    assert 0 <= a.result[1] < 1 and 0 <= a.result[2] < 1


@pytest.mark.parametrize(
    ("language", "code", "expected"),
    [
        ("py", b"import os\ndef handle(c):\n    return 1\n", "sandbox_forbidden"),
        ("py", b"def handle(c):\n    return open('/etc/passwd').read()\n", "sandbox_forbidden"),
        ("py", b"import time\ndef handle(c):\n    return time.time()\n", "sandbox_forbidden"),
        ("py", b"def handle(c):\n    return eval('1')\n", "sandbox_forbidden"),
        ("py", b"def handle(c):\n    exec('x = 1')\n", "sandbox_forbidden"),
        ("py", b"def handle(c):\n    return c.__class__\n", "sandbox_forbidden"),
        ("py", b"def handle(c):\n    return _veil_fuel\n", "sandbox_forbidden"),
        (
            "py",
            b"def handle(c):\n    try:\n        pass\n    finally:\n        return 1\n",
            "sandbox_forbidden",
        ),
        ("py", b"def handle(c:\n", "sandbox_compile_error"),
        ("py", b"class A(object):\n    pass\n", "sandbox_compile_error"),
        (
            "js",
            b"import * as os from 'os';\nexport function handle(c) { return 1; }",
            "sandbox_forbidden",
        ),
        (
            "js",
            b"import fs from 'fs';\nexport function handle(c) { return 1; }",
            "sandbox_forbidden",
        ),
        ("js", b"export function handle(c) {", "sandbox_compile_error"),
        ("js", b"throw new Error('at load');", "sandbox_compile_error"),
    ],
)
def test_forbidden_code_is_refused_at_load(
    runtime: AgentRuntime, language: str, code: bytes, expected: str
) -> None:
    with pytest.raises(Exception) as info:
        runtime.load(language, code, TEST_LIMITS)
    assert getattr(info.value, "code", None) == expected


def test_js_open_and_require_do_not_exist(net: MemoryHost) -> None:
    net.deploy("t", "js", b"export function handle(c) { return open('x'); }")
    out = net.run("t", "handle", {}).outcome
    assert out.error is not None and out.error.code == "sandbox_agent_error"
    assert "open is not defined" in out.error.message


def test_payload_too_large_is_refused(net: MemoryHost, language: str) -> None:
    net.deploy("counter", language, (EXAMPLES / f"counter.{language}").read_bytes())
    out = net.run(
        "counter", "handle", {"by": 1, "pad": "x" * (TEST_LIMITS.payload_bytes + 1)}
    ).outcome
    assert out.error is not None and out.error.code == "sandbox_payload_too_large"
    assert out.fuel_used == 0


def test_limits_are_configurable_per_cluster(runtime: AgentRuntime, language: str) -> None:
    tight = Limits(fuel=5_000_000, memory_bytes=16 * 1024 * 1024, wall_clock_s=20.0)
    net = MemoryHost(runtime, limits=tight)
    body = "let s = 0; for (let i = 0; i < 50000; i++) { s += i; } return s;"
    py = "s = 0\n    for i in range(50000):\n        s += i\n    return s"
    net.deploy("loop", language, hostile_agent(language, body if language == "js" else py))
    out = net.run("loop", "handle", {}).outcome
    assert out.error is not None and out.error.code == "sandbox_out_of_fuel"
    assert out.fuel_used == tight.fuel
    roomy = MemoryHost(runtime, limits=TEST_LIMITS)
    roomy.deploy("loop", language, hostile_agent(language, body if language == "js" else py))
    assert roomy.run("loop", "handle", {}).outcome.result == sum(range(50000))


def test_invalid_limits_are_rejected() -> None:
    with pytest.raises(ValueError, match="fuel"):
        Limits(fuel=0)
    with pytest.raises(ValueError, match="host_calls"):
        Limits(host_calls=1000)
