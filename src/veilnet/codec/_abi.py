"""ABI encoding for what EVM contracts read, wrapped so failures are typed codec errors.
A thin layer over ``eth_abi``; strict decoding rejects trailing and non-canonical bytes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eth_abi.abi import decode as _eth_decode
from eth_abi.abi import encode as _eth_encode
from eth_abi.exceptions import DecodingError, EncodingError

from veilnet.codec.constants import MAX_ENCODED_SIZE
from veilnet.codec.errors import CodecError, Oversized, TrailingBytes

__all__ = ["abi_decode", "abi_encode"]


def abi_encode(types: Sequence[str], values: Sequence[Any]) -> bytes:
    """Standard ABI encoding (``abi.encode``); a wrong value for a type is a caller bug."""
    try:
        return _eth_encode(list(types), list(values))
    except EncodingError as exc:
        raise TypeError(f"values do not fit ABI types {list(types)}: {exc}") from exc


def abi_decode(
    types: Sequence[str], data: bytes, *, max_size: int = MAX_ENCODED_SIZE
) -> tuple[Any, ...]:
    """Decode untrusted ABI bytes; the input must be exactly the canonical encoding.

    Raises:
        Oversized: input larger than ``max_size``.
        TrailingBytes: extra bytes after the encoded values.
        CodecError: anything else malformed.
    """
    if len(data) > max_size:
        raise Oversized("ABI input is larger than allowed", max_size=max_size)
    try:
        values = tuple(_eth_decode(list(types), bytes(data), strict=True))
    except (DecodingError, OverflowError, ValueError, TypeError) as exc:
        raise CodecError("malformed ABI encoding") from exc
    if abi_encode(types, values) != bytes(data):
        raise TrailingBytes("ABI input is not the canonical encoding of its values")
    return values
