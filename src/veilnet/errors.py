"""The root of Veilnet's exception tree and its four branches, split by who is at fault.

Every package derives its own leaves from these branches (see each package's ``errors.py``)::

    VeilnetError
    ├── InvalidInput      untrusted bytes were malformed, forged, replayed or too large (4xx)
    ├── PolicyRejected    well-formed, but a rule forbids it (403/409)
    ├── Unavailable       a dependency (RPC, disk, timeout) failed; retrying may help (503)
    └── InternalError     a bug on our side (500)

Each leaf names a stable ``code`` (what APIs and the CLI print) and an ``http_status``. Messages
never contain key material or plaintext; errors from lower libraries are chained with
``raise ... from exc`` and never cross a package line.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "InternalError",
    "InvalidInput",
    "PolicyRejected",
    "Unavailable",
    "VeilnetError",
    "error_codes",
]


class VeilnetError(Exception):
    """Base of every error Veilnet raises on purpose.

    Attributes:
        code: stable machine-readable identifier, unique per leaf class.
        http_status: the status the worker API answers with.
        details: small, secret-free facts about the failure (shown in JSON errors).
    """

    code: ClassVar[str] = "veilnet_error"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str = "", **details: Any) -> None:
        super().__init__(message or self.__class__.__doc__ or self.code)
        self.message = message or (self.__class__.__doc__ or self.code).strip().splitlines()[0]
        self.details = details

    def to_json(self) -> dict[str, Any]:
        """The error body of the HTTP API: ``{"error": {"code", "message", ...details}}``."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        body.update(self.details)
        return {"error": body}

    def __str__(self) -> str:
        return self.message


class InvalidInput(VeilnetError):
    """Untrusted input was malformed, forged, replayed or oversized."""

    code = "invalid_input"
    http_status = 400


class PolicyRejected(VeilnetError):
    """The input is well-formed but a rule forbids it."""

    code = "policy_rejected"
    http_status = 403


class Unavailable(VeilnetError):
    """A dependency (RPC node, disk, network, timeout) failed; the call may be retried."""

    code = "unavailable"
    http_status = 503


class InternalError(VeilnetError):
    """Veilnet itself is at fault (a bug); please report it."""

    code = "internal_error"
    http_status = 500


def error_codes() -> dict[str, type[VeilnetError]]:
    """Every error class reachable from the tree, keyed by its code (imported packages only)."""
    found: dict[str, type[VeilnetError]] = {}
    stack: list[type[VeilnetError]] = [VeilnetError]
    while stack:
        cls = stack.pop()
        found.setdefault(cls.code, cls)
        stack.extend(cls.__subclasses__())
    return found
