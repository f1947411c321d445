"""Python agents are metered by what their operations really cost, and the metering rewrite
changes no result: the same function gives the same answer in CPython and in the sandbox."""

from __future__ import annotations

import runpy
import textwrap
from pathlib import Path
from typing import Any

import pytest

from veilnet.sandbox import AgentRuntime
from veilnet.sandbox.testing import MemoryHost

_SHARED = runpy.run_path(str(Path(__file__).with_name("scenario_runner.py")))
TEST_LIMITS = _SHARED["TEST_LIMITS"]

_SEMANTICS = """
import json
import math


class Box:
    def __init__(self):
        self.count = 1
        self.items = [1]

    def join(self, other):
        return self.count + other


def compute(msg):
    out = []
    b = Box()
    b.count += 2
    b.items += [2]
    alias = b.items
    alias += [3]
    d = {"k": [1]}
    d["k"] += [4]
    i = 0
    i += 5
    i *= 3
    i **= 2
    i //= 7
    i %= 10
    i <<= 3
    i >>= 1
    i |= 1
    i &= 13
    i ^= 6
    s = "ab" * 3
    s += "!"
    xs = [5, 3, 9, 1]
    xs.sort()
    ys = sorted(xs, key=lambda v: -v)
    big = 3 ** 300
    out.append([b.count, b.items, alias is b.items, d, i, s, xs, ys])
    out.append([1 < i < 100, 0 < 1 < 0, "a" in s, "z" not in s, xs == [1, 3, 5, 9], xs[1:3], s[::-1]])
    out.append([big * big % 1000003, big // 7 % 1000, divmod(big, 10**140)[1] % 97, pow(3, 100, 101)])
    out.append([-big % 11, ~5, +i, 7 / 2, 2 ** -1, big >> 400, (big << 3) % 1009, big & 255, big ^ 1])
    out.append([max(xs), min(3, 1, 2), sum(xs), sum([big, 1]) % 13, any(x > 8 for x in xs), all(xs)])
    out.append([list(map(str, xs)), [*xs, *ys], {**d, "z": 1}, f"{i:>5}|{s!r}", "-".join(["a", "b"])])
    out.append([json.loads(json.dumps({"a": [1, 2]})), math.floor(2.5), math.pi > 3, math.factorial(20)])
    out.append([b.join(1), isinstance(s, str), str(123), repr([1]), hex(255), abs(-big) % 7, round(7.5)])
    out.append([{k: v for k, v in zip("abc", range(3))}, [x * x for x in range(5) if x % 2], s.upper().count("A")])
    return out
"""


def test_metering_changes_no_result(net: MemoryHost) -> None:
    native: dict[str, Any] = {}
    exec(compile(_SEMANTICS, "semantics", "exec"), native)
    expected = native["compute"]({})
    source = _SEMANTICS + "\n\ndef handle(msg):\n    return compute(msg)\n"
    net.deploy("s", "py", source.encode())
    outcome = net.run("s", "handle", {}).outcome
    assert outcome.error is None, outcome.error
    assert outcome.result == _json_shape(expected)


def _json_shape(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value))


def _fuel(net: MemoryHost, body: str) -> int:
    code = "import math\n\ndef handle(msg):\n" + textwrap.indent(body, "    ") + "\n    return 1\n"
    net.deploy("f", "py", code.encode())
    outcome = net.run("f", "handle", {}).outcome
    assert outcome.error is None, outcome.error
    return outcome.fuel_used


@pytest.mark.parametrize(
    ("small", "large", "at_least"),
    [
        ("x = 3 ** 2000\ny = x * x", "x = 3 ** 40000\ny = x * x", 50),  # big-integer multiply
        ("x = 'ab' * 1000\ny = x[1:]", "x = 'ab' * 100000\ny = x[1:]", 20),  # copying a slice
        ("x = list(range(1000))\ny = sorted(x)", "x = list(range(20000))\ny = sorted(x)", 20),
        ("x = [[1]] * 10\ny = x == list(x)", "x = [[1]] * 2000\ny = x == list(x)", 50),
        ("y = math.factorial(1000)", "y = math.factorial(20000)", 50),
    ],
)
def test_fuel_follows_real_cost(net: MemoryHost, small: str, large: str, at_least: int) -> None:
    assert _fuel(net, large) >= at_least * _fuel(net, small) // 10


@pytest.mark.parametrize(
    ("code", "fragment"),
    [
        ("sum = 0\ndef handle(m):\n    return sum\n", "may not be rebound"),
        ("def handle(sorted):\n    return 1\n", "may not be rebound"),
        ("from math import factorial\ndef handle(m):\n    return 1\n", "call math.factorial"),
        ("import json\ndef handle(m):\n    j = json\n    return 1\n", "may only be used as"),
        ("import json\ndef handle(m):\n    f = json.dumps\n    return 1\n", "may only be called"),
        ("def handle(m):\n    a = [1, 2]\n    a[0:1] = [3]\n    return a\n", "slice assignment"),
    ],
)
def test_escapes_from_the_meter_are_refused_at_load(
    runtime: AgentRuntime, code: str, fragment: str
) -> None:
    with pytest.raises(Exception, match=fragment) as info:
        runtime.load("py", code.encode(), TEST_LIMITS)
    assert getattr(info.value, "code", None) == "sandbox_forbidden"


def test_a_builtin_method_cannot_be_taken_as_a_value(net: MemoryHost) -> None:
    net.deploy("m", "py", b"def handle(m):\n    f = 'abc'.upper\n    return f()\n")
    outcome = net.run("m", "handle", {}).outcome
    assert outcome.error is not None and outcome.error.code == "sandbox_agent_error"
    assert "cannot be taken as a value" in outcome.error.message
