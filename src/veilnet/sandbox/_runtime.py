"""``AgentRuntime``: the one entry point the worker runtime uses for both languages.
Loads (checks, compiles, pre-initialises) agents once and invokes their entry points."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from typing import Any

from veilnet.sandbox._json import canonical_json
from veilnet.sandbox.errors import SandboxCompileError, SandboxInternalError
from veilnet.sandbox.interfaces import (
    Context,
    Entry,
    HostAPI,
    JSONValue,
    Language,
    Limits,
    Outcome,
)


@dataclass(frozen=True, slots=True, eq=False)
class LoadedAgent:
    """A validated, compiled agent. ``code_hash`` is sha256 of the exact code bytes."""

    language: Language
    code_hash: bytes
    limits: Limits
    _compiled: Any = field(repr=False)

    def __repr__(self) -> str:
        return (
            f"LoadedAgent(language={self.language.value}, code_hash={self.code_hash.hex()[:16]}…)"
        )


class AgentRuntime:
    """Runs agents of both languages. Create one per worker process; ``close()`` at shutdown.

    Engines start lazily (the JS engine compiles the QuickJS guest once, ~0.1 s; the Python engine
    starts a Monty worker pool). Safe to call from several threads.
    """

    def __init__(self, *, default_limits: Limits | None = None) -> None:
        self.default_limits = default_limits or Limits()
        self._lock = threading.Lock()
        self._js: Any = None
        self._py: Any = None

    def _engine(self, language: Language) -> Any:
        with self._lock:
            if language is Language.PY:
                if self._py is None:
                    from veilnet.sandbox._python import PythonEngine

                    self._py = PythonEngine()
                return self._py
            if self._js is None:
                from veilnet.sandbox._js import JSEngine

                self._js = JSEngine()
            return self._js

    def load(
        self, language: Language | str, code: bytes, limits: Limits | None = None
    ) -> LoadedAgent:
        """Check and compile ``code`` once.

        Raises:
            SandboxCompileError: it does not compile or exports no entry point.
            SandboxForbidden: it imports or names something the sandbox forbids.
        """
        try:
            lang = Language(language)
        except ValueError as exc:
            raise SandboxCompileError(f"unknown agent language {str(language)[:10]!r}") from exc
        if not isinstance(code, bytes):
            raise TypeError("code must be bytes")
        limits = limits or self.default_limits
        compiled = self._engine(lang).compile(code, limits)
        return LoadedAgent(
            language=lang,
            code_hash=hashlib.sha256(code).digest(),
            limits=limits,
            _compiled=compiled,
        )

    def footprint(self, agent: LoadedAgent) -> int:
        """Bytes ``agent`` holds while loaded but parked (a JS agent's clean image, a Python
        agent's source and session dumps)."""
        return int(self._loaded_by(agent).footprint(agent._compiled))

    @staticmethod
    def holds_instance(agent: LoadedAgent) -> bool:
        """Whether ``agent`` keeps an instance between invocations, for ``park`` to free: a JS
        agent does, a Python agent never does (its sessions come from a shared pool)."""
        return agent.language is Language.JS

    def park(self, agent: LoadedAgent) -> bool:
        """Free what ``agent`` holds to run at once (a JS instance and its memory) and keep it
        compiled; its next invocation takes about a millisecond more. No outcome changes: every
        invocation starts from the agent's clean image either way. Returns whether it held an
        instance (parked now, or left as it is while it runs); False if it held none."""
        return bool(self._loaded_by(agent).park(agent._compiled))

    def _loaded_by(self, agent: LoadedAgent) -> Any:
        """The engine that loaded ``agent`` (running since: no lock, no start)."""
        return self._js if agent.language is Language.JS else self._py

    def invoke(
        self,
        agent: LoadedAgent,
        entry: Entry | str,
        payload: JSONValue,
        host: HostAPI,
        ctx: Context,
        limits: Limits | None = None,
    ) -> Outcome:
        """Run one entry point.

        Args:
            agent: from ``load``.
            entry: ``init``/``handle`` (command mode), ``query`` or ``job``.
            payload: the JSON argument (checked against ``limits.payload_bytes``).
            host: the runtime's host calls for this invocation.
            ctx: caller, contract, block; ``ctx.mode`` must match the entry's mode.
            limits: per-cluster limits (defaults to those the agent was loaded with).

        Returns:
            An ``Outcome``; a deterministic failure is ``Outcome.error`` (charge the fee, commit
            nothing). Query/job outcomes carry no state writes.

        Raises:
            SandboxTimeout: the wall-clock backstop fired (not deterministic: abort, don't record).
            SandboxInternalError: the engine or the host failed (not deterministic: abort).
        """
        entry = Entry(entry)
        if ctx.mode is not entry.mode:
            raise ValueError(
                f"entry {entry.value} runs in {entry.mode.value} mode, ctx says {ctx.mode.value}"
            )
        limits = limits or agent.limits
        from veilnet.sandbox._bridge import failure
        from veilnet.sandbox.errors import SandboxError

        try:
            canonical_json(payload, max_bytes=limits.payload_bytes, what="payload")
        except SandboxError as exc:
            return failure(exc, fuel_used=0, host_calls=0)
        outcome: Outcome = self._engine(agent.language).invoke(
            agent._compiled, entry, payload, host, ctx, limits
        )
        if not isinstance(outcome, Outcome):
            raise SandboxInternalError("engine returned no outcome")
        return outcome

    def close(self) -> None:
        """Stop the engines (Monty workers, wasm stores)."""
        with self._lock:
            for engine in (self._py, self._js):
                if engine is not None:
                    engine.close()
            self._py = self._js = None

    def __enter__(self) -> AgentRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
