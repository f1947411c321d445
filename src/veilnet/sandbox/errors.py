"""Errors of ``veilnet.sandbox``: every way an agent invocation can fail, with stable codes.

    PolicyRejected
    └── SandboxError                 base; ``deterministic`` says whether replicas must agree
        ├── SandboxOutOfFuel         sandbox_out_of_fuel       fuel budget spent
        ├── SandboxMemoryLimit       sandbox_memory_limit      heap / linear memory full
        ├── SandboxCallDepth         sandbox_call_depth        recursion or agent-call nesting
        ├── SandboxPayloadTooLarge   sandbox_payload_too_large input/output/value/key too big
        ├── SandboxHostCallLimit     sandbox_host_call_limit   too many host calls or events
        ├── SandboxForbidden         sandbox_forbidden         import os/open/exec/eval/dunder,
        │                                                      http/llm in command mode
        ├── SandboxReentrantCall     sandbox_reentrant_call    an agent already on the call stack
        ├── SandboxAgentError        sandbox_agent_error       the agent threw / raised
        └── SandboxCompileError      sandbox_compile_error     code does not parse / has no entry
    Unavailable
    └── SandboxTimeout      sandbox_timeout    wall-clock backstop (not deterministic)
    InternalError
    └── SandboxInternalError         sandbox_internal_error    engine crash or a bug of ours

A failed host call raises its error in the agent (JavaScript ``VeilError``, Python
``RuntimeError`` read back with ``veil_error``), which it may catch, except limit exhaustion
(``catchable`` False: fuel, memory, host calls), which ends the invocation.

Every ``SandboxError`` is deterministic: every replica reaches the same one at the same point, so
the runtime charges the fee, records the failure and changes no state. ``SandboxInternalError``
is not: the runtime aborts the block without committing anything. ``SandboxTimeout`` (the
wall-clock backstop, which metering keeps out of reach) decides nothing: the runtime runs the
command again with fuel as its only limit, so a wall clock can neither decide an outcome nor
halt a worker.
"""

from __future__ import annotations

from typing import Any, ClassVar

from veilnet.errors import InternalError, PolicyRejected, Unavailable


class SandboxError(PolicyRejected):
    """An agent invocation failed deterministically; fee charged, no state change."""

    code = "sandbox_error"
    http_status = 422
    deterministic: ClassVar[bool] = True
    catchable: ClassVar[bool] = True
    """Raised by a host call, whether the agent may catch it (as a ``VeilError`` with this
    code). Limit exhaustion (fuel, memory, host calls) is not: it ends the invocation."""

    def __init__(self, message: str = "", **details: Any) -> None:
        super().__init__(message, **details)


class SandboxOutOfFuel(SandboxError):
    """The invocation used up its fuel budget."""

    code = "sandbox_out_of_fuel"
    catchable: ClassVar[bool] = False


class SandboxMemoryLimit(SandboxError):
    """The invocation reached its memory limit."""

    code = "sandbox_memory_limit"
    catchable: ClassVar[bool] = False


class SandboxCallDepth(SandboxError):
    """Recursion or agent-to-agent nesting went deeper than allowed."""

    code = "sandbox_call_depth"


class SandboxPayloadTooLarge(SandboxError):
    """An input, output, event, state key or value exceeded its size limit."""

    code = "sandbox_payload_too_large"
    http_status = 413


class SandboxHostCallLimit(SandboxError):
    """The invocation made more host calls (or emitted more events) than allowed."""

    code = "sandbox_host_call_limit"
    catchable: ClassVar[bool] = False


class SandboxForbidden(SandboxError):
    """The agent tried something the sandbox forbids (I/O, reflection, another mode's host call)."""

    code = "sandbox_forbidden"
    http_status = 403


class SandboxReentrantCall(SandboxError):
    """An agent-to-agent call targeted a contract already on the call stack."""

    code = "sandbox_reentrant_call"
    http_status = 409


class SandboxAgentError(SandboxError):
    """The agent's code threw an exception."""

    code = "sandbox_agent_error"


class SandboxCompileError(SandboxError):
    """The agent's code does not compile, or lacks a required entry point."""

    code = "sandbox_compile_error"
    http_status = 400


class SandboxTimeout(Unavailable):
    """The wall-clock backstop fired. Not deterministic: in command mode the runtime re-runs the
    invocation with fuel as its only limit (queries just fail)."""

    code = "sandbox_timeout"
    deterministic: ClassVar[bool] = False


class SandboxInternalError(InternalError):
    """The engine crashed or misbehaved. Not deterministic: abort without committing."""

    code = "sandbox_internal_error"
    deterministic: ClassVar[bool] = False


ERRORS_BY_CODE: dict[str, type[SandboxError]] = {
    cls.code: cls
    for cls in (
        SandboxOutOfFuel,
        SandboxMemoryLimit,
        SandboxCallDepth,
        SandboxPayloadTooLarge,
        SandboxHostCallLimit,
        SandboxForbidden,
        SandboxReentrantCall,
        SandboxAgentError,
        SandboxCompileError,
    )
}
"""Deterministic failures by code (used to carry a callee's failure through a nested call)."""
