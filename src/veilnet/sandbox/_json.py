"""Canonical JSON for everything that crosses the sandbox boundary (payloads, state, events).
Sorted keys, no whitespace, UTF-8, finite numbers only, bounded depth and size."""

from __future__ import annotations

import json
import math
from typing import Any

from veilnet.sandbox import constants as c
from veilnet.sandbox.errors import SandboxAgentError, SandboxPayloadTooLarge

JSONValue = Any

_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode
"""``json.dumps`` with these options, less the encoder it builds on every call (three or four
calls an invocation)."""


def _check(value: JSONValue, depth: int) -> None:
    if depth > c.MAX_JSON_DEPTH:
        raise SandboxPayloadTooLarge("JSON value nested too deeply", max_depth=c.MAX_JSON_DEPTH)
    if value is None or isinstance(value, (bool, int, str)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SandboxAgentError("JSON numbers must be finite")
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _check(item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise SandboxAgentError("JSON object keys must be strings")
            _check(item, depth + 1)
        return
    raise SandboxAgentError(f"value of type {type(value).__name__} is not JSON")


def canonical_json(value: JSONValue, *, max_bytes: int, what: str = "value") -> bytes:
    """Encode ``value`` canonically.

    Raises:
        SandboxAgentError: the value is not JSON (bytes, NaN, non-string keys, ...).
        SandboxPayloadTooLarge: it is deeper than ``MAX_JSON_DEPTH`` or longer than ``max_bytes``.
    """
    _check(value, 0)
    data = _CANONICAL(value).encode()
    if len(data) > max_bytes:
        raise SandboxPayloadTooLarge(
            f"{what} is {len(data)} bytes, over the {max_bytes}-byte limit",
            size=len(data),
            limit=max_bytes,
        )
    return data


def parse_json(data: bytes | str, *, max_bytes: int, what: str = "value") -> JSONValue:
    """Decode JSON text produced by a guest or stored in state, bounded in size and depth.

    Raises:
        SandboxPayloadTooLarge: too long or too deep.
        SandboxAgentError: not valid JSON.
    """
    if len(data) > max_bytes:
        raise SandboxPayloadTooLarge(
            f"{what} is {len(data)} bytes, over the {max_bytes}-byte limit",
            size=len(data),
            limit=max_bytes,
        )
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise SandboxAgentError(f"{what} is not valid JSON") from exc
    _check(value, 0)
    return value
