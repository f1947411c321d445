"""Proofs over node data: a header's fields hash to its hash, receipts hash to its receipts root.
With these, a host cannot change, drop, reorder or inject a log without the follower noticing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import rlp
from rlp.codec import encode_raw
from rlp.sedes import big_endian_int

from veilnet.chain.errors import HeaderHashMismatch, LogProofFailed
from veilnet.chain.rpc import from_hex, from_quantity
from veilnet.crypto import keccak
from veilnet.protocol.chain import bloom_may_contain
from veilnet.protocol.chain import receipts_root as chain_receipts_root

__all__ = [
    "EMPTY_TRIE_ROOT",
    "bloom_may_contain",
    "encode_receipt",
    "header_hash",
    "header_rlp",
    "receipts_root",
    "state_witness",
    "verify_header",
    "verify_header_rlp",
    "verify_receipts",
]

EMPTY_TRIE_ROOT = keccak(rlp.encode(b""))

# (JSON key, kind): the RLP field order of an execution-layer header, oldest fork first.
_HEADER_FIELDS: tuple[tuple[str, str], ...] = (
    ("parentHash", "bytes"),
    ("sha3Uncles", "bytes"),
    ("miner", "bytes"),
    ("stateRoot", "bytes"),
    ("transactionsRoot", "bytes"),
    ("receiptsRoot", "bytes"),
    ("logsBloom", "bytes"),
    ("difficulty", "int"),
    ("number", "int"),
    ("gasLimit", "int"),
    ("gasUsed", "int"),
    ("timestamp", "int"),
    ("extraData", "bytes"),
    ("mixHash", "bytes"),
    ("nonce", "bytes"),
)
_OPTIONAL_FIELDS: tuple[tuple[str, str], ...] = (
    ("baseFeePerGas", "int"),
    ("withdrawalsRoot", "bytes"),
    ("blobGasUsed", "int"),
    ("excessBlobGas", "int"),
    ("parentBeaconBlockRoot", "bytes"),
    ("requestsHash", "bytes"),
)


def header_rlp(doc: Mapping[str, Any]) -> bytes:
    """The RLP header rebuilt from a JSON-RPC block object (London to Prague): what the core
    re-hashes itself."""
    items: list[Any] = []
    for key, kind in _HEADER_FIELDS:
        items.append(_field(doc[key], kind))
    for key, kind in _OPTIONAL_FIELDS:
        if doc.get(key) is None:
            break
        items.append(_field(doc[key], kind))
    encoded: bytes = rlp.encode(items)
    return encoded


def header_hash(doc: Mapping[str, Any]) -> bytes:
    """keccak256 of the RLP header rebuilt from a JSON-RPC block object."""
    return keccak(header_rlp(doc))


def _field(value: Any, kind: str) -> Any:
    return from_quantity(value) if kind == "int" else from_hex(value)


def verify_header(doc: Mapping[str, Any]) -> bytes:
    """The block hash, after checking the header fields hash to it; else HeaderHashMismatch."""
    return verify_header_rlp(doc)[0]


def verify_header_rlp(doc: Mapping[str, Any]) -> tuple[bytes, bytes]:
    """(block hash, RLP header), after checking the header fields hash to the claimed hash;
    else HeaderHashMismatch. The RLP is what the core re-hashes itself."""
    try:
        claimed = from_hex(doc["hash"])
        encoded = header_rlp(doc)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise HeaderHashMismatch("block header is malformed") from exc
    if keccak(encoded) != claimed:
        raise HeaderHashMismatch(
            "block header fields do not hash to the block hash", block=doc.get("number")
        )
    return claimed, encoded


def encode_receipt(receipt: Mapping[str, Any]) -> bytes:
    """The EIP-2718 bytes of a JSON-RPC receipt, as the receipts trie holds them."""
    status = from_quantity(receipt["status"])
    logs = [
        [from_hex(log["address"]), [from_hex(t) for t in log["topics"]], from_hex(log["data"])]
        for log in receipt["logs"]
    ]
    # bytes and lists only, so ``encode_raw`` (pyrlp's type inference costs as much again)
    body = encode_raw(
        [
            b"\x01" if status == 1 else b"",
            big_endian_int.serialize(from_quantity(receipt["cumulativeGasUsed"])),
            from_hex(receipt["logsBloom"]),
            logs,
        ]
    )
    tx_type = from_quantity(receipt.get("type") or "0x0")
    encoded: bytes = body if tx_type == 0 else bytes([tx_type]) + body
    return encoded


def receipts_root(receipts: Sequence[Mapping[str, Any]]) -> bytes:
    """The receipts trie root of a block's receipts (EIP-2718 typed receipts included)."""
    return chain_receipts_root([encode_receipt(receipt) for receipt in receipts])


def verify_receipts(
    receipts: Sequence[Mapping[str, Any]], *, expected_root: bytes, block_hash: bytes
) -> tuple[bytes, ...]:
    """The receipts' EIP-2718 bytes (what the core rebuilds the trie from), after checking they
    hash to ``expected_root`` and are the block's; else LogProofFailed."""
    try:
        encoded = tuple(encode_receipt(receipt) for receipt in receipts)
        computed = chain_receipts_root(encoded)
        for index, receipt in enumerate(receipts):
            if from_quantity(receipt["transactionIndex"]) != index:
                raise LogProofFailed("receipts out of order")
            if from_hex(receipt["blockHash"]) != block_hash:
                raise LogProofFailed("receipt from another block")
    except LogProofFailed:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise LogProofFailed("receipts are malformed") from exc
    if computed != expected_root:
        raise LogProofFailed("receipts do not match the block's receipts root")
    return encoded


def state_witness(
    client: Any, block: int, address: bytes, slot: bytes | None
) -> tuple[list[bytes], list[bytes]]:
    """What a host hands its core for ``evm.call``: the ``eth_getProof`` nodes of ``address``
    (or of its ``slot``) at ``block``, and, for an account, its code. Unchecked here: the core keys
    each node by its own hash and reaches it only from the block's state root."""
    tag = hex(block)
    args = ("0x" + address.hex(), [] if slot is None else ["0x" + slot.hex()], tag)
    if slot is None:  # an account: its proof and its code, in one round trip
        proof, code_hex = client.batch(
            [("eth_getProof", args), ("eth_getCode", ("0x" + address.hex(), tag))]
        )
        code = from_hex(code_hex)
    else:  # a slot: the core already holds its account (and code) from an earlier round
        proof, code = client.call("eth_getProof", *args), b""
    nodes = [from_hex(node) for node in proof.get("accountProof") or []]
    for item in proof.get("storageProof") or []:
        nodes += [from_hex(node) for node in item.get("proof") or []]
    return nodes, [code] if code else []
