"""Veilnet's wire formats: canonical versioned CBOR for internal messages, ABI for EVM contracts.
Same value, same bytes, everywhere; every decoder is bounded and raises typed CodecErrors."""

from veilnet.codec._abi import (
    abi_decode,
    abi_encode,
    canonical_uints_then_bytes,
    decode_event_data,
    uints_then_bytes,
)
from veilnet.codec._canonical import (
    Value,
    decode,
    encode,
    encode_array,
    encode_map,
    encode_piece,
)
from veilnet.codec._records import Record, decode_record, encode_record, record
from veilnet.codec.errors import (
    CodecError,
    NotCanonical,
    Oversized,
    SchemaMismatch,
    TrailingBytes,
    UnknownVersion,
)

__all__ = [
    "CodecError",
    "NotCanonical",
    "Oversized",
    "Record",
    "SchemaMismatch",
    "TrailingBytes",
    "UnknownVersion",
    "Value",
    "abi_decode",
    "abi_encode",
    "canonical_uints_then_bytes",
    "decode",
    "decode_event_data",
    "decode_record",
    "encode",
    "encode_array",
    "encode_map",
    "encode_piece",
    "encode_record",
    "record",
    "uints_then_bytes",
]
