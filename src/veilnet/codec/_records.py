"""Typed records over the canonical codec: frozen dataclasses encoded as ``[kind, *fields]``.
Decoding checks the kind, the arity and every field's type, so the inside can trust the values."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar, cast, get_args, get_origin

from veilnet.codec import _flat
from veilnet.codec._canonical import Value, decode, encode, head
from veilnet.codec.constants import MAX_DEPTH, MAX_ENCODED_SIZE, MAX_ITEMS
from veilnet.codec.errors import CodecError, SchemaMismatch

__all__ = ["Record", "decode_record", "encode_record", "record"]

R = TypeVar("R", bound="Record")

_KINDS: dict[str, type[Record]] = {}


class Record:
    """Base of codec records; subclass with ``@record("kind")`` on a frozen dataclass.

    Supported field types: ``int``, ``bool``, ``bytes``, ``str``, ``None`` unions (``X | None``),
    ``tuple[X, ...]``, nested ``Record`` subclasses, and ``dict[str, X]``.
    """

    KIND: ClassVar[str]

    def to_bytes(self) -> bytes:
        return encode_record(self)

    @classmethod
    def from_bytes(cls: type[R], data: bytes, *, max_size: int = MAX_ENCODED_SIZE) -> R:
        layout = _layout(cls)
        if layout is not None and len(data) <= max_size:
            fast: R | None = _flat.decode(layout, data)
            if fast is not None:
                return fast
        found = decode_record(data, max_size=max_size)
        if not isinstance(found, cls):
            raise SchemaMismatch(f"expected a {cls.KIND} record, got {found.KIND}")
        return found


def record(kind: str) -> Callable[[type[R]], type[R]]:
    """Register a dataclass as the record ``kind`` (kinds are unique per process)."""

    def register(cls: type[R]) -> type[R]:
        if not dataclasses.is_dataclass(cast(Any, cls)):
            raise TypeError(f"{cls.__name__} must be a dataclass")
        if kind in _KINDS and _KINDS[kind] is not cls:
            raise ValueError(f"record kind {kind!r} is already registered")
        cls.KIND = kind
        _KINDS[kind] = cls
        return cls

    return register


def _to_value(value: Any) -> Value:
    if isinstance(value, Record):
        return [value.KIND, *(_to_value(getattr(value, name)) for name in _names(type(value)))]
    if isinstance(value, tuple | list):
        return [_to_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_value(v) for k, v in value.items()}
    return value  # type: ignore[no-any-return]


def encode_record(item: Record) -> bytes:
    """Canonical bytes of a record."""
    layout = _layout(type(item))
    if layout is not None:
        fast = _flat.encode(layout, item)
        if fast is not None:
            return fast
    return encode(_to_value(item))


def decode_record(data: bytes, *, max_size: int = MAX_ENCODED_SIZE) -> Record:
    """Decode any registered record; raises a CodecError subclass on any mismatch."""
    found: Record = _decode_record(decode(data, max_size=max_size), Record)
    return found


# Each record class gets a plan, built on first use from its type hints: a field name and a
# checking converter per field. Building it once keeps typing introspection off the hot path.
Converter = Callable[[Value], Any]
_NAMES: dict[type, tuple[str, ...]] = {}
_PLANS: dict[type, tuple[tuple[str, Converter], ...]] = {}
_CONVERTERS: dict[Any, Converter] = {}


def _names(cls: type) -> tuple[str, ...]:
    names = _NAMES.get(cls)
    if names is None:
        names = tuple(f.name for f in dataclasses.fields(cls) if f.init)
        _NAMES[cls] = names
    return names


def _plan(cls: type) -> tuple[tuple[str, Converter], ...]:
    plan = _PLANS.get(cls)
    if plan is None:
        hints = typing.get_type_hints(cls)
        plan = tuple((name, _converter(hints[name])) for name in _names(cls))
        _PLANS[cls] = plan
    return plan


_LAYOUTS: dict[type, _flat.Layout | None] = {}


def _layout(cls: type) -> _flat.Layout | None:
    """The flat layout of a record class (``veilnet.codec._flat``), or None where a field is
    of another type (a tuple, a map, a union of two types) or the class has no kind."""
    try:
        return _LAYOUTS[cls]
    except KeyError:
        pass
    _LAYOUTS[cls] = None  # a record that nests itself is not flat
    kind = cls.__dict__.get("KIND")
    if not isinstance(kind, str) or _KINDS.get(kind) is not cls:
        return None
    try:
        hints = typing.get_type_hints(cls)
    except (NameError, TypeError):  # encoding needs no hints: the generic path still works
        return None
    fields: list[tuple[str, int, bool, _flat.Layout | None]] = []
    for name in _names(cls):
        found = _flat_field(hints[name])
        if found is None:
            return None
        fields.append((name, *found))
    nested = [field[3] for field in fields if field[3] is not None]
    depth = 1 + max((layout.depth for layout in nested), default=0)
    items = 2 + len(fields) + sum(layout.items for layout in nested)
    if depth > MAX_DEPTH or items > MAX_ITEMS:  # the generic decoder refuses such records
        return None
    raw = kind.encode("utf-8")
    prefix = head(4, len(fields) + 1) + head(3, len(raw)) + raw
    layout = _LAYOUTS[cls] = _flat.Layout(cls, prefix, tuple(fields), depth, items)
    return layout


_FLAT_LEAVES = {bytes: _flat.BYTES, str: _flat.TEXT, int: _flat.INT, bool: _flat.BOOL}


def _flat_field(expected: Any) -> tuple[int, bool, _flat.Layout | None] | None:
    nullable = False
    if get_origin(expected) in (types.UnionType, typing.Union):
        options = [option for option in get_args(expected) if option is not type(None)]
        if len(options) != 1:
            return None
        expected, nullable = options[0], True
    if expected in _FLAT_LEAVES:
        return _FLAT_LEAVES[expected], nullable, None
    if isinstance(expected, type) and issubclass(expected, Record):
        nested = _layout(expected)
        return None if nested is None else (_flat.RECORD, nullable, nested)
    return None


def _decode_record(value: Value, expected: type[Record]) -> Record:
    if not isinstance(value, list) or not value or not isinstance(value[0], str):
        raise SchemaMismatch("a record must be a list starting with its kind")
    cls = _KINDS.get(value[0])
    if cls is None:
        raise SchemaMismatch(f"unknown record kind {value[0]!r}")
    if not issubclass(cls, expected):
        raise SchemaMismatch(f"record kind {value[0]!r} is not allowed here")
    plan = _plan(cls)
    if len(value) != len(plan) + 1:
        raise SchemaMismatch(f"{cls.KIND} has {len(plan)} fields, got {len(value) - 1}")
    kwargs = {name: convert(v) for (name, convert), v in zip(plan, value[1:], strict=True)}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise SchemaMismatch(f"invalid {cls.KIND}: {exc}") from exc
    except CodecError:
        raise


def _converter(expected: Any) -> Converter:
    """The checking converter for one field type (cached per type)."""
    found = _CONVERTERS.get(expected)
    if found is None:
        found = _build_converter(expected)
        _CONVERTERS[expected] = found
    return found


def _build_converter(expected: Any) -> Converter:
    origin = get_origin(expected)
    if isinstance(expected, type) and issubclass(expected, Record):
        return lambda value: _decode_record(value, expected)
    if origin in (types.UnionType, typing.Union):
        return _union_converter(expected)
    if origin is tuple:
        return _tuple_converter(get_args(expected))
    if origin is dict:
        key_type, item_type = get_args(expected)
        if key_type is not str:
            raise TypeError(f"unsupported record field type {expected!r}")
        convert_item = _converter(item_type)

        def to_map(value: Value) -> Any:
            if not isinstance(value, dict):
                raise SchemaMismatch("expected a map")
            return {k: convert_item(v) for k, v in value.items()}

        return to_map
    if expected in _LEAF_CONVERTERS:
        return _LEAF_CONVERTERS[expected]
    raise TypeError(f"unsupported record field type {expected!r}")


def _union_converter(expected: Any) -> Converter:
    options = get_args(expected)
    nullable = type(None) in options
    converters = [_converter(option) for option in options if option is not type(None)]

    def to_union(value: Value) -> Any:
        if value is None and nullable:
            return None
        for convert in converters:
            try:
                return convert(value)
            except SchemaMismatch:
                continue
        raise SchemaMismatch(f"value does not match {expected}")

    return to_union


def _tuple_converter(args: tuple[Any, ...]) -> Converter:
    if len(args) == 2 and args[1] is Ellipsis:
        convert_item = _converter(args[0])

        def to_variadic(value: Value) -> Any:
            if not isinstance(value, list):
                raise SchemaMismatch("expected a list")
            return tuple(convert_item(v) for v in value)

        return to_variadic
    converters = [_converter(a) for a in args]

    def to_fixed(value: Value) -> Any:
        if not isinstance(value, list):
            raise SchemaMismatch("expected a list")
        if len(converters) != len(value):
            raise SchemaMismatch("tuple has the wrong length")
        return tuple(convert(v) for convert, v in zip(converters, value, strict=True))

    return to_fixed


def _to_bool(value: Value) -> bool:
    if not isinstance(value, bool):
        raise SchemaMismatch("expected a bool")
    return value


def _to_int(value: Value) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SchemaMismatch("expected an int")
    return value


def _instance_of(kind: type) -> Converter:
    def convert(value: Value) -> Any:
        if not isinstance(value, kind):
            raise SchemaMismatch(f"expected {kind.__name__}")
        return value

    return convert


def _to_none(value: Value) -> None:
    if value is not None:
        raise SchemaMismatch("expected null")


_LEAF_CONVERTERS: dict[Any, Converter] = {
    bool: _to_bool,
    int: _to_int,
    bytes: _instance_of(bytes),
    str: _instance_of(str),
    type(None): _to_none,
}
