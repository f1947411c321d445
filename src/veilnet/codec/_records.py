"""Typed records over the canonical codec: frozen dataclasses encoded as ``[kind, *fields]``.
Decoding checks the kind, the arity and every field's type, so the inside can trust the values."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar, cast, get_args, get_origin

from veilnet.codec._canonical import Value, decode, encode
from veilnet.codec.constants import MAX_ENCODED_SIZE
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
        return [value.KIND, *(_to_value(getattr(value, f.name)) for f in _fields(type(value)))]
    if isinstance(value, tuple | list):
        return [_to_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_value(v) for k, v in value.items()}
    return value  # type: ignore[no-any-return]


def encode_record(item: Record) -> bytes:
    """Canonical bytes of a record."""
    return encode(_to_value(item))


def decode_record(data: bytes, *, max_size: int = MAX_ENCODED_SIZE) -> Record:
    """Decode any registered record; raises a CodecError subclass on any mismatch."""
    found: Record = _from_value(decode(data, max_size=max_size), Record)
    return found


def _fields(cls: type) -> tuple[dataclasses.Field[Any], ...]:
    return tuple(f for f in dataclasses.fields(cls) if f.init)


def _hints(cls: type) -> dict[str, Any]:
    cached: dict[str, Any] | None = cls.__dict__.get("_codec_hints")
    if cached is None:
        cached = typing.get_type_hints(cls)
        setattr(cls, "_codec_hints", cached)  # noqa: B010 - cache on the class itself
    return cached


def _from_value(value: Value, expected: Any) -> Any:
    origin = get_origin(expected)
    if expected is Record or (isinstance(expected, type) and issubclass(expected, Record)):
        if not isinstance(value, list) or not value or not isinstance(value[0], str):
            raise SchemaMismatch("a record must be a list starting with its kind")
        cls = _KINDS.get(value[0])
        if cls is None:
            raise SchemaMismatch(f"unknown record kind {value[0]!r}")
        if not issubclass(cls, expected):
            raise SchemaMismatch(f"record kind {value[0]!r} is not allowed here")
        fields = _fields(cls)
        if len(value) != len(fields) + 1:
            raise SchemaMismatch(f"{cls.KIND} has {len(fields)} fields, got {len(value) - 1}")
        hints = _hints(cls)
        kwargs = {
            f.name: _from_value(v, hints[f.name]) for f, v in zip(fields, value[1:], strict=True)
        }
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise SchemaMismatch(f"invalid {cls.KIND}: {exc}") from exc
        except CodecError:
            raise
    if origin in (types.UnionType, typing.Union):
        options = get_args(expected)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _from_value(value, option)
            except SchemaMismatch:
                continue
        raise SchemaMismatch(f"value does not match {expected}")
    if origin is tuple:
        args = get_args(expected)
        if not isinstance(value, list):
            raise SchemaMismatch("expected a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_from_value(v, args[0]) for v in value)
        if len(args) != len(value):
            raise SchemaMismatch("tuple has the wrong length")
        return tuple(_from_value(v, a) for v, a in zip(value, args, strict=True))
    if origin is dict:
        key_type, item_type = get_args(expected)
        if not isinstance(value, dict) or key_type is not str:
            raise SchemaMismatch("expected a map")
        return {k: _from_value(v, item_type) for k, v in value.items()}
    if expected is bool:
        if not isinstance(value, bool):
            raise SchemaMismatch("expected a bool")
        return value
    if expected is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SchemaMismatch("expected an int")
        return value
    if expected in (bytes, str):
        if not isinstance(value, expected):
            raise SchemaMismatch(f"expected {expected.__name__}")
        return value
    if expected is type(None):
        if value is not None:
            raise SchemaMismatch("expected null")
        return None
    raise TypeError(f"unsupported record field type {expected!r}")
