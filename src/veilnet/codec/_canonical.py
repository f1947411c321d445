"""Canonical, versioned CBOR (RFC 8949 §4.2 deterministic encoding) for internal messages.
Only null, bool, 64-bit ints, bytes, text, lists and text-keyed maps: no floats, no tags."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import cbor2

from veilnet.codec.constants import (
    CODEC_VERSION,
    MAX_DEPTH,
    MAX_ENCODED_SIZE,
    MAX_INT,
    MAX_ITEMS,
    MIN_INT,
)
from veilnet.codec.errors import (
    CodecError,
    NotCanonical,
    Oversized,
    TrailingBytes,
    UnknownVersion,
)

Value = None | bool | int | bytes | str | list["Value"] | dict[str, "Value"]
"""The values the canonical codec carries."""

__all__ = ["Value", "decode", "encode", "encode_array", "encode_map", "encode_piece"]


# Tuples, concrete types first: isinstance tries them in order, and an ABC check costs far more.
_LEAF_TYPES = (bool, bytes, str)
_MAP_TYPES = (dict, Mapping)
_LIST_TYPES = (list, tuple, Sequence)


def _check(value: Any, depth: int, max_depth: int, budget: list[int]) -> None:
    """Raise TypeError/Oversized unless ``value`` is a codec Value within limits."""
    if depth > max_depth:
        raise Oversized("value nests too deeply", max_depth=max_depth)
    budget[0] -= 1
    if budget[0] < 0:
        raise Oversized("value has too many items")
    if value is None or isinstance(value, _LEAF_TYPES):
        return
    if isinstance(value, int):
        if not MIN_INT <= value <= MAX_INT:
            raise Oversized("integers must fit in 64 bits")
        return
    if isinstance(value, _MAP_TYPES):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError("map keys must be str")
            _check(item, depth + 1, max_depth, budget)
        return
    if isinstance(value, _LIST_TYPES):
        for item in value:
            _check(item, depth + 1, max_depth, budget)
        return
    raise TypeError(f"type {type(value).__name__} cannot be encoded canonically")


def encode(value: Any, *, max_items: int = MAX_ITEMS) -> bytes:
    """The one canonical encoding of ``value``: version byte, then deterministic CBOR.

    Tuples encode as lists; map keys sort by their encoded bytes (RFC 8949 §4.2.1).
    ``max_items``: raise it only for bulk values the core made itself (a checkpoint of a large
    state), which are then decoded with the same bound.

    Raises:
        TypeError: a value of an unsupported type (floats, sets, objects): a caller bug.
        Oversized: integers beyond 64 bits, nesting deeper than MAX_DEPTH, more items.
    """
    _check(value, 0, MAX_DEPTH, [max_items])
    return bytes([CODEC_VERSION]) + cbor2.dumps(value, canonical=True)


def encode_piece(value: Any, *, max_items: int = MAX_ITEMS) -> bytes:
    """``value``'s canonical encoding without the version byte: a piece for ``encode_array``
    or ``encode_map``.

    Raises:
        TypeError / Oversized: as ``encode``.
    """
    _check(value, 0, MAX_DEPTH, [max_items])
    return cbor2.dumps(value, canonical=True)


def encode_map(pieces: Mapping[str, bytes], *, versioned: bool = False) -> bytes:
    """The canonical encoding of the map whose values' pieces (``encode_piece`` or
    ``encode_array``) are ``pieces``, keys in canonical order; with ``versioned``, byte for byte
    what ``encode`` makes of that map. As with ``encode_array``, the item bound is the
    caller's to keep."""
    if len(pieces) >= 24:
        raise Oversized("encode_map takes fewer than 24 keys")
    entries = sorted((cbor2.dumps(key), piece) for key, piece in pieces.items())
    body = bytes([0xA0 | len(entries)]) + b"".join(k + v for k, v in entries)
    return bytes([CODEC_VERSION]) + body if versioned else body


def encode_array(pieces: Sequence[bytes], *, versioned: bool = False) -> bytes:
    """The canonical encoding of the list whose items' pieces (``encode_piece``) are
    ``pieces``; with ``versioned``, byte for byte what ``encode`` makes of that list. A caller
    that keeps the pieces of a long list re-encodes only the items that changed. The item
    bound of ``encode`` is the caller's to keep (each piece was checked on its own)."""
    header = _array_header(len(pieces))
    body = header + b"".join(pieces)
    return bytes([CODEC_VERSION]) + body if versioned else body


def _array_header(length: int) -> bytes:
    """CBOR major type 4 with ``length`` in its shortest form (RFC 8949 §4.2.1)."""
    if length >= 1 << 64:
        raise Oversized("a list this long cannot be encoded")
    return head(4, length)


def head(major: int, argument: int) -> bytes:
    """A CBOR head in its shortest form (RFC 8949 §4.2.1); ``argument`` below 2**64."""
    if argument < 24:
        return bytes((major << 5 | argument,))
    if argument < 0x100:
        return bytes((major << 5 | 24, argument))
    if argument < 0x10000:
        return bytes((major << 5 | 25,)) + argument.to_bytes(2, "big")
    if argument < 0x100000000:
        return bytes((major << 5 | 26,)) + argument.to_bytes(4, "big")
    return bytes((major << 5 | 27,)) + argument.to_bytes(8, "big")


def decode(
    data: bytes,
    *,
    max_size: int = MAX_ENCODED_SIZE,
    max_depth: int = MAX_DEPTH,
    max_items: int = MAX_ITEMS,
) -> Value:
    """Decode bytes made by ``encode``; anything else is a typed CodecError.

    Rejects unknown versions, trailing bytes, oversized input, excessive nesting, floats,
    tags, indefinite lengths, duplicate or non-text map keys, and non-canonical encodings
    (so equal values always have equal bytes).
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("decode() takes bytes")
    data = bytes(data)
    if len(data) > max_size:
        raise Oversized("encoded value is larger than allowed", max_size=max_size)
    if not data:
        raise CodecError("empty input")
    if data[0] != CODEC_VERSION:
        raise UnknownVersion(f"codec version {data[0]} is not supported")
    stream = io.BytesIO(data)
    stream.seek(1)
    try:
        decoder = cbor2.CBORDecoder(
            stream,
            max_depth=max_depth + 1,
            allow_indefinite=False,
            allow_duplicate_keys=False,
            tag_hook=_reject_tag,
        )
        value = decoder.decode()
    except CodecError:
        raise
    except cbor2.CBORDecodeError as exc:
        if "depth" in str(exc):
            raise Oversized("value nests too deeply", max_depth=max_depth) from exc
        raise CodecError("malformed encoding") from exc
    except (ValueError, TypeError, OverflowError, RecursionError, MemoryError) as exc:
        raise CodecError("malformed encoding") from exc
    if stream.tell() != len(data):
        raise TrailingBytes(f"{len(data) - stream.tell()} bytes after the value")
    # One walk with the caller's limits (the depth no deeper than the encoder's), then the
    # re-encoding comparison: a value ``encode`` would refuse can never be canonical.
    try:
        _check(value, 0, min(max_depth, MAX_DEPTH), [max_items])
    except TypeError as exc:  # floats, semantic tags decoded to other types
        raise CodecError("value of an unsupported type") from exc
    canonical = bytes([CODEC_VERSION]) + cbor2.dumps(value, canonical=True)
    if canonical != data:
        raise NotCanonical("input is not the canonical encoding of its value")
    return value  # type: ignore[no-any-return]


def _reject_tag(decoder: object, tag: object) -> object:
    raise CodecError("CBOR tags are not allowed")
