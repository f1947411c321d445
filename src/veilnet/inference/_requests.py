"""Parsing and bounding of OpenAI-compatible request bodies into frozen, validated values.
Unknown fields are kept for upstream forwarding but ignored by the local backend."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from veilnet.inference.constants import (
    DEFAULT_MAX_TOKENS,
    MAX_MESSAGES,
    MAX_REQUEST_BYTES,
    MAX_STOP_SEQUENCES,
    MAX_TOKENS_LIMIT,
)
from veilnet.inference.errors import InferenceRequestInvalid, InferenceRequestTooLarge

__all__ = [
    "ChatMessage",
    "ChatRequest",
    "CompletionRequest",
    "SamplingParams",
    "parse_chat_request",
    "parse_completion_request",
    "parse_json_body",
]

_ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatMessage:
    role: str
    content: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SamplingParams:
    """The sampling parameters both backends understand, already bounded."""

    max_tokens: int = DEFAULT_MAX_TOKENS
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatRequest:
    model: str
    messages: tuple[ChatMessage, ...]
    params: SamplingParams
    stream: bool = False
    include_usage: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """The body as the client sent it (for upstream forwarding)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CompletionRequest:
    model: str
    prompt: str
    params: SamplingParams
    stream: bool = False
    include_usage: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


def parse_json_body(body: bytes) -> dict[str, Any]:
    """The JSON object in ``body``; raises InferenceRequestTooLarge or InferenceRequestInvalid."""
    if len(body) > MAX_REQUEST_BYTES:
        raise InferenceRequestTooLarge(
            "request body is too large", limit=MAX_REQUEST_BYTES, size=len(body)
        )
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InferenceRequestInvalid("request body is not JSON") from exc
    if not isinstance(value, dict):
        raise InferenceRequestInvalid("request body must be a JSON object")
    return value


def parse_chat_request(body: Mapping[str, Any]) -> ChatRequest:
    """Validate a ``/v1/chat/completions`` body. Raises InferenceRequestInvalid."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InferenceRequestInvalid("'messages' must be a non-empty list", field="messages")
    if len(messages) > MAX_MESSAGES:
        raise InferenceRequestInvalid("too many messages", field="messages", limit=MAX_MESSAGES)
    parsed = tuple(_message(m, i) for i, m in enumerate(messages))
    stream, include_usage = _stream(body)
    return ChatRequest(
        model=_model(body),
        messages=parsed,
        params=_sampling(body),
        stream=stream,
        include_usage=include_usage,
        raw=body,
    )


def parse_completion_request(body: Mapping[str, Any]) -> CompletionRequest:
    """Validate a ``/v1/completions`` body (one prompt string). Raises InferenceRequestInvalid."""
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise InferenceRequestInvalid("'prompt' must be a string", field="prompt")
    stream, include_usage = _stream(body)
    return CompletionRequest(
        model=_model(body),
        prompt=prompt,
        params=_sampling(body),
        stream=stream,
        include_usage=include_usage,
        raw=body,
    )


def _model(body: Mapping[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model or len(model) > 256:
        raise InferenceRequestInvalid("'model' must be a non-empty string", field="model")
    return model


def _message(value: Any, index: int) -> ChatMessage:
    if not isinstance(value, dict):
        raise InferenceRequestInvalid(f"message {index} must be an object", field="messages")
    role = value.get("role")
    if role not in _ROLES:
        raise InferenceRequestInvalid(f"message {index} has an unknown role", field="messages")
    content = value.get("content")
    if content is None:
        content = ""
    if isinstance(content, list):
        content = "".join(_text_part(part, index) for part in content)
    if not isinstance(content, str):
        raise InferenceRequestInvalid(f"message {index} content must be a string", field="messages")
    return ChatMessage(role=role, content=content)


def _text_part(part: Any, index: int) -> str:
    if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
        text: str = part["text"]
        return text
    raise InferenceRequestInvalid(
        f"message {index}: only text content parts are supported", field="messages"
    )


def _stream(body: Mapping[str, Any]) -> tuple[bool, bool]:
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise InferenceRequestInvalid("'stream' must be a boolean", field="stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise InferenceRequestInvalid("'stream_options' must be an object", field="stream_options")
    return stream, bool(options.get("include_usage", False))


def _sampling(body: Mapping[str, Any]) -> SamplingParams:
    n = body.get("n", 1)
    if n not in (1, None):
        raise InferenceRequestInvalid("only n=1 is supported", field="n")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is None:
        max_tokens = DEFAULT_MAX_TOKENS
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise InferenceRequestInvalid("'max_tokens' must be an integer", field="max_tokens")
    if not 1 <= max_tokens <= MAX_TOKENS_LIMIT:
        raise InferenceRequestInvalid(
            f"'max_tokens' must be between 1 and {MAX_TOKENS_LIMIT}", field="max_tokens"
        )
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise InferenceRequestInvalid("'seed' must be an integer", field="seed")
    if seed is not None and not 0 <= seed < 2**32:
        raise InferenceRequestInvalid("'seed' must fit in 32 bits", field="seed")
    return SamplingParams(
        max_tokens=max_tokens,
        temperature=_number(body, "temperature", 1.0, 0.0, 2.0),
        top_p=_number(body, "top_p", 1.0, 0.0, 1.0),
        seed=seed,
        stop=_stop(body.get("stop")),
        presence_penalty=_number(body, "presence_penalty", 0.0, -2.0, 2.0),
        frequency_penalty=_number(body, "frequency_penalty", 0.0, -2.0, 2.0),
    )


def _number(body: Mapping[str, Any], name: str, default: float, low: float, high: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise InferenceRequestInvalid(f"'{name}' must be a number", field=name)
    if not low <= value <= high:
        raise InferenceRequestInvalid(f"'{name}' must be between {low} and {high}", field=name)
    return float(value)


def _stop(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if (
        not isinstance(value, list)
        or len(value) > MAX_STOP_SEQUENCES
        or not all(isinstance(s, str) and s for s in value)
    ):
        raise InferenceRequestInvalid(
            f"'stop' must be a string or up to {MAX_STOP_SEQUENCES} non-empty strings",
            field="stop",
        )
    return tuple(value)
