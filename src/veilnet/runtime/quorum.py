"""The ``rpc-quorum`` finality policy: a block counts as final once ``threshold`` independent RPC
endpoints, reached over TLS that ends in the enclave, report the same hash for it under a tag."""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from veilnet.errors import Unavailable
from veilnet.protocol.errors import QuorumNotReached
from veilnet.runtime.tls import HTTPSExchange, Relay, TLSFailed, client_context, exchange

__all__ = [
    "ANSWER_BYTES_BASE",
    "ANSWER_BYTES_PER_BLOCK",
    "BLOCK_TAGS",
    "MAX_CERTIFY_NUMBERS",
    "QuorumNotReached",
    "QuorumPolicy",
    "RPCEndpoint",
    "certify",
]

BLOCK_TAGS: Final = frozenset({"finalized", "safe", "latest"})
MAX_CERTIFY_NUMBERS: Final = 256
"""Block numbers one :func:`certify` call may ask about (one JSON-RPC batch per endpoint)."""
ANSWER_BYTES_BASE: Final = 64 * 1024
ANSWER_BYTES_PER_BLOCK: Final = 128 * 1024
"""An endpoint's answer may hold ``ANSWER_BYTES_BASE + ANSWER_BYTES_PER_BLOCK * len(numbers)``
bytes of plaintext: enough for blocks as ``eth_getBlockByNumber(n, false)`` gives them, with up
to ~1,800 transaction hashes each, while a 256-block answer stays near 32 MiB."""
_MAX_BLOCK_NUMBER: Final = 2**63 - 1
_QUANTITY: Final = re.compile(r"0x(?:0|[1-9a-fA-F][0-9a-fA-F]{0,15})")
_HASH: Final = re.compile(r"0x[0-9a-fA-F]{64}")
_CHAIN_ID: Final = 0
_TAGGED: Final = 1
_FIRST_NUMBER: Final = 2
_ERROR: Final = object()  # a JSON-RPC error answer, told apart from a ``null`` result
_MISSING: Final = object()


@dataclass(frozen=True, slots=True, kw_only=True)
class RPCEndpoint:
    """An Ethereum JSON-RPC endpoint served over HTTPS.

    Attributes:
        host: the DNS name (or IP address) its certificate must cover.
        port: its TCP port.
        path: the request target, e.g. ``"/"`` or ``"/v1/mainnet"``.
    """

    host: str
    port: int = 443
    path: str = "/"

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host or len(self.host) > 253:
            raise ValueError("host must be a non-empty name of at most 253 characters")
        if not self.host.isascii() or any(c.isspace() or c in "/@?#" for c in self.host):
            raise ValueError("host must be an ASCII name or address, without a path")
        if isinstance(self.port, bool) or not isinstance(self.port, int):
            raise TypeError("port must be an int")
        if not 1 <= self.port <= 0xFFFF:
            raise ValueError("port must be in 1..65535")
        if not isinstance(self.path, str) or not self.path.startswith("/"):
            raise ValueError("path must start with '/'")
        if not self.path.isascii() or any(not c.isprintable() or c.isspace() for c in self.path):
            raise ValueError("path must be printable ASCII without spaces")


@dataclass(frozen=True, slots=True, kw_only=True)
class QuorumPolicy:
    """Which endpoints to ask, how many must agree, and which roots their certificates chain to.

    Attributes:
        endpoints: distinct endpoints, asked in order (endpoint ``i`` on relay connection ``i``).
        threshold: how many endpoints must report the same hash for a block.
        ca_pem: the only CA certificates (PEM) the endpoints' certificates may chain to.
        block_tag: the tag whose block bounds what an endpoint vouches for.

    Raises:
        ValueError: an empty or repeated endpoint list, a threshold outside
            ``1..len(endpoints)``, an unknown tag, or a CA bundle with no usable certificate.
    """

    endpoints: tuple[RPCEndpoint, ...]
    threshold: int
    ca_pem: bytes = field(repr=False)
    block_tag: str = "finalized"
    context: ssl.SSLContext = field(init=False, repr=False, compare=False)
    """The TLS client context trusting only ``ca_pem``, built once with the policy."""

    def __post_init__(self) -> None:
        if not isinstance(self.endpoints, tuple) or not all(
            isinstance(e, RPCEndpoint) for e in self.endpoints
        ):
            raise TypeError("endpoints must be a tuple of RPCEndpoint")
        if not self.endpoints:
            raise ValueError("a quorum needs at least one endpoint")
        if len(set(self.endpoints)) != len(self.endpoints):
            raise ValueError("endpoints must be distinct")
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, int):
            raise TypeError("threshold must be an int")
        if not 1 <= self.threshold <= len(self.endpoints):
            raise ValueError("threshold must be in 1..len(endpoints)")
        if self.block_tag not in BLOCK_TAGS:
            raise ValueError(f"block_tag must be one of {sorted(BLOCK_TAGS)}")
        # a bad bundle is a configuration error, found here; the context serves every call
        object.__setattr__(self, "context", client_context(self.ca_pem))


class _Refused(Exception):
    """An endpoint's answer does not count; ``reason`` is a short, secret-free code."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def certify(
    policy: QuorumPolicy, *, chain_id: int, numbers: Sequence[int], relay: Relay, at: int
) -> dict[int, bytes]:
    """Which of ``numbers`` a quorum of the policy's endpoints reports final, and their hashes.

    Endpoint ``i`` gets one HTTPS POST, over relay connection ``i``, of a JSON-RPC batch:
    ``eth_chainId``, ``eth_getBlockByNumber(block_tag)`` and ``eth_getBlockByNumber(n)`` for each
    ``n``. Its answer counts only if its chain id is ``chain_id``; it vouches for block ``n``'s
    hash only if its tagged block is at or above ``n``. Block ``n`` is certified when exactly one
    hash has at least ``threshold`` vouchers (two such hashes, possible when ``threshold`` is at
    most half the endpoints, certify neither). The hashes are not checked against headers here.

    Args:
        policy: the endpoints, threshold, CA bundle and tag.
        chain_id: the chain the endpoints must be serving.
        numbers: distinct block numbers, at most :data:`MAX_CERTIFY_NUMBERS`.
        relay: the host's byte pipe.
        at: unix seconds (the verified chain time) the endpoints' certificates must be valid at.

    Returns:
        ``{n: 32-byte hash}`` for the certified numbers, in the order of ``numbers``. Finality
        only moves forward, so for ascending ``numbers`` this is usually a prefix of them.

    Raises:
        QuorumNotReached: none of ``numbers`` is certified (per-endpoint reasons in ``details``).
        ValueError: ``numbers`` is empty, too long, repeated or out of range; ``chain_id`` < 1.
        TypeError: a block number, ``chain_id`` or ``at`` is not an int.

    Failures of single endpoints (TLS, HTTP, JSON, chain id) only stop them from vouching.
    Exceptions the relay raises propagate, except :class:`~veilnet.errors.Unavailable`.
    """
    wanted = _check_numbers(numbers)
    if isinstance(chain_id, bool) or not isinstance(chain_id, int):
        raise TypeError("chain_id must be an int")
    if chain_id < 1:
        raise ValueError("chain_id must be positive")
    if isinstance(at, bool) or not isinstance(at, int):
        raise TypeError("at must be an int (unix seconds)")
    context = policy.context
    body = _batch(policy.block_tag, wanted)
    max_bytes = ANSWER_BYTES_BASE + ANSWER_BYTES_PER_BLOCK * len(wanted)
    vouches: list[dict[int, bytes]] = []
    reasons: list[str] = []
    for conn, endpoint in enumerate(policy.endpoints):
        ex = HTTPSExchange(
            context,
            host=endpoint.host,
            port=endpoint.port,
            method="POST",
            target=endpoint.path,
            body=body,
            at=at,
            headers=(("Content-Type", "application/json"), ("Accept", "application/json")),
            max_response_bytes=max_bytes,
        )
        try:
            response = exchange(ex, relay, conn=conn)
            if response.status != 200:
                raise _Refused(f"http_status:{response.status}")
            vouched = _vouched(response.body, chain_id=chain_id, wanted=wanted)
        except TLSFailed as exc:
            reasons.append(f"tls_failed:{exc.details.get('stage', 'unknown')}")
        except Unavailable:
            reasons.append("unavailable")
        except _Refused as exc:
            reasons.append(exc.reason)
        else:
            vouches.append(vouched)
            reasons.append("vouched" if vouched else "not_final")
    certified = _tally(wanted, vouches, policy.threshold)
    if not certified:
        raise QuorumNotReached(
            f"no block reached {policy.threshold} matching endpoint answers",
            reasons=reasons,
            threshold=policy.threshold,
        )
    return certified


def _check_numbers(numbers: Sequence[int]) -> tuple[int, ...]:
    wanted = tuple(numbers)
    if not wanted:
        raise ValueError("numbers must not be empty")
    if len(wanted) > MAX_CERTIFY_NUMBERS:
        raise ValueError(f"at most {MAX_CERTIFY_NUMBERS} numbers per call")
    for n in wanted:
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError("block numbers must be ints")
        if not 0 <= n <= _MAX_BLOCK_NUMBER:
            raise ValueError("block numbers must be in 0..2**63-1")
    if len(set(wanted)) != len(wanted):
        raise ValueError("numbers must be distinct")
    return wanted


def _batch(tag: str, wanted: tuple[int, ...]) -> bytes:
    calls: list[tuple[str, list[object]]] = [
        ("eth_chainId", []),
        ("eth_getBlockByNumber", [tag, False]),
        *(("eth_getBlockByNumber", [hex(n), False]) for n in wanted),
    ]
    batch = [
        {"jsonrpc": "2.0", "id": i, "method": method, "params": params}
        for i, (method, params) in enumerate(calls)
    ]
    return json.dumps(batch, separators=(",", ":")).encode("ascii")


def _vouched(body: bytes, *, chain_id: int, wanted: tuple[int, ...]) -> dict[int, bytes]:
    """The block hashes this answer vouches for; raises ``_Refused`` if it does not count."""
    results = _parse_batch(body, _FIRST_NUMBER + len(wanted))
    if results[_CHAIN_ID] is _ERROR or results[_TAGGED] is _ERROR:
        raise _Refused("rpc_error")
    if _quantity(results[_CHAIN_ID]) != chain_id:
        raise _Refused("wrong_chain_id")
    tagged = results[_TAGGED]
    # No block under the tag (a node that has not finalised anything yet) vouches for nothing.
    final = -1 if tagged is None else _block(tagged)[0]
    vouched: dict[int, bytes] = {}
    for i, n in enumerate(wanted):
        found = results[_FIRST_NUMBER + i]
        if found is _ERROR or found is None:
            continue  # the node lacks the block (pruned, or not yet seen): no vouch, no fault
        number, block_hash = _block(found)
        if number != n:
            raise _Refused("malformed_answer")
        if n <= final:
            vouched[n] = block_hash
    return vouched


def _parse_batch(body: bytes, count: int) -> list[object]:
    """Each call's result by id (``_ERROR`` for an error answer): batch answers may come in any
    order, so ids are matched, each exactly once."""
    try:
        doc = json.loads(
            body.decode("utf-8"), object_pairs_hook=_unique_keys, parse_constant=_no_constant
        )
    except (ValueError, RecursionError) as exc:
        raise _Refused("malformed_answer") from exc
    if not isinstance(doc, list) or len(doc) != count:
        raise _Refused("malformed_answer")
    results: list[object] = [_MISSING] * count
    for item in doc:
        if not isinstance(item, dict) or item.get("jsonrpc") != "2.0":
            raise _Refused("malformed_answer")
        ident = item.get("id")
        if type(ident) is not int or not 0 <= ident < count or results[ident] is not _MISSING:
            raise _Refused("malformed_answer")
        if ("result" in item) == ("error" in item):
            raise _Refused("malformed_answer")
        results[ident] = item.get("result", _ERROR)
    return results


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    found = dict(pairs)
    if len(found) != len(pairs):
        raise ValueError("duplicate key")  # one answer, two readings: refuse it
    return found


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _quantity(value: object) -> int:
    if not isinstance(value, str) or not _QUANTITY.fullmatch(value):
        raise _Refused("malformed_answer")
    return int(value, 16)


def _block(value: object) -> tuple[int, bytes]:
    if not isinstance(value, dict):
        raise _Refused("malformed_answer")
    block_hash = value.get("hash")
    if not isinstance(block_hash, str) or not _HASH.fullmatch(block_hash):
        raise _Refused("malformed_answer")
    return _quantity(value.get("number")), bytes.fromhex(block_hash[2:])


def _tally(
    wanted: tuple[int, ...], vouches: list[dict[int, bytes]], threshold: int
) -> dict[int, bytes]:
    certified: dict[int, bytes] = {}
    for n in wanted:
        counts: dict[bytes, int] = {}
        for vouched in vouches:
            block_hash = vouched.get(n)
            if block_hash is not None:
                counts[block_hash] = counts.get(block_hash, 0) + 1
        winners = [h for h, count in counts.items() if count >= threshold]
        if len(winners) == 1:
            certified[n] = winners[0]
    return certified
