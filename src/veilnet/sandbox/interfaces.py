"""Value types and Protocols between the sandboxes and the worker runtime that drives them.
The runtime implements ``HostAPI``; the sandbox never touches real state, keys or the network."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias, runtime_checkable

from veilnet.sandbox import constants as c
from veilnet.sandbox.errors import SandboxError

JSONValue: TypeAlias = Any
"""What canonical JSON carries: None, bool, int, finite float, str, list, dict[str, ...]."""


class Language(enum.StrEnum):
    """The language an agent is written in (by file extension: ``.js``, ``.py``)."""

    JS = "js"
    PY = "py"


class Entry(enum.StrEnum):
    """An agent entry point; ``mode`` says which host calls exist while it runs."""

    INIT = "init"
    HANDLE = "handle"
    QUERY = "query"
    JOB = "job"

    @property
    def mode(self) -> Mode:
        return _ENTRY_MODE[self]


class Mode(enum.StrEnum):
    """Command mode is replicated and deterministic; query and job modes may use http/llm."""

    COMMAND = "command"
    QUERY = "query"
    JOB = "job"

    @property
    def allows_io(self) -> bool:
        """Whether ``http.fetch`` and ``llm.chat`` exist in this mode."""
        return self is not Mode.COMMAND

    @property
    def keeps_writes(self) -> bool:
        """Whether state writes of this mode are returned for commit (command mode only)."""
        return self is Mode.COMMAND


_ENTRY_MODE = {
    Entry.INIT: Mode.COMMAND,
    Entry.HANDLE: Mode.COMMAND,
    Entry.QUERY: Mode.QUERY,
    Entry.JOB: Mode.JOB,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Per-cluster limits of one invocation; exceeding any is a deterministic ``SandboxError``.

    ``wall_clock_s`` is only a backstop: it raises the non-deterministic ``SandboxTimeout``
    (``math.inf``: none, fuel alone stops the agent).
    """

    fuel: int = c.DEFAULT_FUEL
    memory_bytes: int = c.DEFAULT_MEMORY_BYTES
    stack_depth: int = c.DEFAULT_STACK_DEPTH
    call_depth: int = c.DEFAULT_CALL_DEPTH
    payload_bytes: int = c.DEFAULT_PAYLOAD_BYTES
    output_bytes: int = c.DEFAULT_OUTPUT_BYTES
    host_calls: int = c.DEFAULT_HOST_CALLS
    events: int = c.DEFAULT_EVENTS
    wall_clock_s: float = c.DEFAULT_WALL_CLOCK_S

    def __post_init__(self) -> None:
        for name in ("fuel", "memory_bytes", "stack_depth", "payload_bytes", "output_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"Limits.{name} must be positive")
        if self.call_depth < 0 or self.events < 0 or self.host_calls < 0:
            raise ValueError("Limits.call_depth, events and host_calls must be >= 0")
        if self.host_calls >= 1000:
            raise ValueError("Limits.host_calls must stay below Monty's 1,000 suspensions")
        if self.memory_bytes < 4 * 1024 * 1024:
            raise ValueError("Limits.memory_bytes must be at least 4 MiB (the JS engine's base)")
        if self.wall_clock_s <= 0:
            raise ValueError("Limits.wall_clock_s must be positive")


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    """What ``ctx`` shows the agent. Everything here must be identical on every replica."""

    caller: str
    contract_id: str
    block_number: int
    block_timestamp: int
    """Seconds since the epoch; also what ``Date.now()`` (ms) and Python's clock report."""
    mode: Mode
    depth: int = 0
    """Agent-call nesting: 0 for the command or query itself."""
    call_stack: tuple[str, ...] = ()
    """Contract ids of the callers above this invocation (to refuse re-entrancy)."""

    def to_json(self) -> dict[str, JSONValue]:
        return {
            "caller": self.caller,
            "contract_id": self.contract_id,
            "block_number": self.block_number,
            "block_timestamp": self.block_timestamp,
            "mode": self.mode.value,
            "depth": self.depth,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class CallResult:
    """What ``HostAPI.call`` returns: the callee's result and the fuel it used (charged to us)."""

    value: JSONValue
    fuel_used: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """The result of one invocation.

    On success ``error`` is None. On a deterministic failure ``error`` is set, ``result`` is None,
    ``events`` and ``state_writes`` are empty, and ``fuel_used`` is what was burnt up to the
    cut-off (the fee is charged on it). In query and job modes ``state_writes`` is always empty.
    """

    result: JSONValue = None
    events: tuple[JSONValue, ...] = ()
    fuel_used: int = 0
    state_writes: Mapping[str, bytes | None] = field(default_factory=dict)
    """Ordered by first write; ``None`` marks a deletion; values are canonical-JSON bytes."""
    host_calls: int = 0
    error: SandboxError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@runtime_checkable
class HostAPI(Protocol):
    """Host calls the runtime grants to one invocation. Implementations must be deterministic in
    command mode; ``http_fetch``/``llm_chat`` are only ever reached in query and job modes.

    Methods raise ``SandboxError`` subclasses for deterministic refusals; anything else they raise
    is treated as ``SandboxInternalError`` (abort, do not commit).
    """

    def state_get(self, key: str) -> bytes | None:
        """The committed value of ``key`` for this contract (as of the invocation's start)."""

    def state_keys(self, prefix: str) -> list[str]:
        """Committed keys starting with ``prefix``, sorted."""

    def random_bytes(self, n: int) -> bytes:
        """``n`` deterministic, private random bytes: in a command the same stream on every
        replica; in a query distinct per query (keyed by the wallet and request id)."""

    def secret_get(self, name: str) -> str | None:
        """An owner-set secret, or None."""

    def derive_key(self, salt: str) -> str:
        """Hex of a key derived from the contract key and ``salt``."""

    def sign(self, payload: bytes) -> str:
        """Hex signature of ``payload`` by the contract key."""

    def call(self, contract_id: str, msg: JSONValue, *, ctx: Context, fuel: int) -> CallResult:
        """Run ``contract_id`` synchronously as a nested invocation (the runtime journals it, all
        or nothing). ``ctx`` is the *callee's* context; ``fuel`` is the budget left to the caller.
        Raises the callee's ``SandboxError`` on failure."""

    def schedule_job(self, consumer: bytes, every: int, payload: bytes) -> None:
        """Command mode: set a standing job of this agent (posted once the command commits)."""

    def cancel_job(self, schedule_id: int) -> None:
        """Command mode: end a standing job of this agent (posted once the command commits)."""

    def http_fetch(self, requests: list[JSONValue]) -> list[JSONValue]:
        """Query/job mode: perform up to 5 requests ``{url, method, headers, body}``."""

    def evm_call(self, request: JSONValue) -> JSONValue:
        """Query/job mode: a read-only call ``{to, data, from?, gas?}`` on the network's chain at
        the invocation's block, over state proven in the core."""

    def llm_chat(self, request: JSONValue) -> JSONValue:
        """Query/job mode: an OpenAI-style chat completion through the attested gateway."""
