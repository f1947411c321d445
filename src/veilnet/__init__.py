"""Veilnet: a confidential compute network for AI agent contracts.
The public surface is small on purpose: the SDK clients, the error tree and a few models."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from veilnet._version import __version__
from veilnet.errors import InternalError, InvalidInput, PolicyRejected, Unavailable, VeilnetError

if TYPE_CHECKING:
    from veilnet.sdk import AsyncClient, Client

__all__ = [
    "AsyncClient",
    "Client",
    "InternalError",
    "InvalidInput",
    "PolicyRejected",
    "Unavailable",
    "VeilnetError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    # Imported on first use, so `import veilnet.runtime` never loads the SDK's HTTP stack.
    if name in ("Client", "AsyncClient"):
        from veilnet import sdk

        return getattr(sdk, name)
    raise AttributeError(f"module 'veilnet' has no attribute {name!r}")
