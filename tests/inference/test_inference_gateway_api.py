"""The gateway's HTTP API with the stock openai client (stub backend, fake enclave):
models, chat, streaming, completions, receipts recovered with eth-account, stable errors."""

from __future__ import annotations

import hashlib
import json

import httpx
import openai
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from veilnet.crypto import SecretKey
from veilnet.inference import RECEIPT_HEADER, Gateway, GatewayClient, create_app
from veilnet.inference.constants import MAX_REQUEST_BYTES

from .inference_helpers import PINNED_TIME, FakeEnclave, StubBackend, make_verifier

MESSAGES = [{"role": "user", "content": "hello gateway"}]


def _client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)


def _recover(url: str, receipt_id: str) -> tuple[dict[str, str], str]:
    receipt = httpx.get(f"{url}/v1/signature/{receipt_id}").json()
    recovered = Account.recover_message(
        encode_defunct(text=receipt["text"]), signature=receipt["signature"]
    )
    return receipt, recovered


def _attested_address(url: str) -> str:
    nonce = "ab" * 32
    report = httpx.get(f"{url}/v1/attestation/report", params={"nonce": nonce}).json()
    report_data = bytes.fromhex(report["report_data"])
    assert report_data[32:] == bytes.fromhex(nonce)
    assert report_data[20:32] == bytes(12)
    return "0x" + report_data[:20].hex()


def test_models_lists_the_backend_model(stub_gateway: str) -> None:
    models = _client(stub_gateway).models.list()
    assert [m.id for m in models.data] == ["stub-model"]


def test_chat_completion_is_signed_by_the_attested_key(
    stub_gateway: str, gateway_key: SecretKey
) -> None:
    raw = _client(stub_gateway).chat.completions.with_raw_response.create(
        model="stub-model", messages=MESSAGES, temperature=0, seed=7
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "echo: hello gateway"
    assert completion.id.startswith("chatcmpl-")
    assert raw.headers[RECEIPT_HEADER] == completion.id
    receipt, recovered = _recover(stub_gateway, completion.id)
    assert recovered.lower() == _attested_address(stub_gateway).lower()
    assert recovered == gateway_key.address.hex == receipt["signing_address"]
    request_hash, response_hash = receipt["text"].split(":")
    assert response_hash == hashlib.sha256(raw.http_response.content).hexdigest()
    assert request_hash == hashlib.sha256(raw.http_request.content).hexdigest()


def test_streaming_chat_is_signed_over_the_whole_body(stub_gateway: str) -> None:
    body = {"model": "stub-model", "messages": MESSAGES, "stream": True}
    request_body = json.dumps(body).encode()
    response = httpx.post(
        f"{stub_gateway}/v1/chat/completions",
        content=request_body,
        headers={"content-type": "application/json"},
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.text.endswith("data: [DONE]\n\n")
    receipt_id = response.headers[RECEIPT_HEADER]
    receipt, recovered = _recover(stub_gateway, receipt_id)
    expected = (
        f"{hashlib.sha256(request_body).hexdigest()}:{hashlib.sha256(response.content).hexdigest()}"
    )
    assert receipt["text"] == expected
    assert recovered.lower() == _attested_address(stub_gateway).lower()


def test_openai_client_streams_chat(stub_gateway: str) -> None:
    stream = _client(stub_gateway).chat.completions.create(
        model="stub-model",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    ids = {c.id for c in chunks}
    assert len(ids) == 1
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: hello gateway"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 3
    _, recovered = _recover(stub_gateway, ids.pop())
    assert recovered.lower() == _attested_address(stub_gateway).lower()


def test_openai_client_completions_plain_and_streaming(stub_gateway: str) -> None:
    client = _client(stub_gateway)
    completion = client.completions.create(model="stub-model", prompt="once upon", max_tokens=5)
    assert completion.choices[0].text == "echo: once upon"
    assert completion.id.startswith("cmpl-")
    _recover(stub_gateway, completion.id)
    chunks = list(client.completions.create(model="stub-model", prompt="a b c", stream=True))
    assert "".join(c.choices[0].text for c in chunks) == "echo: a b c"
    _, recovered = _recover(stub_gateway, chunks[0].id)
    assert recovered.lower() == _attested_address(stub_gateway).lower()


def test_errors_are_stable_json(stub_gateway: str) -> None:
    client = _client(stub_gateway)
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert caught.value.body["code"] == "inference_not_found"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="stub-model", messages=[])
    assert bad.value.body["code"] == "inference_request_invalid"  # type: ignore[index]
    cases = [
        ("POST", "/v1/chat/completions", b"not json", 400, "inference_request_invalid"),
        ("POST", "/v1/chat/completions", b"[1]", 400, "inference_request_invalid"),
        ("GET", "/v1/signature/chatcmpl-nope", None, 404, "inference_not_found"),
        ("GET", "/v1/attestation/report?nonce=zz", None, 400, "inference_request_invalid"),
        ("GET", "/v1/attestation/report?nonce=abcd", None, 400, "inference_request_invalid"),
        ("GET", "/v1/nothing", None, 404, "inference_not_found"),
        ("GET", "/v1/chat/completions", None, 405, "inference_method_not_allowed"),
    ]
    for method, path, content, status, code in cases:
        response = httpx.request(method, stub_gateway + path, content=content)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), path
        assert isinstance(response.json()["error"]["message"], str)


def test_oversized_request_is_refused(stub_gateway: str) -> None:
    big = b'{"model":"stub-model","messages":[{"role":"user","content":"' + b"a" * MAX_REQUEST_BYTES
    response = httpx.post(f"{stub_gateway}/v1/chat/completions", content=big + b'"}]}')
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "inference_request_too_large"


def test_attestation_without_nonce_uses_a_fresh_one(stub_gateway: str) -> None:
    first = httpx.get(f"{stub_gateway}/v1/attestation/report").json()
    second = httpx.get(f"{stub_gateway}/v1/attestation/report").json()
    assert first["nonce"] != second["nonce"]
    assert first["tee"] == "fake-tdx"
    assert first["quote"] == first["intel_quote"]


def test_gateway_client_verifies_and_caches_attestation(
    stub_gateway: str, gateway_key: SecretKey
) -> None:
    nonces: list[bytes] = []

    def entropy(n: int) -> bytes:
        nonces.append(bytes([len(nonces) + 1]) * n)
        return nonces[-1]

    with GatewayClient(stub_gateway, make_verifier(entropy=entropy)) as client:
        first = client.chat(MESSAGES, model="stub-model", temperature=0)
        second = client.chat(MESSAGES, model="stub-model", temperature=0)
        assert first.text == second.text == "echo: hello gateway"
        assert first.signing_address == gateway_key.address
        assert first.receipt_id != second.receipt_id
        assert len(nonces) == 1  # verified once, then cached
        assert first.to_json()["receipt_id"] == first.receipt_id
        done = client.complete("x y", model="stub-model")
        assert done.text == "echo: x y"
        receipt, attestation = client.verify(
            done.receipt_id, request_body=done.request_body, response_body=done.response_body
        )
        assert receipt.signing_address == attestation.signing_address
        assert attestation.verified_at == PINNED_TIME


def test_gateway_state_keeps_receipts_bounded(gateway_key: SecretKey) -> None:
    from veilnet.inference import ReceiptStore

    gateway = Gateway(StubBackend(), gateway_key, FakeEnclave(), receipts=ReceiptStore(2))
    for i in range(3):
        gateway.sign(f"id-{i}", b"req", b"resp")
    assert gateway.receipts.get("id-0") is None
    assert gateway.receipts.get("id-2") is not None
    assert len(gateway.receipts) == 2


def test_create_app_exposes_the_gateway(gateway_key: SecretKey) -> None:
    app = create_app(StubBackend(), gateway_key, FakeEnclave())
    assert app.state.gateway.signing_address == gateway_key.address
