"""Python agents on pydantic-monty: a clean session dump per agent, restored for every invocation,
driven through Monty's snapshot/resume interface with host calls answered directly.

Theory of operation: ``load`` checks and meters the source (``_pyast``), feeds the trusted prelude
plus the agent into a fresh Monty session and dumps it. ``invoke`` restores that dump into a fresh
checkout (so every invocation starts from byte-identical interpreter state and a fresh 1,000
suspension budget), feeds a small driver, and answers each ``_veil_host`` suspension through the
shared ``Bridge``. A refusal abandons the feed, which no agent ``except`` can intercept. Fuel is a
tick counter inside the sandbox; exceeding it, recursion and memory errors are sticky even if the
agent catches them (every ``except`` starts with ``_veil_guard``).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pydantic_monty as monty

from veilnet.sandbox import constants as c
from veilnet.sandbox._bridge import Bridge, failure
from veilnet.sandbox._pyast import CheckedSource, check_and_instrument
from veilnet.sandbox._pymeter import base_prelude
from veilnet.sandbox.errors import (
    SandboxAgentError,
    SandboxCallDepth,
    SandboxCompileError,
    SandboxError,
    SandboxForbidden,
    SandboxInternalError,
    SandboxMemoryLimit,
    SandboxOutOfFuel,
    SandboxTimeout,
)
from veilnet.sandbox.interfaces import Context, Entry, HostAPI, JSONValue, Limits, Outcome

_LOAD_TICKS = 1_000_000
"""Fuel for running an agent's module-level code once at load time."""

_FIXED_CLOCK = datetime(2000, 1, 1, tzinfo=UTC)
"""Monty's frozen clock (the agent cannot import ``time``; ``ctx.block_timestamp`` is the clock)."""

_PRELUDE = """
_veil_flags = []
_veil_w = {}
_veil_ev = []
_veil_host_ticks = %(host_ticks)d

def _veil_guard(e):
    if _veil_used > _veil_limit:
        raise e
    if isinstance(e, (RecursionError, MemoryError, TimeoutError)):
        _veil_flags.append(type(e).__name__)
        raise e

def _veil_range(a, b=None, s=1):
    r = range(a) if b is None else range(a, b, s)
    _veil_tick(len(r))
    return r

_veil_errors = []

def _veil_call_host(op, args):
    _veil_tick(_veil_host_ticks)
    r = _veil_host(op, args, _veil_used)
    if len(r) > 2:
        _veil_tick(r[2])
    if r[0] != 0:
        # Monty has no exception subclasses and takes one string argument: a failed host call
        # raises RuntimeError("code: message"); veil_error(e) gives it back as a dict
        _veil_errors.append(r[1])
        raise RuntimeError(r[1]["code"] + ": " + r[1]["message"])
    return r[1]

def veil_error(exc):
    text = str(exc)
    for error in reversed(_veil_errors):
        if text == error["code"] + ": " + error["message"]:
            return error
    return None

class _VeilState:
    def get(self, key):
        if key in _veil_w:
            return _veil_w[key]
        return _veil_call_host("state.get", [key])

    def set(self, key, value):
        if not isinstance(key, str) or not key:
            raise ValueError("state keys must be non-empty strings")
        if value is None:
            raise ValueError("state.set needs a value; use state.delete")
        _veil_w[key] = value

    def delete(self, key):
        if not isinstance(key, str) or not key:
            raise ValueError("state keys must be non-empty strings")
        _veil_w[key] = None

    def keys(self, prefix=""):
        found = _veil_call_host("state.keys", [prefix])
        result = [k for k in found if k not in _veil_w]
        for k in _veil_w:
            if k.startswith(prefix) and _veil_w[k] is not None:
                result.append(k)
        return sorted(result)

class _VeilSecrets:
    def get(self, name):
        return _veil_call_host("secrets.get", [name])

class _VeilHTTP:
    def fetch(self, request):
        return _veil_call_host("http.fetch", [request])

class _VeilLLM:
    def chat(self, request):
        return _veil_call_host("llm.chat", [request])

class _VeilEVM:
    def call(self, request):
        return _veil_call_host("evm.call", [request])

class _VeilJobs:
    def schedule(self, request):
        return _veil_call_host("jobs.schedule", [request])

    def cancel(self, schedule_id):
        return _veil_call_host("jobs.cancel", [schedule_id])

class _VeilCtx:
    def __init__(self, d):
        self.caller = d["caller"]
        self.contract_id = d["contract_id"]
        self.block_number = d["block_number"]
        self.block_timestamp = d["block_timestamp"]
        self.mode = d["mode"]
        self.depth = d["depth"]

state = _VeilState()
secrets = _VeilSecrets()
http = _VeilHTTP()
llm = _VeilLLM()
jobs = _VeilJobs()
evm = _VeilEVM()
ctx = None

def emit(event):
    _veil_ev.append(event)

def random():
    return _veil_call_host("random", [])

def derive_key(salt):
    return _veil_call_host("derive_key", [salt])

def sign(payload):
    return _veil_call_host("sign", [payload])

def call(contract_id, msg):
    return _veil_call_host("call", [contract_id, msg])
"""

_DRIVER = """
_veil_used = 0
_veil_limit = _veil_lim
ctx = _VeilCtx(_veil_c)
%(seed)s
try:
    _veil_r = %(entry)s(_veil_p)
    _veil_out = {"ok": True, "r": _veil_r, "w": [[k, _veil_w[k]] for k in _veil_w], "e": _veil_ev}
except Exception as _veil_x:
    _veil_out = {"ok": False, "type": type(_veil_x).__name__, "msg": str(_veil_x)[:200]}
_veil_out["t"] = _veil_used
_veil_out["f"] = _veil_flags
_veil_out
"""

_SEED = "import random as _veil_random\n_veil_random.seed(_veil_host('seed', [], 0)[1])"


def _discard(_stream: str, _text: str) -> None:
    return None


@dataclass(slots=True)
class PythonAgent:
    """A checked, metered Python agent plus its clean session dumps (one per limit set)."""

    checked: CheckedSource
    dumps: dict[tuple[int, int, float], bytes] = field(default_factory=dict)


class PythonEngine:
    """Owns a pool of Monty worker processes; thread-safe for concurrent invocations."""

    def __init__(self, *, max_processes: int = 8) -> None:
        self._pool = monty.Monty(min_processes=1, max_processes=max_processes)
        self._pool.__enter__()
        self._lock = threading.Lock()
        self._closed = False

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._pool.__exit__(None, None, None)

    def compile(self, code: bytes, limits: Limits) -> PythonAgent:
        try:
            text = code.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SandboxCompileError("agent source is not UTF-8") from exc
        agent = PythonAgent(checked=check_and_instrument(text))
        self._dump_for(agent, limits)
        return agent

    def _checkout(self, limits: Limits) -> Any:
        return self._pool.checkout(
            script_name="agent.py",
            limits={
                "max_memory": limits.memory_bytes,
                "max_recursion_depth": limits.stack_depth,
                # no backstop at all for a re-run whose only limit is fuel (runtime/agents.py)
                "max_feed_duration_secs": (
                    None if math.isinf(limits.wall_clock_s) else limits.wall_clock_s
                ),
                "max_suspensions": 999,
            },
            os_policy={
                "datetime": _FIXED_CLOCK,
                "random_start": {"seed": 0},
                "sleep": "zero",
            },
        )

    def _dump_for(self, agent: PythonAgent, limits: Limits) -> bytes:
        key = (limits.memory_bytes, limits.stack_depth, limits.wall_clock_s)
        blob = agent.dumps.get(key)
        if blob is not None:
            return blob
        prelude = (
            base_prelude(_LOAD_TICKS, agent.checked.operators)
            + _PRELUDE % {"host_ticks": c.HOST_CALL_FUEL // c.PY_FUEL_PER_TICK}
            + agent.checked.wrappers
        )
        try:
            with self._checkout(limits) as session:
                session.feed_run(prelude, print_callback=_discard)
                snap = session.feed_start(agent.checked.source, print_callback=_discard)
                if not isinstance(snap, monty.MontyComplete):
                    raise SandboxForbidden("agents may not make host calls at load time")
                blob = session.dump()
        except monty.MontySyntaxError as exc:
            raise SandboxCompileError(
                f"agent does not compile: {exc.display('msg')[:200]}"
            ) from exc
        except monty.MontyRuntimeError as exc:
            raise SandboxCompileError(
                f"agent module failed to load: {exc.display('type-msg')[:200]}"
            ) from exc
        except monty.MontyError as exc:
            raise SandboxInternalError("Monty failed while loading the agent") from exc
        agent.dumps[key] = bytes(blob)
        return bytes(blob)

    def footprint(self, agent: PythonAgent) -> int:
        """Bytes the agent holds: its instrumented source and its clean session dumps."""
        return len(agent.checked.source) + sum(len(dump) for dump in agent.dumps.values())

    def park(self, agent: PythonAgent) -> bool:
        """Nothing to drop: a Python agent holds its checked source and session dumps only
        (its sessions come from the shared pool). Always False: it never has an instance."""
        return False

    def invoke(
        self,
        agent: PythonAgent,
        entry: Entry,
        payload: JSONValue,
        host: HostAPI,
        ctx: Context,
        limits: Limits,
    ) -> Outcome:
        bridge = Bridge(host, ctx, limits)
        if entry.value not in agent.checked.entries:
            if entry is Entry.INIT:
                return Outcome(fuel_used=0)
            return failure(
                SandboxAgentError(f"agent has no {entry.value}() entry point"),
                fuel_used=0,
                host_calls=0,
            )
        blob = self._dump_for(agent, limits)
        lim_ticks = limits.fuel // c.PY_FUEL_PER_TICK
        driver = _DRIVER % {
            "entry": entry.value,
            "seed": _SEED if agent.checked.imports_random else "",
        }
        inputs = {"_veil_p": payload, "_veil_c": ctx.to_json(), "_veil_lim": lim_ticks}
        ticks_seen = 0

        def fuel_left() -> int:
            return max(0, (lim_ticks - ticks_seen) * c.PY_FUEL_PER_TICK)

        try:
            with self._checkout(limits) as session:
                session.load_session(blob)
                snap = session.feed_start(driver, inputs=inputs, print_callback=_discard)
                while not isinstance(snap, monty.MontyComplete):
                    snap, ticks_seen = self._answer(snap, bridge, fuel_left, ticks_seen)
                    if bridge.abort is not None or bridge.crash is not None:
                        break
                output = snap.output if isinstance(snap, monty.MontyComplete) else None
        except monty.MontyCrashedError as exc:
            if exc.timed_out:
                raise SandboxTimeout("Python agent hit the wall-clock backstop") from exc
            raise SandboxInternalError("Monty worker crashed") from exc
        except monty.MontyRuntimeError as exc:
            return self._runtime_error(exc, bridge, lim_ticks)
        except monty.MontyError as exc:
            raise SandboxInternalError("Monty failed") from exc
        if bridge.crash is not None:
            raise SandboxInternalError("host call failed") from bridge.crash
        if bridge.abort is not None:
            return failure(
                bridge.abort,
                fuel_used=min(limits.fuel, ticks_seen * c.PY_FUEL_PER_TICK),
                host_calls=bridge.calls,
            )
        return self._finish(output, bridge, lim_ticks)

    def _answer(
        self, snap: Any, bridge: Bridge, fuel_left: Callable[[], int], ticks_seen: int
    ) -> tuple[Any, int]:
        if isinstance(snap, monty.FunctionSnapshot):
            name = snap.function_name
            if snap.is_os_function:
                bridge.abort = SandboxForbidden(
                    f"OS call {str(name)[:40]!r} is not allowed", os_call=str(name)[:40]
                )
                return snap, ticks_seen
            if name != "_veil_host" or snap.kwargs:
                message = f"name {str(name)[:40]!r} is not defined"
                return snap.resume({"exc_type": "NameError", "message": message}), ticks_seen
            args = snap.args
            op, call_args, ticks = args[0], list(args[1]), int(args[2])
            ticks_seen = max(ticks_seen, ticks)
            try:
                value = bridge.dispatch(str(op), call_args, fuel_left)
            except (SandboxError, SandboxInternalError):
                return snap, ticks_seen
            if op == "call":
                nested_ticks = -(-bridge.nested_fuel // c.PY_FUEL_PER_TICK)
                bridge.nested_fuel = 0
                value = [*value, nested_ticks]
            return snap.resume({"return_value": value}), ticks_seen
        if isinstance(snap, monty.NameLookupSnapshot):
            return snap.resume(), ticks_seen
        bridge.abort = SandboxForbidden("async code is not supported")
        return snap, ticks_seen

    def _runtime_error(
        self, exc: monty.MontyRuntimeError, bridge: Bridge, lim_ticks: int
    ) -> Outcome:
        # Errors escaping the driver's own try: memory or recursion while building the envelope,
        # the feed time limit, or the pool's suspension cap.
        kind = type(exc.exception()).__name__
        fuel = lim_ticks * c.PY_FUEL_PER_TICK
        if kind == "TimeoutError":
            raise SandboxTimeout("Python agent hit the wall-clock backstop") from exc
        error: SandboxError
        if kind == "MemoryError":
            error = SandboxMemoryLimit("Python agent reached its memory limit")
        elif kind == "RecursionError":
            error = SandboxCallDepth("Python agent recursed too deeply", kind="stack")
        else:
            error = SandboxAgentError(f"agent failed: {exc.display('type-msg')[:200]}")
        return failure(error, fuel_used=fuel, host_calls=bridge.calls)

    def _finish(self, output: Any, bridge: Bridge, lim_ticks: int) -> Outcome:
        if not isinstance(output, dict):
            raise SandboxInternalError("Python driver returned a malformed envelope")
        ticks = int(output.get("t", 0))
        flags = list(output.get("f", ()))
        fuel_used = min(ticks, lim_ticks) * c.PY_FUEL_PER_TICK
        error: SandboxError | None = None
        if ticks > lim_ticks:
            error = SandboxOutOfFuel("Python agent ran out of fuel", limit=bridge.limits.fuel)
        elif "TimeoutError" in flags:
            raise SandboxTimeout("Python agent hit the wall-clock backstop")
        elif "RecursionError" in flags:
            error = SandboxCallDepth("Python agent recursed too deeply", kind="stack")
        elif "MemoryError" in flags:
            error = SandboxMemoryLimit("Python agent reached its memory limit")
        elif not output.get("ok"):
            kind = str(output.get("type", "Exception"))
            if kind == "TimeoutError":
                raise SandboxTimeout("Python agent hit the wall-clock backstop")
            if kind == "RecursionError":
                error = SandboxCallDepth("Python agent recursed too deeply", kind="stack")
            elif kind == "MemoryError":
                error = SandboxMemoryLimit("Python agent reached its memory limit")
            else:
                error = bridge.uncaught(str(output.get("msg", ""))) or SandboxAgentError(
                    f"agent raised {kind}: {output.get('msg', '')}", exception=kind
                )
        if error is not None:
            return failure(error, fuel_used=fuel_used, host_calls=bridge.calls)
        try:
            return bridge.finish(output, fuel_used=fuel_used)
        except SandboxError as exc:
            return failure(exc, fuel_used=fuel_used, host_calls=bridge.calls)
