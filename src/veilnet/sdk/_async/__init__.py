"""The asynchronous SDK package; ``scripts/unasync.py`` generates its synchronous twin."""

from veilnet.sdk._async._client import AsyncAgent, AsyncClient

__all__ = ["AsyncAgent", "AsyncClient"]
