"""The ChainBackend protocol every chain (embedded, anvil, any JSON-RPC URL) satisfies.
``veilnet.chain.testing.check_chain_backend`` is its conformance suite."""

from __future__ import annotations

from typing import Protocol

from veilnet.chain.rpc import JSONRPCClient

__all__ = ["ChainBackend"]


class ChainBackend(Protocol):
    """A running chain: a JSON-RPC client factory plus dev controls (mine, snapshot, revert)."""

    chain_id: int

    @property
    def dev_accounts(self) -> list[tuple[str, bytes]]: ...

    def client(self) -> JSONRPCClient: ...

    def mine(self, blocks: int = 1) -> int: ...

    def snapshot(self) -> int: ...

    def revert(self, snapshot_id: int) -> bool: ...

    def close(self) -> None: ...
