"""Canonical codec and records: round trips, canonical bytes, bounded and typed rejection."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veilnet.codec import (
    CodecError,
    NotCanonical,
    Oversized,
    Record,
    SchemaMismatch,
    TrailingBytes,
    UnknownVersion,
    abi_decode,
    abi_encode,
    canonical_uints_then_bytes,
    decode,
    encode,
    encode_array,
    encode_map,
    encode_piece,
    record,
    uints_then_bytes,
)

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64 - 1)
    | st.binary(max_size=64)
    | st.text(max_size=32),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=25,
)


@given(values)
def test_round_trip_and_canonical(value: object) -> None:
    encoded = encode(value)
    assert decode(encoded) == value
    assert encode(decode(encoded)) == encoded


@given(st.lists(values, max_size=30))
def test_a_list_spliced_from_pieces_is_its_encoding(items: list[object]) -> None:
    """``encode_array`` of the items' ``encode_piece`` is what ``encode`` makes of the list
    (cluster commitments splice rows kept from before)."""
    pieces = [encode_piece(item) for item in items]
    assert encode_array(pieces, versioned=True) == encode(items)
    assert encode_array(pieces) == encode(items)[1:]


@given(st.dictionaries(st.text(max_size=12), values, max_size=23))
def test_a_map_spliced_from_pieces_is_its_encoding(entries: dict[str, object]) -> None:
    """``encode_map`` of the values' pieces, keys in canonical order (by their encoded bytes:
    shorter keys first), is what ``encode`` makes of the map (runtime meta digests)."""
    pieces = {key: encode_piece(value) for key, value in entries.items()}
    assert encode_map(pieces, versioned=True) == encode(entries)
    assert encode_map(pieces) == encode(entries)[1:]


def test_a_spliced_map_takes_fewer_than_24_keys() -> None:
    with pytest.raises(Oversized):
        encode_map({str(i): encode_piece(i) for i in range(24)})


@pytest.mark.parametrize("length", [0, 1, 23, 24, 255, 256, 65_535, 65_536])
def test_spliced_list_headers_are_the_shortest(length: int) -> None:
    items = [b""] * length
    assert encode_array([encode_piece(b"")] * length, versioned=True) == encode(items)


def test_a_piece_refuses_what_encode_refuses() -> None:
    with pytest.raises(TypeError):
        encode_piece(1.5)
    with pytest.raises(Oversized):
        encode_piece(2**64)


@given(st.dictionaries(st.text(max_size=6), st.integers(0, 9), max_size=8))
def test_map_order_does_not_change_bytes(mapping: dict[str, int]) -> None:
    reversed_mapping = dict(reversed(list(mapping.items())))
    assert encode(mapping) == encode(reversed_mapping)


@given(st.binary(max_size=200))
def test_garbage_is_a_typed_error_never_a_crash(data: bytes) -> None:
    try:
        value = decode(data)
    except CodecError:
        return
    assert encode(value) == data


@given(values, st.data())
def test_mutations_either_fail_or_stay_canonical(value: object, data: st.DataObject) -> None:
    encoded = bytearray(encode(value))
    index = data.draw(st.integers(0, len(encoded) - 1))
    encoded[index] ^= data.draw(st.integers(1, 255))
    try:
        decoded = decode(bytes(encoded))
    except CodecError:
        return
    assert encode(decoded) == bytes(encoded)


@pytest.mark.parametrize(
    ("data", "error", "code"),
    [
        (b"", CodecError, "codec_malformed"),
        (b"\x02\x01", UnknownVersion, "codec_unknown_version"),
        (encode(1) + b"\x00", TrailingBytes, "codec_trailing_bytes"),
        (b"\x01\x18\x01", NotCanonical, "codec_not_canonical"),  # 1 encoded in two bytes
        (b"\x01\xa2\x61b\x01\x61a\x02", NotCanonical, "codec_not_canonical"),  # unsorted keys
        (b"\x01\xfb" + b"\x00" * 8, CodecError, "codec_malformed"),  # float
        (b"\x01\xc1\x01", CodecError, "codec_malformed"),  # tag
        (b"\x01\x9f\x01\xff", CodecError, "codec_malformed"),  # indefinite list
        (b"\x01\xa2\x61a\x01\x61a\x02", CodecError, "codec_malformed"),  # duplicate key
        (b"\x01\xa1\x01\x01", CodecError, "codec_malformed"),  # int key
        (b"\x01\x5a\xff\xff\xff\xff", CodecError, "codec_malformed"),  # truncated huge bytes
        (b"\x01" + b"\x81" * 40 + b"\x01", Oversized, "codec_oversized"),  # too deep
    ],
)
def test_rejections_have_codes(data: bytes, error: type[CodecError], code: str) -> None:
    with pytest.raises(error) as info:
        decode(data)
    assert info.value.code == code


def test_size_and_item_limits() -> None:
    with pytest.raises(Oversized):
        decode(encode(b"x" * 100), max_size=50)
    with pytest.raises(Oversized):
        decode(encode(list(range(100))), max_items=50)
    with pytest.raises(Oversized):
        encode(2**64)
    with pytest.raises(TypeError):
        encode(1.5)
    with pytest.raises(TypeError):
        encode({1: 2})


@record("test.transfer")
@dataclass(frozen=True, slots=True, kw_only=True)
class Transfer(Record):
    amount: int
    to: bytes
    memo: str | None
    tags: tuple[str, ...]


@record("test.batch")
@dataclass(frozen=True, slots=True, kw_only=True)
class Batch(Record):
    items: tuple[Transfer, ...]
    meta: dict[str, int]
    final: bool


def test_records_round_trip() -> None:
    batch = Batch(
        items=(Transfer(amount=5, to=b"\x01" * 20, memo=None, tags=("a",)),),
        meta={"n": 1},
        final=True,
    )
    assert Batch.from_bytes(batch.to_bytes()) == batch
    assert batch.to_bytes() == Batch.from_bytes(batch.to_bytes()).to_bytes()


@pytest.mark.parametrize(
    "value",
    [
        ["test.unknown", 1],
        ["test.transfer", 1, b"x", None],  # missing field
        ["test.transfer", "1", b"x", None, []],  # wrong type
        ["test.transfer", True, b"x", None, []],  # bool is not int
        ["test.transfer", 1, b"x", 5, []],  # not str | None
        [1, 2],
        "not a record",
    ],
)
def test_record_schema_mismatch(value: object) -> None:
    with pytest.raises(SchemaMismatch) as info:
        Transfer.from_bytes(encode(value))
    assert info.value.code == "codec_schema_mismatch"


def test_record_of_other_kind_is_rejected() -> None:
    transfer = Transfer(amount=1, to=b"", memo="m", tags=())
    with pytest.raises(SchemaMismatch):
        Batch.from_bytes(transfer.to_bytes())


def test_abi_round_trip_and_strictness() -> None:
    data = abi_encode(["uint256", "bytes", "address"], [7, b"abc", "0x" + "11" * 20])
    assert abi_decode(["uint256", "bytes", "address"], data)[:2] == (7, b"abc")
    with pytest.raises(TrailingBytes):
        abi_decode(["uint256"], abi_encode(["uint256"], [1]) + b"\x00" * 32)
    with pytest.raises(CodecError):
        abi_decode(["uint256", "bytes"], data[:40])
    with pytest.raises(Oversized):
        abi_decode(["bytes"], data, max_size=10)


@given(st.binary(max_size=200))
def test_abi_garbage_never_crashes(data: bytes) -> None:
    try:
        abi_decode(["uint64", "bytes", "bytes32"], data)
    except CodecError:
        pass


def test_subclasses_of_codec_types_encode_as_their_base_values() -> None:
    """The exact-type fast path must not change what subclasses (enums, ordered maps) encode to."""
    import collections
    import enum

    class Level(enum.IntEnum):
        HIGH = 3

    class Name(enum.StrEnum):
        ALICE = "alice"

    value = collections.OrderedDict([("b", Level.HIGH), ("a", [Name.ALICE, (1, 2)])])
    assert encode(value) == encode({"a": ["alice", [1, 2]], "b": 3})
    with pytest.raises(TypeError):
        encode({"x": 1.5})
    with pytest.raises(TypeError):
        encode({1: "non-text key"})


_LAYOUTS = [(), (64,), (64, 64), (8, 256)]


def _eth_abi(bits: tuple[int, ...], data: bytes) -> tuple[object, ...] | None:
    from eth_abi import decode as eth_decode
    from eth_abi.exceptions import DecodingError

    try:
        return tuple(eth_decode([f"uint{b}" for b in bits] + ["bytes"], data, strict=True))
    except (DecodingError, OverflowError, ValueError):
        return None


def _mutated(data: bytes, index: int, value: int) -> bytes:
    if not data:
        return bytes([value])
    index %= len(data)
    return data[:index] + bytes([value]) + data[index + 1 :]


@given(
    st.sampled_from(_LAYOUTS),
    st.data(),
    st.binary(max_size=80),
    st.integers(0, 400),
    st.integers(0, 255),
    st.sampled_from(["none", "mutate", "append", "cut"]),
)
def test_the_fast_event_reader_gives_what_eth_abi_gives(
    bits: tuple[int, ...],
    data: st.DataObject,
    payload: bytes,
    index: int,
    value: int,
    change: str,
) -> None:
    """``canonical_uints_then_bytes`` (how cores and the SDK read ``Command`` and ``Egress``
    logs) answers exactly the canonical encodings, with eth-abi's strict values; on anything
    else (a bit flipped, bytes added or cut: offsets, lengths, padding, integer ranges) it
    answers None and eth-abi decides, so no input reads differently."""
    ints = [data.draw(st.integers(0, 2**b - 1)) for b in bits]
    encoded = abi_encode([f"uint{b}" for b in bits] + ["bytes"], [*ints, payload])
    assert canonical_uints_then_bytes(encoded, bits) == (*ints, payload) == _eth_abi(bits, encoded)
    if change == "mutate":
        encoded = _mutated(encoded, index, value)
    elif change == "append":
        encoded += bytes([value]) * (1 + index % 40)
    elif change == "cut":
        encoded = encoded[: index % (len(encoded) + 1)]
    fast = canonical_uints_then_bytes(encoded, bits)
    assert fast is None or fast == _eth_abi(bits, encoded)


def test_the_fast_event_reader_refuses_each_non_canonical_part() -> None:
    good = abi_encode(["uint64", "bytes"], [7, b"abc"])
    assert canonical_uints_then_bytes(good, (64,)) == (7, b"abc")
    word = 32
    for bad in (
        b"\x01" + good[1:],  # the integer beyond 64 bits
        good[:word] + (96).to_bytes(32, "big") + good[2 * word :],  # another offset
        good[: 2 * word] + (40).to_bytes(32, "big") + good[3 * word :],  # length past the data
        good[:-1] + b"\x01",  # dirty padding
        good + bytes(32),  # a trailing word
        good[:-1],  # cut short
    ):
        assert canonical_uints_then_bytes(bad, (64,)) is None
    assert uints_then_bytes(["uint64", "bytes"]) == (64,)
    assert uints_then_bytes(["bytes"]) == ()
    assert uints_then_bytes(["uint64", "string"]) is None
    assert uints_then_bytes(["bytes32", "bytes"]) is None
    assert uints_then_bytes([]) is None


@record("test.flat.inner")
@dataclass(frozen=True, slots=True, kw_only=True)
class FlatInner(Record):
    key: bytes
    label: str
    count: int


@record("test.flat")
@dataclass(frozen=True, slots=True, kw_only=True)
class Flat(Record):
    raw: bytes
    name: str
    number: int
    flag: bool
    maybe_raw: bytes | None
    maybe_name: str | None
    maybe_number: int | None
    maybe_flag: bool | None
    inner: FlatInner
    maybe_inner: FlatInner | None


@record("test.flat.checked")
@dataclass(frozen=True, slots=True, kw_only=True)
class FlatChecked(Record):
    size: int

    def __post_init__(self) -> None:
        if self.size > 1000:
            raise ValueError("too big")


_ints = st.integers(-(2**64), 2**64 - 1) | st.sampled_from(
    [0, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, -1, -24, -25, -257, -(2**64)]
)
_inner = st.builds(FlatInner, key=st.binary(max_size=300), label=st.text(max_size=40), count=_ints)
_flats = st.builds(
    Flat,
    raw=st.binary(max_size=300),
    name=st.text(max_size=40),
    number=_ints,
    flag=st.booleans(),
    maybe_raw=st.none() | st.binary(max_size=30),
    maybe_name=st.none() | st.text(max_size=30),
    maybe_number=st.none() | _ints,
    maybe_flag=st.none() | st.booleans(),
    inner=_inner,
    maybe_inner=st.none() | _inner,
)


def _generic(data: bytes) -> object:
    """What the generic decoder makes of ``data`` (None: a typed refusal)."""
    from veilnet.codec import decode_record

    try:
        return decode_record(data)
    except CodecError:
        return None


@given(_flats)
def test_flat_records_read_and_write_as_the_generic_codec(item: Flat) -> None:
    """A flat record's direct encoding is byte for byte the generic one, and reads back."""
    from veilnet.codec import _flat, _records

    layout = _records._layout(Flat)
    assert layout is not None
    generic = encode(_records._to_value(item))
    assert _flat.encode(layout, item) == generic == item.to_bytes()
    assert _flat.decode(layout, generic) == item == Flat.from_bytes(generic) == _generic(generic)


@given(
    _flats,
    st.integers(0, 2000),
    st.integers(0, 255),
    st.sampled_from(["mutate", "insert", "delete", "append", "cut"]),
)
def test_the_flat_reader_never_reads_what_the_generic_reader_would_not(
    item: Flat, index: int, value: int, change: str
) -> None:
    """Bytes changed anywhere (heads, lengths, kinds, values, the end): the flat reader
    answers None or exactly what the generic decoder reads, so no input is accepted or read
    differently by the fast path."""
    from veilnet.codec import _flat, _records

    data = item.to_bytes()
    spot = index % (len(data) + 1)
    if change == "mutate":
        data = _mutated(data, index, value)
    elif change == "insert":
        data = data[:spot] + bytes([value]) + data[spot:]
    elif change == "delete":
        data = data[:spot] + data[spot + 1 :]
    elif change == "append":
        data += bytes([value])
    else:
        data = data[:spot]
    layout = _records._layout(Flat)
    assert layout is not None
    fast = _flat.decode(layout, data)
    if fast is not None:
        assert fast == _generic(data)


def test_the_flat_reader_refuses_each_non_canonical_part() -> None:
    """Each shape the generic decoder refuses (or reads as another record) gets None from
    the flat reader, and ``from_bytes`` still raises the generic decoder's typed error."""
    from veilnet.codec import _flat, _records

    layout = _records._layout(FlatInner)
    assert layout is not None
    good = FlatInner(key=b"k", label="l", count=5).to_bytes()
    kind = b"\x6ftest.flat.inner"
    assert good == b"\x01\x84" + kind + b"\x41k\x61l\x05"
    assert _flat.decode(layout, good) == FlatInner(key=b"k", label="l", count=5)
    for bad, error in (
        (b"\x01\x84" + kind + b"\x58\x01k\x61l\x05", NotCanonical),  # a long length head
        (b"\x01\x84" + kind + b"\x41k\x61l\x18\x05", NotCanonical),  # a long integer head
        (b"\x01\x84" + kind + b"\x41k\x61l\x19\x00\xff", NotCanonical),  # two bytes for one
        (b"\x01\x84" + kind + b"\x5f\x41k\xff\x61l\x05", CodecError),  # an indefinite length
        (b"\x01\x84" + kind + b"\x41k\x61l\xf9\x00\x00", CodecError),  # a float
        (b"\x01\x84" + kind + b"\x41k\x61l\xf5", SchemaMismatch),  # a bool for an int
        (b"\x01\x84" + kind + b"\x61k\x61l\x05", SchemaMismatch),  # text for bytes
        (b"\x01\x84" + kind + b"\x41k\x61\xff\x05", CodecError),  # text that is not UTF-8
        (b"\x01\x83" + kind + b"\x41k\x61l", SchemaMismatch),  # a field missing
        (good + b"\x00", TrailingBytes),
        (good[:-1], CodecError),
        (b"\x02" + good[1:], UnknownVersion),
        (FlatChecked(size=1).to_bytes(), SchemaMismatch),  # another kind
    ):
        assert _flat.decode(layout, bad) is None, bad
        with pytest.raises(error):
            FlatInner.from_bytes(bad)
    checked = _records._layout(FlatChecked)
    assert checked is not None
    refused = encode(["test.flat.checked", 5000])  # what the constructor refuses
    assert _flat.decode(checked, refused) is None
    with pytest.raises(SchemaMismatch):
        FlatChecked.from_bytes(refused)
    assert FlatInner.from_bytes(good * 1, max_size=len(good)).count == 5
    with pytest.raises(Oversized):
        FlatInner.from_bytes(good, max_size=len(good) - 1)


def test_only_flat_records_take_the_flat_path() -> None:
    """Tuples, maps and unions of two types keep the generic path; values of another type than
    declared (a subclass, a bytearray) are written by the generic encoder; the query records
    every query crosses are flat."""
    import enum

    from veilnet.codec import _flat, _records
    from veilnet.protocol import envelopes

    assert _records._layout(Transfer) is None  # a tuple field
    assert _records._layout(Batch) is None
    for cls in (
        envelopes.QueryRequest,
        envelopes.QueryPlaintext,
        envelopes.QueryResponse,
        envelopes.QueryCertificate,
    ):
        assert _records._layout(cls) is not None, cls

    class Count(enum.IntEnum):
        FIVE = 5

    layout = _records._layout(FlatInner)
    assert layout is not None
    odd = FlatInner(key=bytearray(b"k"), label="l", count=Count.FIVE)  # type: ignore[arg-type]
    assert _flat.encode(layout, odd) is None
    assert odd.to_bytes() == encode(_records._to_value(odd))  # whatever the generic one makes
    enum_only = FlatInner(key=b"k", label="l", count=Count.FIVE)
    assert _flat.encode(layout, enum_only) is None
    assert enum_only.to_bytes() == FlatInner(key=b"k", label="l", count=5).to_bytes()


def test_a_record_nested_past_the_depth_limit_keeps_the_generic_path() -> None:
    """The flat path has no limits walk of its own: a record whose encoding nests deeper than
    ``MAX_DEPTH`` (which the generic decoder refuses) gets no flat layout."""
    from dataclasses import make_dataclass

    from veilnet.codec import _records
    from veilnet.codec.constants import MAX_DEPTH

    inner: type[Record] = FlatInner
    for level in range(MAX_DEPTH):
        wrapper = make_dataclass(
            f"Deep{level}", [("child", inner)], bases=(Record,), frozen=True, kw_only=True
        )
        inner = record(f"test.flat.deep{level}")(wrapper)
        layout = _records._layout(inner)
        if level + 2 <= MAX_DEPTH:
            assert layout is not None and layout.depth == level + 2
        else:
            assert layout is None
