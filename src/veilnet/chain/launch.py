"""Starts the chain a devnet or test asks for: ``embedded``, ``anvil``, ``auto`` or a URL.
``auto`` is anvil when its binary is found and the embedded py-evm chain otherwise."""

from __future__ import annotations

from veilnet.chain.anvil import AnvilChain, find_anvil
from veilnet.chain.backends.embedded import EmbeddedChain
from veilnet.chain.backends.rpc import RPCChain
from veilnet.chain.constants import DEFAULT_BLOCK_TIME
from veilnet.chain.interfaces import ChainBackend

__all__ = ["start_chain"]


def start_chain(
    kind: str = "auto",
    *,
    block_time: float | None = DEFAULT_BLOCK_TIME,
    port: int | None = None,
    serve: bool = True,
    host: str = "127.0.0.1",
) -> ChainBackend:
    """Start (or connect to) a chain.

    Args:
        kind: ``"auto"``, ``"embedded"``, ``"anvil"`` or an ``http(s)://`` JSON-RPC URL.
        block_time: seconds per block; ``None`` mines one block per transaction request.
        port: RPC port for anvil / the embedded server (default: a free port).
        serve: also serve the embedded chain over HTTP (its ``url``), for other processes.
        host: the address anvil / the embedded server listens on (and its ``url`` names).

    Raises:
        ChainNotReady: anvil was asked for and cannot start. ValueError: unknown kind.
    """
    if kind.startswith(("http://", "https://")):
        return RPCChain(kind)
    if kind == "auto":
        kind = "anvil" if find_anvil() is not None else "embedded"
    if kind == "anvil":
        return AnvilChain(block_time=block_time, port=port, host=host)
    if kind == "embedded":
        chain = EmbeddedChain(block_time=block_time)
        if serve:
            chain.serve(host=host, port=port or 0)
        return chain
    raise ValueError(f"unknown chain kind {kind!r}: use auto, embedded, anvil or a URL")
