"""The gateway in front of the real embedded model (SmolLM2-135M through llama.cpp) with the
stock openai client: chat, streaming, completions, models, deterministic text at temperature 0."""

from __future__ import annotations

import hashlib
import importlib.metadata

import httpx
import openai
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from veilnet.crypto import SecretKey
from veilnet.inference import GatewayClient
from veilnet.inference.constants import DEFAULT_MODEL_NAME

from .inference_helpers import make_verifier, needs_llama

pytestmark = [pytest.mark.slow, needs_llama]

QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]
PINNED_BUILD = "0.3.36"
"""Greedy text is identical only within one llama.cpp build; exact strings are checked on it."""
EXPECTED_ANSWER = "The capital of France is Paris."


def _client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)


def _pinned_build() -> bool:
    return importlib.metadata.version("llama-cpp-python") == PINNED_BUILD


def _recovered(url: str, receipt_id: str) -> tuple[str, str]:
    receipt = httpx.get(f"{url}/v1/signature/{receipt_id}").json()
    signer = Account.recover_message(
        encode_defunct(text=receipt["text"]), signature=receipt["signature"]
    )
    return receipt["text"], signer


def test_models(llama_gateway: str) -> None:
    assert [m.id for m in _client(llama_gateway).models.list().data] == [DEFAULT_MODEL_NAME]


def test_chat_is_deterministic_and_signed(llama_gateway: str, gateway_key: SecretKey) -> None:
    client = _client(llama_gateway)
    answers = []
    for _ in range(2):
        raw = client.chat.completions.with_raw_response.create(
            model=DEFAULT_MODEL_NAME, messages=QUESTION, temperature=0, seed=7, max_tokens=32
        )
        completion = raw.parse()
        answers.append(completion.choices[0].message.content)
        text, signer = _recovered(llama_gateway, completion.id)
        assert signer == gateway_key.address.hex
        assert text.endswith(hashlib.sha256(raw.http_response.content).hexdigest())
        assert completion.usage is not None and completion.usage.completion_tokens > 0
    assert answers[0] == answers[1]
    if _pinned_build():
        assert answers[0] == EXPECTED_ANSWER


def test_streaming_matches_the_plain_answer(llama_gateway: str, gateway_key: SecretKey) -> None:
    client = _client(llama_gateway)
    plain = client.chat.completions.create(
        model=DEFAULT_MODEL_NAME, messages=QUESTION, temperature=0, seed=7, max_tokens=32
    )
    chunks = list(
        client.chat.completions.create(
            model=DEFAULT_MODEL_NAME,
            messages=QUESTION,
            temperature=0,
            seed=7,
            max_tokens=32,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == plain.choices[0].message.content
    assert chunks[-1].usage is not None
    assert plain.usage is not None
    assert chunks[-1].usage.completion_tokens == plain.usage.completion_tokens
    _, signer = _recovered(llama_gateway, chunks[0].id)
    assert signer == gateway_key.address.hex


def test_completions_plain_and_streaming(llama_gateway: str) -> None:
    client = _client(llama_gateway)
    prompt = "The three primary colours are"
    plain = client.completions.create(
        model=DEFAULT_MODEL_NAME, prompt=prompt, temperature=0, seed=3, max_tokens=12
    )
    chunks = list(
        client.completions.create(
            model=DEFAULT_MODEL_NAME,
            prompt=prompt,
            temperature=0,
            seed=3,
            max_tokens=12,
            stream=True,
        )
    )
    assert "".join(c.choices[0].text for c in chunks) == plain.choices[0].text
    assert plain.choices[0].text.strip()
    _recovered(llama_gateway, plain.id)


def test_seeded_sampling_repeats(llama_gateway: str) -> None:
    client = _client(llama_gateway)
    texts = {
        client.chat.completions.create(
            model=DEFAULT_MODEL_NAME, messages=QUESTION, temperature=0.8, seed=99, max_tokens=16
        )
        .choices[0]
        .message.content
        for _ in range(2)
    }
    assert len(texts) == 1


def test_gateway_client_gets_a_verified_answer(llama_gateway: str, gateway_key: SecretKey) -> None:
    with GatewayClient(llama_gateway, make_verifier()) as client:
        answer = client.chat(QUESTION, temperature=0, seed=7, max_tokens=32)
    assert answer.signing_address == gateway_key.address
    assert answer.model == DEFAULT_MODEL_NAME
    if _pinned_build():
        assert answer.text == EXPECTED_ANSWER


def test_prompt_longer_than_the_context_is_a_typed_error(llama_gateway: str) -> None:
    long = [{"role": "user", "content": "word " * 3000}]
    with pytest.raises(openai.BadRequestError) as caught:
        _client(llama_gateway).chat.completions.create(
            model=DEFAULT_MODEL_NAME, messages=long, max_tokens=8
        )
    assert caught.value.body["code"] == "inference_request_invalid"  # type: ignore[index]


def test_default_names_the_model_and_a_404_lists_what_is_served(llama_gateway: str) -> None:
    """``model="default"`` (what the examples and agents use) reaches the local model; an
    unknown name is a 404 whose message lists the served names."""
    body = {"model": "default", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
    ok = httpx.post(f"{llama_gateway}/v1/chat/completions", json=body, timeout=120)
    assert ok.status_code == 200 and ok.headers["x-veil-receipt"] == ok.json()["id"]
    body["model"] = "gpt-9"
    missing = httpx.post(f"{llama_gateway}/v1/chat/completions", json=body, timeout=120)
    assert missing.status_code == 404
    error = missing.json()["error"]
    assert error["code"] == "inference_not_found"
    assert "smollm2-135m-instruct" in error["message"] and "default" in error["message"]
