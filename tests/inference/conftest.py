"""Fixtures for the inference gateway tests: live gateways on 127.0.0.1 ephemeral ports and
(once per session) the real SmolLM2 model. Fakes and the stub backend: inference_helpers.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from veilnet.crypto import SecretKey
from veilnet.inference import create_app
from veilnet.inference._serve import serve_in_thread

from .inference_helpers import FakeEnclave, StubBackend


@pytest.fixture(scope="session")
def gateway_key() -> SecretKey:
    return SecretKey.derive(b"inference-tests-gateway-key-seed", "gateway")


@pytest.fixture
def enclave() -> FakeEnclave:
    return FakeEnclave()


@pytest.fixture
def stub_gateway(gateway_key: SecretKey, enclave: FakeEnclave) -> Iterator[str]:
    """Base URL of a live gateway (stub backend, fake enclave) on an ephemeral port."""
    app = create_app(StubBackend(), gateway_key, enclave)
    with serve_in_thread(app) as url:
        yield url


@pytest.fixture(scope="session")
def llama_backend() -> Iterator[Any]:
    """The embedded default model, loaded once per test session."""
    from veilnet.inference import LlamaCppBackend, default_model_path

    backend = LlamaCppBackend(default_model_path(), seed=1234)
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def llama_gateway(llama_backend: Any, gateway_key: SecretKey) -> Iterator[str]:
    app = create_app(llama_backend, gateway_key, FakeEnclave())
    with serve_in_thread(app) as url:
        yield url
