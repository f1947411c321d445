"""The core's light client: a raw block from the host becomes a Block only after the core proves it.
Header re-hashed, continuity from the trust anchor, finality evidence, receipts trie, logs decoded.

Theory of operation
-------------------
The trusted start is the ``ChainTrust`` anchor in the measured configuration (or the head of a
checkpoint this core sealed itself). Each block must name the hash of the one before, so the
host can neither skip, reorder nor replay a block. The header's hash is computed here from its
RLP, never read from the host. The block is applied only with finality evidence the network's
policy accepts (``sequencer``: the block producer's EIP-712 signature; ``rpc-quorum``: the hash
certified by k of n HTTPS endpoints through TLS ended in this core, see ``quorum``), so a host
cannot build a chain of its own. The receipts trie is rebuilt from every receipt of the block
and must equal the header's receipts root, so no log can be added, dropped, altered or moved;
a block whose logs bloom rules out Registry and Bus logs may come without receipts.
Every failure raises a ``BlockRejected`` subclass before anything is applied.
"""

from __future__ import annotations

import functools
import hmac
from typing import Final

from veilnet.crypto import Address, SignatureInvalid, recover_typed
from veilnet.protocol import chain
from veilnet.protocol import events as ev
from veilnet.protocol.errors import BlockRejected, BlockUnproven, FinalityUnproven
from veilnet.runtime.config import CoreConfig
from veilnet.runtime.quorum import QuorumPolicy, RPCEndpoint

__all__ = ["MAX_CERTIFIED", "prove_block", "quorum_policy", "remember_certified"]

MAX_CERTIFIED: Final = 4_096
"""Block hashes an ``rpc-quorum`` core keeps certified ahead of its head."""


def prove_block(
    config: CoreConfig,
    head: ev.BlockHeader | None,
    raw: chain.ChainBlock,
    *,
    certified: dict[int, bytes] | None = None,
) -> ev.Block:
    """The verified block, or an exception; nothing about the core changes either way.

    Args:
        config: the network's configuration, with its ``chain_trust``.
        head: the last block this core applied (None: start from the trust anchor).
        raw: the block as the host handed it in.
        certified: under ``rpc-quorum``, block hashes this core certified itself.

    Raises:
        BlockRejected: not the next block after ``head`` (or the anchor).
        FinalityUnproven: no finality evidence the policy accepts.
        BlockUnproven: the header, receipts or logs do not prove out.
    """
    trust = config.chain_trust
    try:
        fields = raw.fields
    except chain.ChainDataInvalid as exc:
        raise BlockUnproven(f"header: {exc.message}") from exc
    expected_number, expected_parent = (
        (trust.anchor_number + 1, trust.anchor_hash)
        if head is None
        else (head.number + 1, head.hash)
    )
    if fields.number != expected_number or not hmac.compare_digest(
        fields.parent_hash, expected_parent
    ):
        raise BlockRejected(
            "block does not extend the applied chain",
            expected_number=expected_number,
            got_number=fields.number,
        )
    _check_finality(config, fields, raw.evidence, certified)
    events = _events(config, fields, raw.receipts)
    return ev.Block(header=fields.as_header(), events=events)


def _check_finality(
    config: CoreConfig,
    fields: chain.HeaderFields,
    evidence: bytes,
    certified: dict[int, bytes] | None,
) -> None:
    trust = config.chain_trust
    if trust.policy == chain.POLICY_SEQUENCER:
        try:
            signer = recover_typed(
                evidence,
                config.response_domain,
                chain.SEQUENCED_BLOCK_TYPE,
                {"number": fields.number, "blockHash": fields.hash},
            )
        except (SignatureInvalid, ValueError) as exc:
            raise FinalityUnproven(
                "the sequencer signature does not decode", block=fields.number
            ) from exc
        if not hmac.compare_digest(signer.raw, trust.sequencer):
            raise FinalityUnproven(
                "the block is not signed by the network's sequencer",
                block=fields.number,
                signer=Address(signer.raw).hex,
            )
        return
    found = (certified or {}).get(fields.number)
    if found is None or not hmac.compare_digest(found, fields.hash):
        raise FinalityUnproven("no RPC quorum certified this block's hash", block=fields.number)


def _events(
    config: CoreConfig, fields: chain.HeaderFields, receipts: tuple[bytes, ...]
) -> tuple[ev.ChainEvent, ...]:
    watched = (config.registry, config.bus)
    if not receipts:
        if fields.receipts_root != chain.EMPTY_TRIE_ROOT and chain.bloom_may_contain(
            fields.logs_bloom, watched
        ):
            raise BlockUnproven(
                "the logs bloom calls for the block's receipts and none came",
                block=fields.number,
            )
        return ()
    try:
        root = chain.receipts_root(receipts)
    except (ValueError, TypeError) as exc:
        raise BlockUnproven("receipts do not build a trie", block=fields.number) from exc
    if not hmac.compare_digest(root, fields.receipts_root):
        raise BlockUnproven(
            "receipts do not hash to the header's receipts root", block=fields.number
        )
    try:
        return chain.decode_logs(receipts, registry=config.registry, bus=config.bus)
    except chain.ChainDataInvalid as exc:
        raise BlockUnproven(f"logs: {exc.message}", block=fields.number) from exc


def remember_certified(certified: dict[int, bytes], found: dict[int, bytes], head: int) -> None:
    """Keep newly certified hashes above ``head``, bounded (oldest dropped first)."""
    for number in [n for n in certified if n <= head]:
        del certified[number]
    for number, block_hash in sorted(found.items()):
        if number > head:
            certified[number] = block_hash
    while len(certified) > MAX_CERTIFIED:
        del certified[min(certified)]


@functools.lru_cache(maxsize=8)
def quorum_policy(trust: chain.ChainTrust) -> QuorumPolicy:
    """The ``rpc-quorum`` policy a ``ChainTrust`` names (endpoints as ``host[:port][/path]``)."""
    endpoints = []
    for text in trust.rpc_endpoints:
        location, _, path = text.partition("/")
        host, _, port = location.partition(":")
        endpoints.append(RPCEndpoint(host=host, port=int(port or 443), path="/" + path))
    return QuorumPolicy(
        endpoints=tuple(endpoints),
        threshold=trust.rpc_threshold,
        ca_pem=trust.rpc_ca_pem,
        block_tag=trust.rpc_block_tag,
    )
