"""Checks an agent before it is deployed: compiled and its ``init`` run here, as a worker will,
but with nothing around it (no chain, no keys, no secrets, no other agents)."""

from __future__ import annotations

from typing import Any, Final

from veilnet.sandbox.errors import SandboxError

__all__ = ["check_agent"]

_CHECK_ID: Final = "0x" + "00" * 32
_UNDECIDABLE: Final = "no such contract in this cluster"
"""A local check has no other agents: an init that calls one is decided on chain."""


def check_agent(language: str, source: bytes, init: Any) -> tuple[str, str] | None:
    """``(code, message)`` if the agent does not compile or its ``init(init)`` fails; None if
    it would deploy cleanly, as far as a check without the chain can tell."""
    from veilnet.sandbox._runtime import AgentRuntime
    from veilnet.sandbox.testing import MemoryHost

    with AgentRuntime() as runtime:
        host = MemoryHost(runtime)
        try:
            host.deploy(_CHECK_ID, language, source)
        except SandboxError as exc:
            return exc.code, f"does not compile: {exc.message}"
        error = host.run(_CHECK_ID, "init", init).outcome.error
    if error is None or _UNDECIDABLE in error.message:
        return None
    return error.code, f"init fails: {error.code}: {error.message}"
