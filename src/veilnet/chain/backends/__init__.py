"""Chain backends: the embedded py-evm chain and any JSON-RPC node (anvil, geth, an L2).
Both are reached through JSON-RPC, so follower, relay and deploy never care which one runs."""

from veilnet.chain.backends.embedded import EmbeddedChain
from veilnet.chain.backends.rpc import RPCChain

__all__ = ["EmbeddedChain", "RPCChain"]
