"""Decoding of quotes given as files: raw binary, hex text (optional 0x) or a JSON byte array.
Used by the CLI and by anything that accepts quotes pasted by people."""

from __future__ import annotations

import json
import string

from veilnet.attestation.constants import MAX_QUOTE_SIZE
from veilnet.attestation.errors import QuoteMalformed, QuoteTooLarge

__all__ = ["read_quote"]

_HEX = frozenset(string.hexdigits.encode())
_WHITESPACE = frozenset(string.whitespace.encode())


def read_quote(data: bytes) -> bytes:
    """Raw quote bytes from binary, hex text or a JSON array of byte values.

    Raises:
        QuoteTooLarge: the input is far larger than any quote.
        QuoteMalformed: text that is neither valid hex nor a JSON byte array.
    """
    if len(data) > 3 * 4 * MAX_QUOTE_SIZE:
        raise QuoteTooLarge("quote input is too large")
    text = data.strip()
    if text.startswith(b"["):
        try:
            values = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise QuoteMalformed("quote looks like JSON but does not parse") from exc
        if not isinstance(values, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in values
        ):
            raise QuoteMalformed("a JSON quote must be an array of integers 0..255")
        return bytes(values)
    body = text[2:] if text[:2] in (b"0x", b"0X") else text
    if body and all(c in _HEX or c in _WHITESPACE for c in body):
        compact = bytes(c for c in body if c not in _WHITESPACE)
        try:
            return bytes.fromhex(compact.decode())
        except ValueError as exc:
            raise QuoteMalformed("hex quote has an odd number of digits") from exc
    return data
