"""Raw chain data as the core receives it: RLP headers, EIP-2718 receipts, finality evidence.
Pure encoders and decoders shared by the core (which verifies), the host and the test ledger.

Theory of operation
-------------------
The host hands the core a ``ChainBlock``: the block's RLP header, every receipt of the block
(or none, when the header's logs bloom shows no log of the Registry or the Bus), and the
finality evidence the network's ``ChainTrust`` policy asks for. The core re-hashes the header,
rebuilds the receipts trie, checks it against the header's ``receiptsRoot`` and decodes the
Registry and Bus logs itself (``decode_logs``). Nothing the host decoded or checked counts.

Because every receipt of a block is rebuilt into the trie, a host cannot drop, add, alter or
reorder a log inside a block; because each header must name its predecessor's hash from a
trusted anchor on, it cannot drop, reorder or replay a block. Finality evidence decides which
of several valid chains is the network's.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

import rlp
from eth_abi.abi import encode as abi_encode
from eth_abi.exceptions import DecodingError, EncodingError
from rlp.codec import encode_raw
from rlp.sedes import big_endian_int

from veilnet.codec import Record, decode_event_data, record
from veilnet.crypto import Address, KeyInvalid, MessageType, keccak
from veilnet.errors import InvalidInput
from veilnet.protocol import events as ev

__all__ = [
    "EMPTY_TRIE_ROOT",
    "EVENT_ABI",
    "MAX_HEADER_BYTES",
    "MAX_RECEIPTS",
    "POLICY_RPC_QUORUM",
    "POLICY_SEQUENCER",
    "SEQUENCED_BLOCK_TYPE",
    "ChainBlock",
    "ChainDataInvalid",
    "ChainTrust",
    "HeaderFields",
    "LogEntry",
    "bloom_may_contain",
    "bloom_of",
    "decode_header",
    "decode_logs",
    "decode_receipt",
    "encode_event",
    "encode_header",
    "encode_receipt",
    "event_topic",
    "ordered_trie_root",
    "receipts_root",
]

EMPTY_TRIE_ROOT: Final = keccak(rlp.encode(b""))
MAX_HEADER_BYTES: Final = 8 * 1024
"""Largest RLP header the core decodes (mainnet headers are ~600 bytes)."""
MAX_RECEIPTS: Final = 20_000
"""Most receipts one block may carry (a 30M-gas block holds at most 1,428 transfers)."""
MAX_LOGS_PER_RECEIPT: Final = 4_096
MAX_LOG_DATA: Final = 128 * 1024
"""Largest Registry/Bus log data decoded (the biggest event, ContractDeployed, is ~29 KiB)."""
_BLOOM_BYTES: Final = 256
_HEADER_MIN_FIELDS: Final = 15
_HEADER_MAX_FIELDS: Final = 21

POLICY_SEQUENCER: Final = "sequencer"
"""The block producer signs each block it will not reorg (``SEQUENCED_BLOCK_TYPE``)."""
POLICY_RPC_QUORUM: Final = "rpc-quorum"
"""k of n named HTTPS JSON-RPC endpoints report the same finalized hash (TLS in the core)."""
POLICIES: Final = (POLICY_SEQUENCER, POLICY_RPC_QUORUM)

SEQUENCED_BLOCK_TYPE: Final = MessageType(
    "SequencedBlock", (("number", "uint64"), ("blockHash", "bytes32"))
)
"""What a ``sequencer`` signs, EIP-712 under the network's Registry domain (chain id bound), so
two signed hashes at one height are evidence a contract can check with ``ecrecover``."""


class ChainDataInvalid(InvalidInput):
    """Raw chain data does not decode: a header, receipt or log is malformed or oversized."""

    code = "chain_data_invalid"


# ---- records crossing the enclave boundary ------------------------------------------------


@record("chain.trust")
@dataclass(frozen=True, slots=True, kw_only=True)
class ChainTrust(Record):
    """The chain-trust policy of a network: where the core starts and what makes a block final.

    Part of the measured enclave configuration, so a host cannot swap it.
    """

    anchor_number: int
    """The last block before the network's first: the core's first block is the next one."""
    anchor_hash: bytes
    policy: str
    """``POLICY_SEQUENCER`` or ``POLICY_RPC_QUORUM``."""
    anchor_timestamp: int = 0
    """The anchor block's time: the core's clock before its first block (TLS certificate
    validity under ``rpc-quorum`` is checked against it, never against the host's clock)."""
    sequencer: bytes = b""
    """``sequencer``: the 20-byte address whose signature makes a block final."""
    rpc_endpoints: tuple[str, ...] = ()
    """``rpc-quorum``: ``host[:port][/path]`` of each HTTPS JSON-RPC endpoint."""
    rpc_threshold: int = 0
    rpc_ca_pem: bytes = b""
    """``rpc-quorum``: the CA bundle the endpoints' certificates must chain to."""
    rpc_block_tag: str = "finalized"

    def __post_init__(self) -> None:
        if self.anchor_number < 0 or len(self.anchor_hash) != 32:
            raise ValueError("the trust anchor is a block number and a 32-byte hash")
        if self.policy == POLICY_SEQUENCER:
            if len(self.sequencer) != 20:
                raise ValueError("the sequencer policy names a 20-byte sequencer address")
        elif self.policy == POLICY_RPC_QUORUM:
            if not 1 <= self.rpc_threshold <= len(self.rpc_endpoints) or not self.rpc_ca_pem:
                raise ValueError("rpc-quorum needs endpoints, 1 <= threshold <= n and a CA bundle")
            if not self.rpc_ca_pem.isascii():
                raise ValueError("the rpc-quorum CA bundle must be PEM text")
        else:
            raise ValueError(f"unknown chain-trust policy {self.policy!r}")

    def to_json(self) -> dict[str, Any]:
        """The ``chain_trust`` entry of ``network.json``."""
        doc: dict[str, Any] = {
            "policy": self.policy,
            "anchor_number": self.anchor_number,
            "anchor_hash": "0x" + self.anchor_hash.hex(),
            "anchor_timestamp": self.anchor_timestamp,
        }
        if self.policy == POLICY_SEQUENCER:
            doc["sequencer"] = Address(self.sequencer).hex
        else:
            doc["rpc_endpoints"] = list(self.rpc_endpoints)
            doc["rpc_threshold"] = self.rpc_threshold
            doc["rpc_ca_pem"] = self.rpc_ca_pem.decode()
            doc["rpc_block_tag"] = self.rpc_block_tag
        return doc

    @classmethod
    def from_json(cls, doc: Any) -> ChainTrust:
        """Parse a ``network.json`` ``chain_trust`` entry. Raises ValueError."""
        if not isinstance(doc, dict):
            raise ValueError("chain_trust must be an object")
        try:
            anchor_hash = bytes.fromhex(str(doc["anchor_hash"]).removeprefix("0x"))
            sequencer = doc.get("sequencer")
            endpoints = doc.get("rpc_endpoints", [])
            if not isinstance(endpoints, list):
                raise ValueError("chain_trust.rpc_endpoints must be a list")
            return cls(
                anchor_number=int(doc["anchor_number"]),
                anchor_hash=anchor_hash,
                anchor_timestamp=int(doc.get("anchor_timestamp", 0)),
                policy=str(doc["policy"]),
                sequencer=b"" if sequencer is None else Address.parse(str(sequencer)).raw,
                rpc_endpoints=tuple(str(e) for e in endpoints),
                rpc_threshold=int(doc.get("rpc_threshold", 0)),
                rpc_ca_pem=str(doc.get("rpc_ca_pem", "")).encode(),
                rpc_block_tag=str(doc.get("rpc_block_tag", "finalized")),
            )
        except (KeyError, TypeError, KeyInvalid) as exc:
            raise ValueError(f"chain_trust is missing or mistypes a field: {exc}") from exc


@record("chain.block")
@dataclass(frozen=True, slots=True, kw_only=True)
class ChainBlock(Record):
    """One block as the node served it; the core believes none of it before checking."""

    header: bytes
    """The RLP-encoded header (its keccak256 is the block hash)."""
    receipts: tuple[bytes, ...] = ()
    """Every receipt of the block in order (EIP-2718 encoding), or none when the header's logs
    bloom rules out any Registry or Bus log."""
    evidence: bytes = b""
    """Finality evidence: under ``sequencer`` the 65-byte signature over the block."""

    @property
    def fields(self) -> HeaderFields:
        """The decoded header (raises ChainDataInvalid)."""
        return decode_header(self.header)


# ---- headers ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class HeaderFields:
    """What the core reads from a header; ``hash`` is computed, never taken from the host."""

    hash: bytes
    parent_hash: bytes
    number: int
    timestamp: int
    receipts_root: bytes
    logs_bloom: bytes
    state_root: bytes = b""
    """What ``evm.call`` proves chain state against (with the fields below, its block context)."""
    coinbase: bytes = b""
    gas_limit: int = 0
    mix_hash: bytes = b""
    """``prevrandao`` since the merge."""
    base_fee: int | None = None

    def as_header(self) -> ev.BlockHeader:
        return ev.BlockHeader(
            number=self.number,
            hash=self.hash,
            parent_hash=self.parent_hash,
            timestamp=self.timestamp,
        )


def _uint(value: Any, name: str, max_bytes: int = 8) -> int:
    if not isinstance(value, bytes) or len(value) > max_bytes or value[:1] == b"\x00":
        raise ChainDataInvalid(f"header field {name} is not a canonical integer")
    return int.from_bytes(value, "big")


def _fixed(value: Any, name: str, length: int) -> bytes:
    if not isinstance(value, bytes) or len(value) != length:
        raise ChainDataInvalid(f"header field {name} is not {length} bytes")
    return value


def decode_header(data: bytes) -> HeaderFields:
    """Decode an RLP header (Frontier to Prague layouts) and hash it.

    Raises:
        ChainDataInvalid: not an RLP list of 15..21 byte strings, or a field of the wrong size.
    """
    if not isinstance(data, bytes) or len(data) > MAX_HEADER_BYTES:
        raise ChainDataInvalid("header is not bytes or is too large")
    items = _rlp_decode(data, max_depth=1, what="header")
    if (
        not isinstance(items, list)
        or not _HEADER_MIN_FIELDS <= len(items) <= _HEADER_MAX_FIELDS
        or not all(isinstance(item, bytes) for item in items)
    ):
        raise ChainDataInvalid("header is not a list of 15..21 byte strings")
    return HeaderFields(
        hash=keccak(data),
        parent_hash=_fixed(items[0], "parentHash", 32),
        receipts_root=_fixed(items[5], "receiptsRoot", 32),
        logs_bloom=_fixed(items[6], "logsBloom", _BLOOM_BYTES),
        number=_uint(items[8], "number"),
        timestamp=_uint(items[11], "timestamp"),
        state_root=_fixed(items[3], "stateRoot", 32),
        coinbase=_fixed(items[2], "coinbase", 20),
        gas_limit=_uint(items[9], "gasLimit"),
        mix_hash=_fixed(items[13], "mixHash", 32),
        base_fee=_uint(items[15], "baseFeePerGas", 32) if len(items) > 15 else None,
    )


def _rlp_decode(data: bytes, *, max_depth: int, what: str) -> Any:
    """``rlp.decode`` after a flat scan bounds the list nesting: pyrlp descends recursively, and
    hostile bytes nested thousands deep would otherwise exhaust the stack instead of failing."""
    _check_nesting(data, max_depth, what)
    try:
        return rlp.decode(data, strict=True)
    except (rlp.exceptions.DecodingError, RecursionError) as exc:
        raise ChainDataInvalid(f"{what} is not RLP") from exc


def _check_nesting(data: bytes, max_depth: int, what: str) -> None:
    ends: list[int] = []  # where each open list ends
    position = 0
    while position < len(data):
        while ends and position >= ends[-1]:
            ends.pop()
        prefix = data[position]
        if prefix < 0x80:
            position += 1
        elif prefix <= 0xB7:
            position += 1 + prefix - 0x80
        elif prefix <= 0xBF:
            size = prefix - 0xB7
            position += 1 + size + int.from_bytes(data[position + 1 : position + 1 + size], "big")
        else:
            short = prefix <= 0xF7
            size = 0 if short else prefix - 0xF7
            length = (
                prefix - 0xC0
                if short
                else int.from_bytes(data[position + 1 : position + 1 + size], "big")
            )
            ends.append(position + 1 + size + length)
            position += 1 + size
            if len(ends) > max_depth:
                raise ChainDataInvalid(f"{what} nests lists deeper than {max_depth}")


def encode_header(
    *,
    parent_hash: bytes,
    number: int,
    timestamp: int,
    receipts_root: bytes = EMPTY_TRIE_ROOT,
    logs_bloom: bytes = b"\x00" * _BLOOM_BYTES,
    extra: Sequence[bytes] = (),
) -> bytes:
    """A London-layout RLP header with the given fields and fixed others (for models and tests;
    a real chain's headers come from its node)."""
    zero32 = b"\x00" * 32
    items: list[Any] = [
        parent_hash,
        keccak(rlp.encode([])),  # ommers hash of an empty list
        b"\x00" * 20,
        zero32,
        EMPTY_TRIE_ROOT,
        receipts_root,
        logs_bloom,
        0,
        number,
        30_000_000,
        0,
        timestamp,
        b"veil",
        zero32,
        b"\x00" * 8,
        1,
        *extra,
    ]
    encoded: bytes = rlp.encode(items)
    return encoded


# ---- receipts and logs --------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class LogEntry:
    address: bytes
    topics: tuple[bytes, ...]
    data: bytes


def encode_receipt(
    *, status: bool, cumulative_gas: int, logs: Sequence[LogEntry], tx_type: int = 2
) -> bytes:
    """The EIP-2718 receipt encoding the receipts trie commits to."""
    body: bytes = rlp.encode(
        [
            b"\x01" if status else b"",
            cumulative_gas,
            bloom_of(logs),
            [[log.address, list(log.topics), log.data] for log in logs],
        ]
    )
    return body if tx_type == 0 else bytes([tx_type]) + body


def decode_receipt(data: bytes) -> tuple[bool, tuple[LogEntry, ...]]:
    """(succeeded, logs) of one EIP-2718 receipt. Raises ChainDataInvalid."""
    if not isinstance(data, bytes) or not data:
        raise ChainDataInvalid("receipt is empty")
    # A typed receipt starts with its type byte (< 0x7f); a legacy one with an RLP list (>= 0xc0).
    body = data[1:] if data[0] <= 0x7F else data
    items = _rlp_decode(body, max_depth=4, what="receipt")
    if not isinstance(items, list) or len(items) != 4 or not isinstance(items[3], list):
        raise ChainDataInvalid("receipt is not [status, gas, bloom, logs]")
    if len(items[3]) > MAX_LOGS_PER_RECEIPT:
        raise ChainDataInvalid("receipt has too many logs")
    logs = []
    for entry in items[3]:
        if (
            not isinstance(entry, list)
            or len(entry) != 3
            or not isinstance(entry[0], bytes)
            or len(entry[0]) != 20
            or not isinstance(entry[1], list)
            or len(entry[1]) > 4
            or not all(isinstance(t, bytes) and len(t) == 32 for t in entry[1])
            or not isinstance(entry[2], bytes)
        ):
            raise ChainDataInvalid("receipt log is malformed")
        logs.append(LogEntry(address=entry[0], topics=tuple(entry[1]), data=entry[2]))
    # Byzantium on: status 1 or empty; before it a 32-byte state root (a success).
    status = items[0]
    succeeded = status == b"\x01" or (isinstance(status, bytes) and len(status) == 32)
    return succeeded, tuple(logs)


def receipts_root(receipts: Sequence[bytes]) -> bytes:
    """The receipts trie root over encoded receipts, keyed by RLP(index)."""
    return ordered_trie_root(
        [
            (encode_raw(big_endian_int.serialize(index)), receipt)
            for index, receipt in enumerate(receipts)
        ]
    )


def ordered_trie_root(items: Sequence[tuple[bytes, bytes]]) -> bytes:
    """The Merkle-Patricia root of a whole key/value set, built bottom-up in one pass.

    Equal to inserting every pair into ``trie.HexaryTrie`` (a test checks it), but without its
    node database and repeated node rewrites: a block's trie is built once, never updated, so
    each node is hashed exactly once (as geth's StackTrie does).
    """
    if not items:
        return EMPTY_TRIE_ROOT
    nibbled = sorted((_nibbles(key), value) for key, value in items)
    for (key, _), (following, _) in itertools.pairwise(nibbled):
        if key == following:
            raise ValueError("duplicate trie key")
    # Trie nodes hold only bytes and lists: ``encode_raw`` skips pyrlp's per-item type
    # inference, which took about half of the time of a block's receipts root.
    return keccak(encode_raw(_trie_node(nibbled, 0)))


def _nibbles(key: bytes) -> bytes:
    return bytes(half for byte in key for half in (byte >> 4, byte & 0x0F))


def _hex_prefix(nibbles: bytes, *, leaf: bool) -> bytes:
    flag = 2 if leaf else 0
    odd = len(nibbles) % 2
    nibbles = (bytes([flag + 1]) if odd else bytes([flag, 0])) + nibbles
    return bytes((nibbles[i] << 4) | nibbles[i + 1] for i in range(0, len(nibbles), 2))


def _trie_ref(node: list[Any]) -> Any:
    """How a parent names a child: the node itself under 32 encoded bytes, else its hash."""
    encoded = encode_raw(node)
    return node if len(encoded) < 32 else keccak(encoded)


def _trie_node(items: list[tuple[bytes, bytes]], depth: int) -> list[Any]:
    """The node holding ``items`` (sorted, distinct nibble keys sharing ``depth`` nibbles)."""
    if len(items) == 1:
        key, value = items[0]
        return [_hex_prefix(key[depth:], leaf=True), value]
    first, last = items[0][0], items[-1][0]
    shared = 0
    while (
        depth + shared < min(len(first), len(last))
        and first[depth + shared] == last[depth + shared]
    ):
        shared += 1
    if shared:
        branch = _trie_branch(items, depth + shared)
        return [_hex_prefix(first[depth : depth + shared], leaf=False), _trie_ref(branch)]
    return _trie_branch(items, depth)


def _trie_branch(items: list[tuple[bytes, bytes]], depth: int) -> list[Any]:
    node: list[Any] = [b""] * 17
    if len(items[0][0]) == depth:  # a key that ends here (sorted first) is the branch's value
        node[16] = items[0][1]
        items = items[1:]
    start = 0
    while start < len(items):
        nibble = items[start][0][depth]
        end = start
        while end < len(items) and items[end][0][depth] == nibble:
            end += 1
        node[nibble] = _trie_ref(_trie_node(items[start:end], depth + 1))
        start = end
    return node


def _bloom_bits(item: bytes) -> Iterable[int]:
    digest = keccak(item)
    return (((digest[i] << 8) | digest[i + 1]) & 2047 for i in (0, 2, 4))


def bloom_of(logs: Iterable[LogEntry]) -> bytes:
    """The 2048-bit logs bloom of some logs (addresses and topics)."""
    value = 0
    for log in logs:
        for item in (log.address, *log.topics):
            for bit in _bloom_bits(item):
                value |= 1 << bit
    return value.to_bytes(_BLOOM_BYTES, "big")


def bloom_may_contain(bloom: bytes, items: Iterable[bytes]) -> bool:
    """Whether a logs bloom may contain any of ``items`` (addresses or topics)."""
    value = int.from_bytes(bloom, "big")
    return any(all(value >> bit & 1 for bit in _bloom_bits(item)) for item in items)


# ---- the Registry and Bus events ----------------------------------------------------------

_REGISTRY: Final = "Registry"
_BUS: Final = "Bus"


def _wire_type(abi_type: str) -> str:
    """How the core reads a field: a ``string`` as the ``bytes`` it is encoded alike, because
    Vyper does not check UTF-8, and a strict decode of a string someone registered with
    invalid bytes would make a real block undecodable and halt every core that follows it."""
    return "bytes" if abi_type == "string" else abi_type


@dataclass(frozen=True, slots=True)
class _EventABI:
    name: str
    contract: str
    inputs: tuple[tuple[str, str, bool], ...]
    """(field, ABI type, indexed), in declaration order."""
    record: type[ev.ChainEvent] | None
    """The core's record, or None for an event the core does not consume."""
    topic0: bytes = b""
    indexed: tuple[tuple[str, str], ...] = ()
    data: tuple[tuple[str, str], ...] = ()
    wire_types: tuple[str, ...] = ()
    """How the core reads the data fields (``_wire_type``)."""

    def __post_init__(self) -> None:
        signature = f"{self.name}({','.join(t for _, t, _ in self.inputs)})"
        object.__setattr__(self, "topic0", keccak(signature.encode()))
        object.__setattr__(self, "indexed", tuple((n, t) for n, t, i in self.inputs if i))
        object.__setattr__(self, "data", tuple((n, t) for n, t, i in self.inputs if not i))
        object.__setattr__(self, "wire_types", tuple(_wire_type(t) for _, t in self.data))


def _abi(
    contract: str, name: str, *inputs: tuple[str, str, bool], consumed: bool = True
) -> _EventABI:
    found = getattr(ev, name, None) if consumed else None
    return _EventABI(name=name, contract=contract, inputs=inputs, record=found)


_I, _D = True, False
_QUOTED: Final = (
    ("quote_hash", "bytes32", _D),
    ("collateral_hash", "bytes32", _D),
    ("quote", "bytes", _D),
    ("attested_block", "uint64", _D),
    ("attested_hash", "bytes32", _D),
    ("registration", "bytes32", _D),
)
"""The fields of a quote on chain, in ``WorkerRegistered`` and ``WorkerReattested`` alike."""
EVENT_ABI: Final[tuple[_EventABI, ...]] = (
    _abi(_REGISTRY, "BusSet", ("bus", "address", _I), consumed=False),
    _abi(_REGISTRY, "MeasurementSet", ("measurement", "bytes32", _I), ("allowed", "bool", _D)),
    _abi(_REGISTRY, "GatekeeperAdded", ("gatekeeper", "address", _I)),
    _abi(_REGISTRY, "GatekeeperRemoved", ("gatekeeper", "address", _I)),
    _abi(
        _REGISTRY,
        "WorkerRegistered",
        ("worker", "address", _I),
        ("operator", "address", _I),
        ("hpke_key", "bytes", _D),
        ("tee_kind", "uint8", _D),
        ("measurement", "bytes32", _D),
        *_QUOTED,
        ("api_url", "string", _D),
    ),
    _abi(
        _REGISTRY,
        "WorkerEndorsed",
        ("worker", "address", _I),
        ("confidence", "uint8", _D),
        ("registration", "bytes32", _D),
        ("valid_until", "uint64", _D),
    ),
    _abi(
        _REGISTRY,
        "WorkerReattested",
        ("worker", "address", _I),
        *_QUOTED,
    ),
    _abi(
        _REGISTRY,
        "WorkerKeyPublished",
        ("worker", "address", _I),
        ("index", "uint64", _D),
        ("public_key", "bytes", _D),
    ),
    _abi(
        _REGISTRY,
        "HeartbeatRecorded",
        ("worker", "address", _I),
        ("height", "uint64", _D),
        ("boot_id", "bytes32", _D),
        ("sealed_height", "uint64", _D),
    ),
    _abi(_REGISTRY, "WorkerFlagged", ("worker", "address", _I), ("reason", "uint8", _D)),
    _abi(
        _REGISTRY,
        "ReplicaDiverged",
        ("cluster_id", "bytes32", _I),
        ("worker", "address", _I),
        ("height", "uint64", _D),
        ("commitment", "bytes32", _D),
        ("majority", "bytes32", _D),
    ),
    _abi(
        _REGISTRY,
        "MasterKeySet",
        ("gatekeeper", "address", _I),
        ("key_address", "address", _I),
        ("public_key", "bytes", _D),
    ),
    _abi(_REGISTRY, "RotationLocked", ("rotation", "uint256", _I), ("attempt", "uint256", _D)),
    _abi(
        _REGISTRY,
        "RotationProposed",
        ("rotation", "uint256", _I),
        ("proposer", "address", _I),
        ("key_address", "address", _D),
        ("public_key", "bytes", _D),
    ),
    _abi(
        _REGISTRY,
        "RotationConfirmed",
        ("rotation", "uint256", _I),
        ("gatekeeper", "address", _I),
        ("confirmations", "uint256", _D),
    ),
    _abi(
        _REGISTRY,
        "MasterKeyRotated",
        ("rotation", "uint256", _I),
        ("key_address", "address", _I),
        ("public_key", "bytes", _D),
    ),
    _abi(_REGISTRY, "RotationAborted", ("rotation", "uint256", _I)),
    _abi(_REGISTRY, "RotationThresholdSet", ("threshold", "uint256", _D), consumed=False),
    _abi(_REGISTRY, "RegistrationDepositSet", ("amount", "uint256", _D), consumed=False),
    _abi(
        _REGISTRY,
        "ClusterCreated",
        ("cluster_id", "bytes32", _I),
        ("owner", "address", _I),
        ("suite", "uint8", _D),
    ),
    _abi(_REGISTRY, "ClusterWorkerAdded", ("cluster_id", "bytes32", _I), ("worker", "address", _I)),
    _abi(
        _REGISTRY,
        "ClusterWorkerRemoved",
        ("cluster_id", "bytes32", _I),
        ("worker", "address", _I),
    ),
    _abi(
        _REGISTRY,
        "ClusterKeySet",
        ("cluster_id", "bytes32", _I),
        ("epoch", "uint64", _D),
        ("key_address", "address", _I),
        ("public_key", "bytes", _D),
    ),
    _abi(
        _REGISTRY,
        "OwnershipTransferred",
        ("previous_owner", "address", _I),
        ("new_owner", "address", _I),
        consumed=False,
    ),
    _abi(
        _REGISTRY,
        "OwnershipTransferStarted",
        ("previous_owner", "address", _I),
        ("new_owner", "address", _I),
        consumed=False,
    ),
    _abi(
        _BUS,
        "Command",
        ("contract_id", "bytes32", _I),
        ("seq", "uint64", _D),
        ("sender", "address", _I),
        ("payload", "bytes", _D),
    ),
    _abi(
        _BUS,
        "Egress",
        ("origin", "address", _I),
        ("seq", "uint64", _D),
        ("topic", "bytes32", _I),
        ("payload", "bytes", _D),
    ),
    _abi(
        _BUS,
        "EgressRejected",
        ("origin", "address", _I),
        ("seq", "uint64", _D),
        ("topic", "bytes32", _I),
    ),
    _abi(
        _BUS,
        "ParamsChanged",
        ("max_payload", "uint256", _D),
        ("command_fee", "uint256", _D),
        ("fee_hook", "address", _D),
        consumed=False,
    ),
    _abi(_BUS, "FeesWithdrawn", ("to", "address", _I), ("amount", "uint256", _D), consumed=False),
    _abi(
        _BUS,
        "ContractDeployed",
        ("contract_id", "bytes32", _I),
        ("cluster_id", "bytes32", _I),
        ("owner", "address", _I),
        ("controller", "address", _D),
        ("code_hash", "bytes32", _D),
        ("code", "bytes", _D),
        ("init_args", "bytes", _D),
    ),
    _abi(
        _BUS,
        "ContractKeySet",
        ("contract_id", "bytes32", _I),
        ("epoch", "uint64", _D),
        ("key_address", "address", _I),
        ("public_key", "bytes", _D),
    ),
    _abi(
        _BUS,
        "ContractPaused",
        ("contract_id", "bytes32", _I),
        ("paused", "bool", _D),
        ("by", "address", _I),
    ),
    _abi(
        _BUS,
        "ContractUpgraded",
        ("contract_id", "bytes32", _I),
        ("code_hash", "bytes32", _D),
        ("code", "bytes", _D),
    ),
    _abi(
        _BUS,
        "ContractOwnerChanged",
        ("contract_id", "bytes32", _I),
        ("owner", "address", _I),
    ),
    _abi(
        _BUS,
        "ContractControllerChanged",
        ("contract_id", "bytes32", _I),
        ("controller", "address", _I),
    ),
    _abi(
        _BUS,
        "ContractInitFailed",
        ("contract_id", "bytes32", _I),
        ("code", "string", _D),
        consumed=False,  # its ContractPaused is what the core applies
    ),
    _abi(
        _BUS,
        "DeployPolicySet",
        ("cluster_id", "bytes32", _I),
        ("deployer", "address", _I),
        ("allowed", "bool", _D),
        consumed=False,
    ),
    _abi(
        _BUS,
        "JobRequested",
        ("contract_id", "bytes32", _I),
        ("request_id", "bytes32", _I),
        ("consumer", "address", _I),
        ("deadline", "uint64", _D),
        ("payload", "bytes", _D),
    ),
    _abi(
        _BUS,
        "JobScheduled",
        ("contract_id", "bytes32", _I),
        ("schedule_id", "uint256", _I),
        ("consumer", "address", _I),
        ("every", "uint64", _D),
        ("start", "uint64", _D),
        ("payload", "bytes", _D),
    ),
    _abi(
        _BUS,
        "ScheduleCancelled",
        ("contract_id", "bytes32", _I),
        ("schedule_id", "uint256", _I),
    ),
    _abi(
        _BUS,
        "EgressHostSet",
        ("contract_id", "bytes32", _I),
        ("host", "string", _D),
        ("allowed", "bool", _D),
    ),
)
"""Every event the Registry and the Bus emit, as their Vyper ABI declares it (a test compares
this table with the compiled artifacts), and the core record each decodes into."""


def _check_table() -> dict[tuple[str, bytes], _EventABI]:
    by_topic: dict[tuple[str, bytes], _EventABI] = {}
    for spec in EVENT_ABI:
        if spec.record is not None:
            names = [f.name for f in dataclasses.fields(cast(Any, spec.record))]
            if names != [name for name, _, _ in spec.inputs]:
                raise RuntimeError(f"record {spec.name} does not match its event ABI")
        by_topic[(spec.contract, spec.topic0)] = spec
    return by_topic


_BY_TOPIC: Final = _check_table()
_BY_RECORD: Final = {spec.record: spec for spec in EVENT_ABI if spec.record is not None}


def event_topic(record_type: type[ev.ChainEvent]) -> bytes:
    """topic0 of a core event record: keccak256 of its ABI signature."""
    return _BY_RECORD[record_type].topic0


def _to_abi(abi_type: str, value: Any) -> Any:
    if abi_type == "string":  # written as the bytes it is encoded alike (see _wire_type)
        return value.encode() if isinstance(value, str) else bytes(value)
    return Address(value).hex if abi_type == "address" else value


def _topic_value(abi_type: str, topic: bytes) -> Any:
    """An indexed field, read from its one 32-byte word as a strict ABI decoder reads it (the
    events index only these three static types; a generic decode costs more than the rest of
    a command's log)."""
    if len(topic) != 32:
        raise ValueError("a topic is one 32-byte word")
    if abi_type == "bytes32":
        return bytes(topic)
    if abi_type == "uint256":
        return int.from_bytes(topic, "big")
    if abi_type == "address" and not any(topic[:12]):
        return bytes(topic[12:])
    raise ValueError(f"an indexed {abi_type} does not decode")


def _from_abi(abi_type: str, value: Any) -> Any:
    if abi_type == "string":  # read as bytes (_wire_type): a contract stores any bytes there
        return bytes(value).decode("utf-8", "replace")
    return bytes.fromhex(value[2:]) if abi_type == "address" else value


def encode_event(event: ev.ChainEvent, *, registry: bytes, bus: bytes) -> LogEntry:
    """The log a contract emits for ``event`` (for models and tests). Raises KeyError for a
    record with no event."""
    spec = _BY_RECORD[type(event)]
    values = {name: getattr(event, name) for name, _, _ in spec.inputs}
    topics = [spec.topic0]
    for name, abi_type in spec.indexed:
        topics.append(abi_encode([abi_type], [_to_abi(abi_type, values[name])]))
    data = abi_encode(
        [_wire_type(t) for _, t in spec.data], [_to_abi(t, values[name]) for name, t in spec.data]
    )
    return LogEntry(
        address=registry if spec.contract == _REGISTRY else bus, topics=tuple(topics), data=data
    )


def decode_logs(
    receipts: Sequence[bytes], *, registry: bytes, bus: bytes
) -> tuple[ev.ChainEvent, ...]:
    """The Registry and Bus events of a block's receipts, in log order, decoded here.

    Logs of reverted transactions and of other contracts are skipped; events the core does
    not consume (ownership, Bus parameters) too.

    Raises:
        ChainDataInvalid: a receipt does not decode, or a Registry/Bus log is not one of the
            events their ABI declares (the contracts emit nothing else, so this is never
            skipped).
    """
    if len(receipts) > MAX_RECEIPTS:
        raise ChainDataInvalid("too many receipts")
    out: list[ev.ChainEvent] = []
    for index, receipt in enumerate(receipts):
        succeeded, logs = decode_receipt(receipt)
        if not succeeded:
            continue
        for log in logs:
            contract = _REGISTRY if log.address == registry else _BUS if log.address == bus else ""
            if not contract:
                continue
            event = _decode_log(contract, log, index)
            if event is not None:
                out.append(event)
    return tuple(out)


def _decode_log(contract: str, log: LogEntry, receipt: int) -> ev.ChainEvent | None:
    if not log.topics or len(log.data) > MAX_LOG_DATA:
        raise ChainDataInvalid(f"{contract} log without topic or too large", receipt=receipt)
    spec = _BY_TOPIC.get((contract, log.topics[0]))
    if spec is None:
        raise ChainDataInvalid(f"{contract} log of an unknown event", receipt=receipt)
    if spec.record is None:
        return None
    if len(log.topics) != 1 + len(spec.indexed):
        raise ChainDataInvalid(f"{spec.name} has the wrong topic count", receipt=receipt)
    values: dict[str, Any] = {}
    try:
        for (name, abi_type), topic in zip(spec.indexed, log.topics[1:], strict=True):
            values[name] = _topic_value(abi_type, topic)
        decoded = decode_event_data(spec.wire_types, log.data)
        for (name, abi_type), value in zip(spec.data, decoded, strict=True):
            values[name] = _from_abi(abi_type, value)
    except (DecodingError, EncodingError, ValueError, TypeError, OverflowError) as exc:
        raise ChainDataInvalid(f"{spec.name} fields do not decode", receipt=receipt) from exc
    return spec.record(**values)
