"""Veilnet: a confidential compute network for AI agent contracts.
The public surface is small on purpose: the SDK clients, the error tree and a few models."""

from veilnet._version import __version__
from veilnet.errors import InternalError, InvalidInput, PolicyRejected, Unavailable, VeilnetError
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
