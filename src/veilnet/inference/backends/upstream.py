"""The upstream backend: forwards requests to any OpenAI-compatible server (vLLM, Ollama, hosted).
Its API key stays sealed in memory and is opened only to build each request's header."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from typing import Any, NoReturn, final

import httpx

from veilnet.crypto import EnvelopeInvalid, SymmetricKey, UnsupportedVersion
from veilnet.inference._requests import ChatRequest, CompletionRequest
from veilnet.inference.constants import MAX_RESPONSE_BYTES, UPSTREAM_TIMEOUT_S
from veilnet.inference.errors import (
    InferenceBackendUnavailable,
    InferenceRequestInvalid,
    InferenceResponseInvalid,
)

__all__ = ["UpstreamBackend", "UpstreamKey"]

_KEY_AAD = b"veil/v1 inference upstream-api-key"


@final
class UpstreamKey:
    """An upstream API key sealed under the gateway's sealing key; redacted, unpicklable."""

    __slots__ = ("_sealed", "_sealer")

    def __init__(self, sealed: bytes, sealer: SymmetricKey) -> None:
        self._sealed = sealed
        self._sealer = sealer

    @classmethod
    def seal(cls, api_key: str, sealer: SymmetricKey) -> UpstreamKey:
        """Seal a plaintext key at once; keep only the returned object."""
        return cls(sealer.seal(api_key.encode(), aad=_KEY_AAD), sealer)

    @classmethod
    def from_env(cls, name: str, sealer: SymmetricKey) -> UpstreamKey | None:
        """Read, seal and remove ``name`` from the environment (children do not inherit it)."""
        value = os.environ.pop(name, None)
        return None if not value else cls.seal(value, sealer)

    @property
    def sealed(self) -> bytes:
        """The sealed bytes (safe to store at rest)."""
        return self._sealed

    def _open(self) -> str:
        try:
            return self._sealer.open(self._sealed, aad=_KEY_AAD).decode()
        except (EnvelopeInvalid, UnsupportedVersion, UnicodeDecodeError) as exc:
            raise InferenceBackendUnavailable("the sealed upstream key does not open") from exc

    def __repr__(self) -> str:
        return "UpstreamKey(<sealed>)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("UpstreamKey cannot be pickled")


class UpstreamBackend:
    """Forwards to ``base_url`` (which includes ``/v1``, like the openai client's base_url).

    Request bodies are forwarded as the client sent them; the gateway signs what it returns.
    """

    def __init__(
        self,
        base_url: str,
        api_key: UpstreamKey | None = None,
        *,
        timeout_s: float = UPSTREAM_TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("upstream URL must be http:// or https://")
        self.base_url = base_url.rstrip("/")
        self._key = api_key
        self._client = httpx.Client(timeout=timeout_s, transport=transport)

    # -- Backend ------------------------------------------------------------------------------

    def models(self) -> list[dict[str, Any]]:
        document = self._json(self._send("GET", "/models", None))
        data = document.get("data")
        if not isinstance(data, list) or not all(isinstance(m, dict) for m in data):
            raise InferenceResponseInvalid("upstream model list is malformed")
        return data

    def chat(self, request: ChatRequest) -> dict[str, Any]:
        return self._json(self._send("POST", "/chat/completions", {**request.raw, "stream": False}))

    def chat_stream(self, request: ChatRequest) -> Iterator[dict[str, Any]]:
        return self._stream("/chat/completions", request.raw)

    def complete(self, request: CompletionRequest) -> dict[str, Any]:
        return self._json(self._send("POST", "/completions", {**request.raw, "stream": False}))

    def complete_stream(self, request: CompletionRequest) -> Iterator[dict[str, Any]]:
        return self._stream("/completions", request.raw)

    def close(self) -> None:
        self._client.close()

    # -- helpers ------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"accept": "application/json"}
        if self._key is not None:
            headers["authorization"] = "Bearer " + self._key._open()
        return headers

    def _request(self, method: str, path: str, body: Mapping[str, Any] | None) -> httpx.Request:
        content = None if body is None else json.dumps(body).encode()
        headers = self._headers()
        if content is not None:
            headers["content-type"] = "application/json"
        return self._client.build_request(
            method, self.base_url + path, content=content, headers=headers
        )

    def _send(self, method: str, path: str, body: Mapping[str, Any] | None) -> bytes:
        try:
            response = self._open_stream(method, path, body)
            try:
                self._check_status(response)
                return _read_bounded(response)
            finally:
                response.close()
        except httpx.HTTPError as exc:
            raise InferenceBackendUnavailable("upstream is unreachable") from exc

    def _open_stream(
        self, method: str, path: str, body: Mapping[str, Any] | None
    ) -> httpx.Response:
        return self._client.send(self._request(method, path, body), stream=True)

    @staticmethod
    def _check_status(response: httpx.Response) -> None:
        if response.status_code < 400:
            return
        status = response.status_code
        response.close()
        if 400 <= status < 500 and status not in (401, 403, 408, 429):
            raise InferenceRequestInvalid("upstream rejected the request", upstream_status=status)
        raise InferenceBackendUnavailable("upstream failed", upstream_status=status)

    @staticmethod
    def _json(raw: bytes) -> dict[str, Any]:
        try:
            document = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InferenceResponseInvalid(
                "upstream answered with something that is not JSON"
            ) from exc
        if not isinstance(document, dict):
            raise InferenceResponseInvalid("upstream answered with a non-object")
        return document

    def _stream(self, path: str, raw: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        def generate() -> Iterator[dict[str, Any]]:
            try:
                response = self._open_stream("POST", path, {**raw, "stream": True})
                try:
                    self._check_status(response)
                    size = 0
                    for line in response.iter_lines():
                        size += len(line)
                        if size > MAX_RESPONSE_BYTES:
                            raise InferenceResponseInvalid("upstream stream is too large")
                        if not line.startswith("data:"):
                            continue
                        payload = line[5:].strip()
                        if payload == "[DONE]":
                            return
                        yield self._json(payload.encode())
                finally:
                    response.close()
            except httpx.HTTPError as exc:
                raise InferenceBackendUnavailable("upstream is unreachable") from exc

        return generate()


def _read_bounded(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise InferenceResponseInvalid("upstream response is too large")
        chunks.append(chunk)
    return b"".join(chunks)
