"""The one host API of both languages: dispatches a guest's ``(op, args)`` host calls to the
runtime's ``HostAPI``, enforcing mode, counts and sizes, and validates what an invocation returns.

Theory of operation: a guest keeps its own state overlay (writes and deletes are buffered inside
the sandbox and returned in one batch with the result), so only reads, keys, randomness, keys,
signatures, nested calls and I/O cross. Every refusal raises a deterministic ``SandboxError``; the
engine turns it into an uncatchable abort of the guest (a wasm trap, or an abandoned Monty feed).
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable
from typing import Any

from veilnet.sandbox import constants as c
from veilnet.sandbox._json import canonical_json, parse_json
from veilnet.sandbox.errors import (
    SandboxAgentError,
    SandboxCallDepth,
    SandboxError,
    SandboxForbidden,
    SandboxHostCallLimit,
    SandboxInternalError,
    SandboxPayloadTooLarge,
    SandboxReentrantCall,
)
from veilnet.sandbox.interfaces import Context, HostAPI, JSONValue, Limits, Mode, Outcome

HOST_OPS = (
    "state.get",
    "state.keys",
    "random",
    "seed",
    "secrets.get",
    "derive_key",
    "sign",
    "call",
    "http.fetch",
    "llm.chat",
)
"""Every host call a guest may make; ``http.fetch`` and ``llm.chat`` only outside command mode."""


class Bridge:
    """Host-call dispatch for one invocation (not reused across invocations)."""

    def __init__(self, host: HostAPI, ctx: Context, limits: Limits) -> None:
        self.host = host
        self.ctx = ctx
        self.limits = limits
        self.calls = 0
        self.nested_fuel = 0
        self.abort: SandboxError | None = None
        """The first deterministic refusal; sticky, whatever the guest does afterwards."""
        self.crash: BaseException | None = None
        self.raised: list[SandboxError] = []
        """Catchable errors handed to the guest, newest last (``uncaught`` finds them again)."""
        """A non-``SandboxError`` raised by the host: becomes ``SandboxInternalError``."""

    def dispatch(self, op: str, args: list[JSONValue], fuel_left: Callable[[], int]) -> JSONValue:
        """Run one host call: ``[0, value]``, or ``[1, {code, message, details}]`` for an error
        the guest raises as a catchable ``VeilError``. Limit exhaustion raises ``SandboxError``
        (recorded as ``abort``) to stop the guest."""
        try:
            return [0, self._dispatch(op, args, fuel_left)]
        except SandboxError as exc:
            if exc.catchable:
                self.raised.append(exc)
                return [
                    1,
                    {"code": exc.code, "message": exc.message, "details": _plain(exc.details)},
                ]
            if self.abort is None:
                self.abort = exc
            raise
        except Exception as exc:
            self.crash = exc
            raise SandboxInternalError("host call failed", op=op) from exc

    def _dispatch(self, op: str, args: list[JSONValue], fuel_left: Callable[[], int]) -> JSONValue:
        self.calls += 1
        if self.calls > self.limits.host_calls:
            raise SandboxHostCallLimit(
                f"more than {self.limits.host_calls} host calls", limit=self.limits.host_calls
            )
        host = self.host
        if op == "state.get":
            key = _key(args)
            raw = host.state_get(key)
            if raw is None:
                return None
            return parse_json(raw, max_bytes=c.MAX_VALUE_BYTES, what="stored value")
        if op == "state.keys":
            prefix = _str_arg(args, 0, "prefix", allow_empty=True)
            return list(host.state_keys(prefix))
        if op == "random":
            (bits,) = struct.unpack(">Q", host.random_bytes(8))
            return (bits >> 11) / float(1 << 53)
        if op == "seed":
            return int.from_bytes(host.random_bytes(6), "big")
        if op == "secrets.get":
            return host.secret_get(_str_arg(args, 0, "name"))
        if op == "derive_key":
            return host.derive_key(_str_arg(args, 0, "salt", allow_empty=True))
        if op == "sign":
            if len(args) != 1:
                raise SandboxAgentError("sign takes one JSON payload")
            return host.sign(canonical_json(args[0], max_bytes=self.limits.payload_bytes))
        if op == "call":
            return self._call(args, fuel_left)
        if op in ("jobs.schedule", "jobs.cancel"):
            return self._jobs(op, args)
        if op == "evm.call":
            if not self.ctx.mode.allows_io:
                raise SandboxForbidden(
                    "evm.call is not available in command mode",
                    host_call=op,
                    mode=self.ctx.mode.value,
                )
            if len(args) != 1:
                raise SandboxAgentError("evm.call takes one {to, data} object")
            canonical_json(args[0], max_bytes=self.limits.payload_bytes, what="evm.call request")
            return host.evm_call(args[0])
        if op in ("http.fetch", "llm.chat"):
            if not self.ctx.mode.allows_io:
                raise SandboxForbidden(
                    f"{op} is not available in command mode", host_call=op, mode=self.ctx.mode.value
                )
            if len(args) != 1:
                raise SandboxAgentError(f"{op} takes one argument")
            canonical_json(args[0], max_bytes=self.limits.payload_bytes, what=f"{op} request")
            if op == "llm.chat":
                return host.llm_chat(args[0])
            requests = args[0] if isinstance(args[0], list) else [args[0]]
            if len(requests) > c.HTTP_MAX_BATCH:
                raise SandboxHostCallLimit(
                    f"http.fetch takes at most {c.HTTP_MAX_BATCH} requests per batch",
                    limit=c.HTTP_MAX_BATCH,
                )
            responses = host.http_fetch(requests)
            return responses if isinstance(args[0], list) else responses[0]
        raise SandboxForbidden(f"unknown host call {op[:40]!r}", host_call=op[:40])

    def uncaught(self, message: str) -> SandboxError | None:
        """The host-call error the guest let escape (its text is ``code: message``), so the
        invocation fails with that error's own code, as if it had not been catchable."""
        for error in reversed(self.raised):
            if message == f"{error.code}: {error.message}":
                return error
        return None

    def _jobs(self, op: str, args: list[JSONValue]) -> JSONValue:
        """An agent's own standing jobs: replicated intents, so command mode only; the cluster
        posts them to the Bus once the command commits."""
        if self.ctx.mode is not Mode.COMMAND:
            raise SandboxForbidden(
                f"{op} is available in command mode only (init, handle)",
                host_call=op,
                mode=self.ctx.mode.value,
            )
        if op == "jobs.cancel":
            if len(args) != 1 or not isinstance(args[0], int) or isinstance(args[0], bool):
                raise SandboxAgentError("jobs.cancel takes a schedule id")
            if not 1 <= args[0] < 2**256:
                raise SandboxAgentError("a schedule id is a positive integer")
            self.host.cancel_job(args[0])
            return None
        request = args[0] if len(args) == 1 else None
        if not isinstance(request, dict):
            raise SandboxAgentError("jobs.schedule takes {consumer, every, payload}")
        consumer, every = request.get("consumer"), request.get("every")
        if not isinstance(consumer, str) or not _is_address(consumer):
            raise SandboxAgentError("consumer must be a 0x-prefixed 20-byte address")
        if not isinstance(every, int) or isinstance(every, bool) or not 1 <= every < 2**64:
            raise SandboxAgentError("every must be a whole number of blocks, 1 or more")
        payload = canonical_json(
            request.get("payload"), max_bytes=c.MAX_JOB_PAYLOAD_BYTES, what="job payload"
        )
        self.host.schedule_job(bytes.fromhex(consumer[2:]), every, payload)
        return None

    def _call(self, args: list[JSONValue], fuel_left: Callable[[], int]) -> JSONValue:
        if len(args) != 2 or not isinstance(args[0], str):
            raise SandboxAgentError("call takes a contract id and a JSON message")
        target, msg = args
        ctx = self.ctx
        if ctx.depth + 1 > self.limits.call_depth:
            raise SandboxCallDepth(
                f"agent calls nest deeper than {self.limits.call_depth}",
                kind="agent_calls",
                limit=self.limits.call_depth,
            )
        stack = (*ctx.call_stack, ctx.contract_id)
        if target in stack:
            raise SandboxReentrantCall("agent is already on the call stack", contract_id=target)
        canonical_json(msg, max_bytes=self.limits.payload_bytes, what="call message")
        callee = dataclasses.replace(
            ctx, caller=ctx.contract_id, contract_id=target, depth=ctx.depth + 1, call_stack=stack
        )
        try:
            result = self.host.call(target, msg, ctx=callee, fuel=fuel_left())
        except SandboxError as exc:
            # what the callee burned before it failed is the caller's to pay, caught or not
            used = exc.details.get("fuel_used", 0)
            self.nested_fuel += used if isinstance(used, int) else 0
            raise
        self.nested_fuel += result.fuel_used
        return result.value

    def finish(self, output: JSONValue, *, fuel_used: int) -> Outcome:
        """Validate a guest's ``{"r": result, "w": [[key, value|None]...], "e": [events]}``."""
        limits = self.limits
        if not isinstance(output, dict):
            raise SandboxAgentError("guest returned a malformed envelope")
        result = output.get("r")
        canonical_json(result, max_bytes=limits.output_bytes, what="result")
        events = output.get("e") or []
        if not isinstance(events, list):
            raise SandboxAgentError("guest returned malformed events")
        if len(events) > limits.events:
            raise SandboxHostCallLimit(f"more than {limits.events} events", limit=limits.events)
        if events:  # an empty list is always canonical and within any limit
            canonical_json(events, max_bytes=limits.output_bytes, what="events")
        writes: dict[str, bytes | None] = {}
        if self.ctx.mode.keeps_writes:
            total = 0
            for item in output.get("w") or []:
                if not isinstance(item, list) or len(item) != 2:
                    raise SandboxAgentError("guest returned malformed writes")
                key = _check_key(item[0])
                value = (
                    None
                    if item[1] is None
                    else canonical_json(item[1], max_bytes=c.MAX_VALUE_BYTES, what="state value")
                )
                total += len(key) + (len(value) if value else 0)
                writes[key] = value
            if total > limits.output_bytes:
                raise SandboxPayloadTooLarge(
                    "state writes exceed the output limit", size=total, limit=limits.output_bytes
                )
        return Outcome(
            result=result,
            events=tuple(events),
            fuel_used=fuel_used,
            state_writes=writes,
            host_calls=self.calls,
        )


def failure(error: SandboxError, *, fuel_used: int, host_calls: int) -> Outcome:
    """The Outcome of a deterministic failure: nothing but the error and the fuel burnt."""
    return Outcome(error=error, fuel_used=fuel_used, host_calls=host_calls)


def _str_arg(args: list[Any], index: int, name: str, *, allow_empty: bool = False) -> str:
    if len(args) <= index or not isinstance(args[index], str):
        raise SandboxAgentError(f"{name} must be a string")
    value: str = args[index]
    if not value and not allow_empty:
        raise SandboxAgentError(f"{name} must not be empty")
    if len(value.encode()) > c.MAX_KEY_BYTES:
        raise SandboxPayloadTooLarge(f"{name} is longer than {c.MAX_KEY_BYTES} bytes")
    return value


def _key(args: list[Any]) -> str:
    return _check_key(args[0] if args else None)


def _plain(details: dict[str, Any]) -> JSONValue:
    """An error's details as JSON the guest can read (anything else as its text)."""
    out: dict[str, JSONValue] = {}
    for name, value in details.items():
        if value is None or isinstance(value, bool | int | float | str):
            out[str(name)] = value
        else:
            out[str(name)] = str(value)[:200]
    return out


def _is_address(text: str) -> bool:
    hexpart = text[2:]
    return (
        text.startswith("0x")
        and len(hexpart) == 40
        and all(ch in "0123456789abcdefABCDEF" for ch in hexpart)
        and int(hexpart, 16) != 0
    )


def _check_key(key: Any) -> str:
    if not isinstance(key, str) or not key:
        raise SandboxAgentError("state keys must be non-empty strings")
    if len(key.encode()) > c.MAX_KEY_BYTES:
        raise SandboxPayloadTooLarge(
            f"state key is longer than {c.MAX_KEY_BYTES} bytes", limit=c.MAX_KEY_BYTES
        )
    return key
