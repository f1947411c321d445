"""A real inference gateway for tests that need no model: the gateway app on the development TEE
(quotes, sealed chats, receipts all real) over a deterministic echo backend, and a host channel.

``EchoBackend`` answers ``"echo: "`` and every message joined by ``" | "``, for any model; it
stands in for the model only (the slow inference tests run llama.cpp). ``GatewayHost`` is what
a worker host does with the core's ``IO_GATEWAY`` calls: it posts them to the gateway over
HTTP, keeps every byte it carried (``sent``, ``received``), and lets a test replace an answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from veilnet.crypto import SecretKey

__all__ = ["EchoBackend", "GatewayHost", "core_chat", "dev_gateway"]

_CREATED = 1_700_000_000


class EchoBackend:
    """A deterministic stand-in for the model: a chat answers every message joined, a completion
    its prompt, each after ``echo: ``."""

    name = "echo"

    def models(self) -> list[dict[str, Any]]:
        return [{"id": self.name, "object": "model", "created": _CREATED, "owned_by": "test"}]

    def chat(self, request: Any) -> dict[str, Any]:
        text = "echo: " + " | ".join(m.content for m in request.messages)
        return {
            "id": "echo",
            "object": "chat.completion",
            "created": _CREATED,
            "model": request.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }

    def chat_stream(self, request: Any) -> Iterator[dict[str, Any]]:
        yield self.chat(request)

    def complete(self, request: Any) -> dict[str, Any]:
        return {
            "id": "echo",
            "object": "text_completion",
            "created": _CREATED,
            "model": request.model,
            "choices": [{"index": 0, "text": "echo: " + request.prompt, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }

    def complete_stream(self, request: Any) -> Iterator[dict[str, Any]]:
        yield self.complete(request)

    def close(self) -> None:
        return None


Tamper = Callable[[str, str, int, bytes], tuple[int, bytes]]
"""``(method, path, status, body) -> (status, body)``: what a hostile host hands the core."""


@dataclass
class GatewayHost:
    """The host's side of ``IO_GATEWAY``: plain HTTP to ``url``, every byte kept."""

    url: str
    sent: bytearray = field(default_factory=bytearray)
    received: bytearray = field(default_factory=bytearray)
    tamper: Tamper | None = None
    calls: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        self.calls.append((method, path))
        self.sent += path.encode() + body
        answer = httpx.request(method, self.url + path, content=body, timeout=60)
        status, content = answer.status_code, answer.content
        self.received += content
        if self.tamper is not None:
            status, content = self.tamper(method, path, status, content)
        return status, content


@contextmanager
def dev_gateway(
    network_seed: bytes,
    *,
    collateral_issued_at: int | None = None,
    backend: Any = None,
    key: SecretKey | None = None,
) -> Iterator[str]:
    """Serve a gateway whose quotes come from the development TEE of ``network_seed`` (so they
    verify under that network's dev root); yields its base URL."""
    from veilnet.inference import create_app, serve_in_thread
    from veilnet.tee import DevEnclave

    enclave = DevEnclave(
        network_seed, allow_insecure_dev_tee=True, collateral_issued_at=collateral_issued_at
    )
    app = create_app(
        backend or EchoBackend(), key or SecretKey.derive(b"\x51" * 32, "gateway"), enclave
    )
    with serve_in_thread(app) as url:
        yield url


def core_chat(url: str, network_seed: bytes, *, at: int) -> Callable[[Any], Any]:
    """Agents' ``llm.chat`` as a worker's core carries it out (``runtime.llm``: the gateway's
    quote checked under the dev root of ``network_seed``, the prompt sealed, the receipt
    checked), for sandbox-level tests of agents that chat."""
    import os

    from veilnet.attestation import Policy
    from veilnet.runtime import llm
    from veilnet.runtime.adapters import PolicyVerifier
    from veilnet.tee import DEFAULT_DEV_MEASUREMENTS, DevEnclave

    class _Entropy:
        def random_bytes(self, n: int) -> bytes:
            return os.urandom(n)

    root = DevEnclave(network_seed, allow_insecure_dev_tee=True).trust_root
    judge = llm.Judge(
        verifier=PolicyVerifier(policy=Policy.development(), root=root),
        allowed=frozenset(m.id for m in DEFAULT_DEV_MEASUREMENTS.values()),
        platform=_Entropy(),  # type: ignore[arg-type]
        trust=llm.GatewayTrust(),
    )
    channel = GatewayHost(url)

    def chat(request: Any) -> Any:
        return llm.chat(request, channel=channel, judge=judge, at=at)

    return chat
