"""Flat records (fields of bytes, text, integers, booleans, their ``| None`` forms and other flat
records) written and read directly in their canonical CBOR, with no generic value in between.

Theory of operation: a query crosses the codec six times (request, plaintext and response, each
written once and read once), and the generic path walks every value three times (the CBOR decoder,
the limits walk, the re-encoding it compares) before the record's own field checks. A flat record
has one shape, so its canonical bytes can be matched head by head instead. Both directions answer
only what the generic path answers identically: ``encode`` gives up (None) on any value whose
type is not exactly the declared one, ``decode`` on any byte that is not the shortest head of the
declared type, on trailing bytes, and on whatever the record's constructor refuses. Whoever gets
None runs the generic path, so no input is ever accepted, refused or read differently; the
property tests in ``tests/foundation/test_codec.py`` hold the two paths equal on mutated input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from veilnet.codec._canonical import head
from veilnet.codec.constants import CODEC_VERSION, MAX_INT, MIN_INT

__all__ = ["BOOL", "BYTES", "INT", "RECORD", "TEXT", "Layout", "decode", "encode"]

BYTES = 0
TEXT = 1
INT = 2
BOOL = 3
RECORD = 4

_NULL = 0xF6
_FALSE = 0xF4
_TRUE = 0xF5
_VERSION = bytes((CODEC_VERSION,))


@dataclass(frozen=True, slots=True)
class Layout:
    """A flat record class and its canonical shape: ``prefix`` is the array header and the
    kind's text; each field is (name, kind, nullable, the nested layout for ``RECORD``)."""

    cls: type
    prefix: bytes
    fields: tuple[tuple[str, int, bool, Layout | None], ...]
    depth: int
    """Levels of nesting of the encoding, counting the record's own array (the generic decoder
    refuses deeper than ``MAX_DEPTH``)."""
    items: int
    """Values in the encoding, nested records' included (the generic bound is ``MAX_ITEMS``)."""


class _NotFlat(Exception):
    """These bytes or this value leave the flat shape: the generic path decides."""


def encode(layout: Layout, item: object) -> bytes | None:
    """``item``'s canonical encoding, version byte first; None where a value's type is not
    exactly its field's (the generic encoder then says what it makes of it)."""
    out = [_VERSION]
    try:
        _encode_into(layout, item, out)
    except (_NotFlat, UnicodeEncodeError):
        return None
    return b"".join(out)


def _encode_into(layout: Layout, item: object, out: list[bytes]) -> None:
    if type(item) is not layout.cls:
        raise _NotFlat
    out.append(layout.prefix)
    for name, kind, nullable, nested in layout.fields:
        value = getattr(item, name)
        if value is None and nullable:
            out.append(b"\xf6")
        elif kind == BYTES:
            if type(value) is not bytes:
                raise _NotFlat
            out.append(head(2, len(value)))
            out.append(value)
        elif kind == TEXT:
            if type(value) is not str:
                raise _NotFlat
            raw = value.encode("utf-8")
            out.append(head(3, len(raw)))
            out.append(raw)
        elif kind == INT:
            if type(value) is not int or not MIN_INT <= value <= MAX_INT:
                raise _NotFlat
            out.append(head(0, value) if value >= 0 else head(1, -1 - value))
        elif kind == BOOL:
            if type(value) is not bool:
                raise _NotFlat
            out.append(b"\xf5" if value else b"\xf4")
        else:
            assert nested is not None
            _encode_into(nested, value, out)


def decode(layout: Layout, data: bytes) -> Any:
    """The record when ``data`` is exactly the canonical encoding of one of ``layout``'s
    shape, else None (malformed, non-canonical, another kind or shape, or refused by the
    record's constructor: the generic decoder then raises its typed error)."""
    if type(data) is not bytes or data[:1] != _VERSION:
        return None
    try:
        found, end = _decode_at(layout, data, 1)
    except Exception:  # whatever went wrong (a constructor too), the generic decoder says what
        return None
    return found if end == len(data) else None


def _argument(data: bytes, pos: int, major: int) -> tuple[int, int]:
    """The argument of the head at ``pos`` (of type ``major``, in its shortest form) and the
    position after it."""
    first = data[pos]
    if first >> 5 != major:
        raise _NotFlat
    info = first & 0x1F
    if info < 24:
        return info, pos + 1
    if info > 27:
        raise _NotFlat  # reserved, or an indefinite length
    size = 1 << (info - 24)
    end = pos + 1 + size
    if end > len(data):
        raise _NotFlat
    value = int.from_bytes(data[pos + 1 : end], "big")
    if value < (24 if size == 1 else 1 << (4 * size)):
        raise _NotFlat  # a shorter head holds it: not canonical
    return value, end


def _decode_at(layout: Layout, data: bytes, pos: int) -> tuple[Any, int]:
    prefix = layout.prefix
    end = pos + len(prefix)
    if data[pos:end] != prefix:
        raise _NotFlat
    pos = end
    values: dict[str, Any] = {}
    for name, kind, nullable, nested in layout.fields:
        first = data[pos]
        if nullable and first == _NULL:
            values[name] = None
            pos += 1
        elif kind in (BYTES, TEXT):
            major = 2 if kind == BYTES else 3
            if first >> 5 == major and first & 0x1F < 24:  # most fields: a one-byte head
                length, pos = first & 0x1F, pos + 1
            else:
                length, pos = _argument(data, pos, major)
            end = pos + length
            if end > len(data):
                raise _NotFlat
            raw = data[pos:end]
            values[name] = raw if kind == BYTES else raw.decode("utf-8")
            pos = end
        elif kind == INT:
            if first >> 5 == 0:
                values[name], pos = _argument(data, pos, 0)
            else:
                argument, pos = _argument(data, pos, 1)
                values[name] = -1 - argument
        elif kind == BOOL:
            if first != _TRUE and first != _FALSE:
                raise _NotFlat
            values[name] = first == _TRUE
            pos += 1
        else:
            assert nested is not None
            values[name], pos = _decode_at(nested, data, pos)
    return layout.cls(**values), pos
