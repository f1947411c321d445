"""A chain reached at any JSON-RPC URL (anvil, geth, an L2); dev controls where the node has them.
``mine``/``snapshot``/``revert`` use the ``evm_*`` methods anvil and the embedded chain share."""

from __future__ import annotations

from veilnet.chain.errors import RPCError
from veilnet.chain.rpc import JSONRPCClient, from_quantity, to_quantity

__all__ = ["RPCChain"]


_MINE_CHUNK = 128


class RPCChain:
    """A JSON-RPC chain endpoint. ``dev_accounts`` is empty unless the caller supplies keys."""

    def __init__(self, url: str, *, dev_accounts: list[tuple[str, bytes]] | None = None) -> None:
        self.url = url
        self._client = JSONRPCClient(url)
        self.dev_accounts = list(dev_accounts or [])
        self.chain_id = from_quantity(self._client.call("eth_chainId"))

    def client(self) -> JSONRPCClient:
        """A fresh client with its own keep-alive connection (one per thread)."""
        return JSONRPCClient(self.url)

    def mine(self, blocks: int = 1) -> int:
        """Mine blocks (dev nodes only: ``anvil_mine`` or ``evm_mine``); returns the head.
        Hundreds of blocks go in chunks: one ``anvil_mine`` of 600 outlasts the RPC timeout."""
        try:
            left = blocks
            while left > 0:
                chunk = min(left, _MINE_CHUNK)
                self._client.call("anvil_mine", to_quantity(chunk))
                left -= chunk
        except RPCError:
            for _ in range(left):
                self._client.call("evm_mine")
        return from_quantity(self._client.call("eth_blockNumber"))

    def snapshot(self) -> int:
        return from_quantity(self._client.call("evm_snapshot"))

    def revert(self, snapshot_id: int) -> bool:
        return bool(self._client.call("evm_revert", to_quantity(snapshot_id)))

    def close(self) -> None:
        self._client.close()
