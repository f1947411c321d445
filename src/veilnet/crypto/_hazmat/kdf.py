"""The Veilnet key derivation tree: HKDF-SHA256 over a versioned, length-prefixed path.
Each path segment is typed and length-prefixed, so distinct paths can never encode alike."""

from __future__ import annotations

import struct
from collections.abc import Iterable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from veilnet.crypto.constants import KDF_SALT, VERSION_TAG

PathSegment = bytes | str | int

_TAG_BYTES = b"b"
_TAG_TEXT = b"s"
_TAG_INT = b"i"
_MAX_OUTPUT = 255 * 32


def encode_segment(segment: PathSegment) -> bytes:
    """Type tag, 4-byte big-endian length, then the value (ints as 8-byte unsigned)."""
    if isinstance(segment, bool):
        raise TypeError("KDF path segments may not be bool")
    if isinstance(segment, bytes):
        tag, raw = _TAG_BYTES, segment
    elif isinstance(segment, str):
        tag, raw = _TAG_TEXT, segment.encode("utf-8")
    elif isinstance(segment, int):
        if not 0 <= segment < 2**64:
            raise ValueError("integer KDF path segments must fit in 64 unsigned bits")
        tag, raw = _TAG_INT, segment.to_bytes(8, "big")
    else:
        raise TypeError(f"unsupported KDF path segment type: {type(segment).__name__}")
    return tag + struct.pack(">I", len(raw)) + raw


def encode_path(path: Iterable[PathSegment]) -> bytes:
    """The HKDF ``info`` for a path: the version tag followed by every encoded segment."""
    return encode_segment(VERSION_TAG) + b"".join(encode_segment(s) for s in path)


def derive_bytes(secret: bytes, path: Iterable[PathSegment], length: int = 32) -> bytes:
    """HKDF-SHA256(salt=KDF_SALT, ikm=secret, info=encode_path(path)) truncated to ``length``."""
    if not isinstance(secret, bytes) or len(secret) < 16:
        raise ValueError("KDF input keying material must be at least 16 bytes")
    if not 1 <= length <= _MAX_OUTPUT:
        raise ValueError("KDF output length out of range")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=KDF_SALT, info=encode_path(path))
    return hkdf.derive(secret)
