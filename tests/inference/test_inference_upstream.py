"""The upstream backend: the gateway in front of another OpenAI-compatible server, with the
API key sealed in memory; answers are re-signed by the gateway; upstream failures are typed."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import openai
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from veilnet.crypto import SecretKey, SymmetricKey
from veilnet.inference import (
    InferenceBackendUnavailable,
    UpstreamBackend,
    UpstreamKey,
    create_app,
    parse_chat_request,
)
from veilnet.inference._serve import serve_in_thread

from .inference_helpers import FakeEnclave, StubBackend

SEALER = SymmetricKey.generate(b"inference-upstream-test-sealer!!")
MESSAGES = [{"role": "user", "content": "via upstream"}]


class RecordAuth:
    """ASGI wrapper recording the Authorization header the upstream receives."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.seen: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            self.seen.append(headers.get(b"authorization", b"").decode())
        await self.app(scope, receive, send)


@pytest.fixture
def upstream(gateway_key: SecretKey) -> Iterator[tuple[str, RecordAuth]]:
    other_key = SecretKey.derive(b"inference-upstream-test-key-seed", "upstream")
    recorder = RecordAuth(create_app(StubBackend(), other_key, FakeEnclave()))
    with serve_in_thread(recorder) as url:
        yield url, recorder


@pytest.fixture
def fronted(upstream: tuple[str, RecordAuth], gateway_key: SecretKey) -> Iterator[str]:
    url, _ = upstream
    backend = UpstreamBackend(url + "/v1", UpstreamKey.seal("sk-upstream-secret", SEALER))
    with serve_in_thread(create_app(backend, gateway_key, FakeEnclave())) as gateway_url:
        yield gateway_url
    backend.close()


def test_openai_client_through_an_upstream(fronted: str, upstream: tuple[str, RecordAuth]) -> None:
    client = openai.OpenAI(base_url=fronted + "/v1", api_key="client-key", max_retries=0)
    assert [m.id for m in client.models.list().data] == ["stub-model"]
    chat = client.chat.completions.create(model="stub-model", messages=MESSAGES)
    assert chat.choices[0].message.content == "echo: via upstream"
    assert chat.id.startswith("chatcmpl-")
    streamed = client.chat.completions.create(model="stub-model", messages=MESSAGES, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed) == "echo: via upstream"
    completion = client.completions.create(model="stub-model", prompt="p q")
    assert completion.choices[0].text == "echo: p q"
    _, recorder = upstream
    assert recorder.seen and set(recorder.seen) == {"Bearer sk-upstream-secret"}


def test_upstream_errors_are_typed(fronted: str) -> None:
    client = openai.OpenAI(base_url=fronted + "/v1", api_key="k", max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="unknown", messages=MESSAGES)
    assert caught.value.body["code"] == "inference_request_invalid"  # type: ignore[index]


def test_unreachable_upstream_is_unavailable() -> None:
    with serve_in_thread(create_app(StubBackend(), SecretKey.generate(), FakeEnclave())) as url:
        dead = url  # the port is free again once the block exits
    backend = UpstreamBackend(dead + "/v1", timeout_s=5)
    request = parse_chat_request({"model": "m", "messages": MESSAGES})
    with pytest.raises(InferenceBackendUnavailable) as caught:
        backend.chat(request)
    assert caught.value.code == "inference_backend_unavailable"
    with pytest.raises(InferenceBackendUnavailable):
        list(backend.chat_stream(request))
    backend.close()


def test_upstream_key_stays_sealed(monkeypatch: pytest.MonkeyPatch) -> None:
    key = UpstreamKey.seal("sk-very-secret", SEALER)
    assert "sk-very-secret" not in repr(key)
    assert b"sk-very-secret" not in key.sealed
    with pytest.raises(TypeError):
        copy.copy(key)
    monkeypatch.setenv("VEIL_TEST_UPSTREAM_KEY", "sk-from-env")
    from_env = UpstreamKey.from_env("VEIL_TEST_UPSTREAM_KEY", SEALER)
    assert from_env is not None
    import os

    assert "VEIL_TEST_UPSTREAM_KEY" not in os.environ
    assert UpstreamKey.from_env("VEIL_TEST_UPSTREAM_KEY", SEALER) is None
    wrong = UpstreamKey(key.sealed, SymmetricKey.generate(b"another-sealer-for-the-test-only"))
    with pytest.raises(InferenceBackendUnavailable):
        wrong._open()
    with pytest.raises(ValueError, match="http"):
        UpstreamBackend("ftp://example")
