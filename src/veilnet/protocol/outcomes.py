"""Typed outcomes of agent calls: what a command, an init or a query produced, as one record.
The core stores them per command, answers outcome queries with them; the SDK reads their JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["OutcomeError", "OutcomeRecord"]


@dataclass(frozen=True, slots=True, kw_only=True)
class OutcomeError:
    """Why a call failed: a stable ``code`` (from the error class that owns it) and a message."""

    code: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OutcomeRecord:
    """One call's outcome. On success ``error`` is None; on failure ``result`` is None and
    ``events`` is empty. ``sender`` is who may read it (never part of the public JSON)."""

    ok: bool
    sender: bytes | None
    result: Any = None
    error: OutcomeError | None = None
    events: tuple[Any, ...] = ()
    fuel: int = 0

    @classmethod
    def success(
        cls, *, sender: bytes | None, result: Any, events: tuple[Any, ...] | list[Any], fuel: int
    ) -> OutcomeRecord:
        return cls(ok=True, sender=sender, result=result, events=tuple(events), fuel=fuel)

    @classmethod
    def failure(
        cls, code: str, message: str, *, sender: bytes | None = None, fuel: int = 0
    ) -> OutcomeRecord:
        return cls(
            ok=False, sender=sender, error=OutcomeError(code=code, message=message), fuel=fuel
        )

    def to_public(self) -> dict[str, Any]:
        """The JSON shape a client sees: ``{"ok", "result" | "error", "events", "fuel"}``."""
        if self.error is None:
            return {
                "ok": True,
                "result": self.result,
                "events": list(self.events),
                "fuel": self.fuel,
            }
        return {
            "ok": False,
            "error": {"code": self.error.code, "message": self.error.message},
            "events": list(self.events),
            "fuel": self.fuel,
        }

    def to_bytes(self) -> bytes:
        """Canonical JSON (sorted keys) with the sender as hex: what checkpoints keep."""
        value = {**self.to_public(), "sender": None if self.sender is None else self.sender.hex()}
        return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> OutcomeRecord:
        """Inverse of ``to_bytes``; raises ``ValueError`` (or ``KeyError``) on anything else."""
        value: dict[str, Any] = json.loads(raw)
        sender = None if value.get("sender") is None else bytes.fromhex(value["sender"])
        error = value.get("error")
        if error is not None:
            return cls.failure(
                str(error["code"]), str(error["message"]), sender=sender, fuel=int(value["fuel"])
            )
        return cls.success(
            sender=sender,
            result=value.get("result"),
            events=list(value.get("events", [])),
            fuel=int(value["fuel"]),
        )
