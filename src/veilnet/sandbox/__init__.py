"""Agent sandboxes: JavaScript on QuickJS-in-wasm (wasmtime fuel) and Python on Monty, one host API.
The worker runtime calls ``AgentRuntime.load``/``invoke`` and supplies a ``HostAPI``."""

from veilnet.sandbox._runtime import AgentRuntime, LoadedAgent
from veilnet.sandbox.check import check_agent
from veilnet.sandbox.errors import (
    SandboxAgentError,
    SandboxCallDepth,
    SandboxCompileError,
    SandboxError,
    SandboxForbidden,
    SandboxHostCallLimit,
    SandboxInternalError,
    SandboxMemoryLimit,
    SandboxOutOfFuel,
    SandboxPayloadTooLarge,
    SandboxReentrantCall,
    SandboxTimeout,
)
from veilnet.sandbox.interfaces import (
    CallResult,
    Context,
    Entry,
    HostAPI,
    JSONValue,
    Language,
    Limits,
    Mode,
    Outcome,
)

__all__ = [
    "AgentRuntime",
    "CallResult",
    "Context",
    "Entry",
    "HostAPI",
    "JSONValue",
    "Language",
    "Limits",
    "LoadedAgent",
    "Mode",
    "Outcome",
    "SandboxAgentError",
    "SandboxCallDepth",
    "SandboxCompileError",
    "SandboxError",
    "SandboxForbidden",
    "SandboxHostCallLimit",
    "SandboxInternalError",
    "SandboxMemoryLimit",
    "SandboxOutOfFuel",
    "SandboxPayloadTooLarge",
    "SandboxReentrantCall",
    "SandboxTimeout",
    "check_agent",
]
