"""Errors of ``veilnet.codec``: every way untrusted bytes can fail to decode.

InvalidInput
└── CodecError               any decoding failure (base; code ``codec_malformed``)
    ├── UnknownVersion       leading version byte not supported
    ├── TrailingBytes        bytes left over after one complete item
    ├── Oversized            input, a field, a container or the nesting is too large
    ├── NotCanonical         decodes, but is not the one canonical encoding
    └── SchemaMismatch       a record has the wrong kind, arity or field types
"""

from veilnet.errors import InvalidInput


class CodecError(InvalidInput):
    """The bytes are not a valid Veilnet encoding."""

    code = "codec_malformed"


class UnknownVersion(CodecError):
    """The encoding names a version this build does not support."""

    code = "codec_unknown_version"


class TrailingBytes(CodecError):
    """Bytes remain after one complete encoded item."""

    code = "codec_trailing_bytes"


class Oversized(CodecError):
    """The input, one of its fields, or its nesting exceeds the allowed limit."""

    code = "codec_oversized"
    http_status = 413


class NotCanonical(CodecError):
    """The input decodes but is not the canonical encoding of its value."""

    code = "codec_not_canonical"


class SchemaMismatch(CodecError):
    """A record has an unknown kind, the wrong number of fields or a field of the wrong type."""

    code = "codec_schema_mismatch"
