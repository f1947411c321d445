"""The chain follower: yields finalized blocks with their proven, decoded Veilnet events.
Each header is re-hashed, parent hashes must chain, and every log comes from receipts that hash
to the block's receipts root; any failure raises a typed error and yields nothing from that poll.

Finality: block ``n`` is final once ``finality_depth`` blocks are built on top of it
(``head >= n + finality_depth``). Reorgs that replace only younger blocks are never seen; one
that replaces an already-yielded block raises ReorgBeyondFinality. Blocks whose logs bloom
cannot contain the Registry or Bus address are not asked for receipts (the bloom is covered by
the verified header hash, so a host cannot hide logs that way).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from veilnet.chain.constants import DEFAULT_FINALITY_DEPTH, MAX_BLOCKS_PER_POLL
from veilnet.chain.errors import LogProofFailed, ParentHashMismatch, ReorgBeyondFinality
from veilnet.chain.model import Block, BlockHeader, ChainAddresses, ChainEvent, RawLog, decode_log
from veilnet.chain.proofs import (
    EMPTY_TRIE_ROOT,
    bloom_may_contain,
    verify_header,
    verify_header_rlp,
    verify_receipts,
)
from veilnet.chain.rpc import JSONRPCClient, from_hex, from_quantity, to_quantity

__all__ = ["Follower"]


class Follower:
    """Follows one network's contracts from ``start_block``.

    Args:
        client: JSON-RPC client of the node (any backend).
        addresses: the network's Registry and Bus.
        start_block: first block to yield (e.g. the deployment's genesis block, or the block
            after a checkpoint).
        finality_depth: confirmations a block needs before it is yielded (default 2).
        parent_hash: hash of block ``start_block - 1`` if known (from a checkpoint); otherwise
            it is read from the node at the first poll.
        decode_events: decode the Registry and Bus logs into ``Block.events``; a worker host
            turns it off (its core decodes the raw receipts itself).
    """

    def __init__(
        self,
        client: JSONRPCClient,
        addresses: ChainAddresses,
        *,
        start_block: int,
        finality_depth: int = DEFAULT_FINALITY_DEPTH,
        parent_hash: bytes | None = None,
        max_blocks: int = MAX_BLOCKS_PER_POLL,
        decode_events: bool = True,
    ) -> None:
        if start_block < 0 or finality_depth < 0 or max_blocks < 1:
            raise ValueError("start_block, finality_depth must be >= 0 and max_blocks >= 1")
        self._client = client
        self.addresses = addresses
        self.finality_depth = finality_depth
        self.next_block = start_block
        self.last_hash = parent_hash
        self._max_blocks = max_blocks
        self._decode_events = decode_events
        self._watch = (addresses.registry.raw, addresses.bus.raw)

    def poll(self) -> list[Block]:
        """Every block finalized since the last poll (at most ``max_blocks``), in order.

        Raises:
            HeaderHashMismatch, LogProofFailed, ParentHashMismatch, EventDecodeError: the node's
                data does not prove out; the follower's position is unchanged.
            ReorgBeyondFinality: an already-yielded block was replaced.
            RPCUnavailable, RPCError: the node failed; retry later.
        """
        head = from_quantity(self._client.call("eth_blockNumber"))
        final = head - self.finality_depth
        if final < self.next_block:
            return []
        end = min(final, self.next_block + self._max_blocks - 1)
        first = self.next_block
        numbers = list(range(first, end + 1))
        calls: list[tuple[str, list[Any]]] = []
        if self.last_hash is None and first > 0:
            calls.append(("eth_getBlockByNumber", [to_quantity(first - 1), False]))
        calls += [("eth_getBlockByNumber", [to_quantity(n), False]) for n in numbers]
        docs = self._client.batch(calls)
        parent = self.last_hash
        if self.last_hash is None and first > 0:
            parent = verify_header(_require(docs.pop(0), first - 1))
        headers: list[tuple[bytes, BlockHeader, bytes]] = []
        for number, doc in zip(numbers, docs, strict=True):
            doc = _require(doc, number)
            block_hash, raw_header = verify_header_rlp(doc)
            if from_quantity(doc["number"]) != number:
                raise ParentHashMismatch("node returned the wrong block number", block=number)
            parent_hash = from_hex(doc["parentHash"])
            if parent is not None and parent_hash != parent:
                if number == first and self.last_hash is not None:
                    raise ReorgBeyondFinality("a finalized block was replaced", block=number - 1)
                raise ParentHashMismatch("parent hash does not chain", block=number)
            header = BlockHeader(
                number=number,
                hash=block_hash,
                parent_hash=parent_hash,
                timestamp=from_quantity(doc["timestamp"]),
                receipts_root=from_hex(doc["receiptsRoot"]),
            )
            headers.append((raw_header, header, from_hex(doc["logsBloom"])))
            parent = block_hash
        wanted = [
            header.number
            for _, header, bloom in headers
            if header.receipts_root != EMPTY_TRIE_ROOT and bloom_may_contain(bloom, self._watch)
        ]
        receipts_by_block: dict[int, Any] = {}
        if wanted:
            fetched = self._client.batch(
                [("eth_getBlockReceipts", [to_quantity(n)]) for n in wanted]
            )
            receipts_by_block = dict(zip(wanted, fetched, strict=True))
        blocks = []
        for raw_header, header, _ in headers:
            receipts = receipts_by_block.get(header.number)
            events: tuple[ChainEvent, ...] = ()
            raw_receipts: tuple[bytes, ...] = ()
            if receipts is not None:
                if not isinstance(receipts, list):
                    raise LogProofFailed("node returned no receipts", block=header.number)
                raw_receipts = verify_receipts(
                    receipts, expected_root=header.receipts_root, block_hash=header.hash
                )
                if self._decode_events:
                    events = self._events(header, receipts)
            elif header.receipts_root != EMPTY_TRIE_ROOT and header.number in wanted:
                raise LogProofFailed("node returned no receipts", block=header.number)
            blocks.append(
                Block(
                    header=header,
                    events=events,
                    raw_header=raw_header,
                    raw_receipts=raw_receipts,
                )
            )
        # Commit the position only after every block of this poll proved out.
        self.next_block = end + 1
        self.last_hash = parent
        return blocks

    def _events(self, header: BlockHeader, receipts: list[Any]) -> tuple[ChainEvent, ...]:
        out = []
        position = 0
        for receipt in receipts:
            if from_quantity(receipt["status"]) != 1:
                position += len(receipt["logs"])
                continue
            for log in receipt["logs"]:
                address = from_hex(log["address"])
                index = position
                position += 1
                if address not in self._watch:
                    continue
                raw = RawLog(
                    address=address,
                    topics=tuple(from_hex(t) for t in log["topics"]),
                    data=from_hex(log["data"]),
                    block_number=header.number,
                    log_index=index,
                    tx_hash=from_hex(receipt["transactionHash"]),
                )
                out.append(decode_log(raw, self.addresses))
        return tuple(out)

    def follow(
        self,
        *,
        poll_interval: float = 0.25,
        stop: threading.Event | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Iterator[Block]:
        """Yield blocks forever (until ``stop`` is set), polling every ``poll_interval`` s."""
        while stop is None or not stop.is_set():
            blocks = self.poll()
            yield from blocks
            if not blocks:
                if stop is not None:
                    stop.wait(poll_interval)
                else:
                    sleep(poll_interval)


def _require(doc: Any, number: int) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise ParentHashMismatch("node does not have the block", block=number)
    return doc
