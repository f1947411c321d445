"""Receipt and attestation checks on the worker side: good receipts pass; tampered receipts,
wrong nonces, unbound keys, forged quotes and disallowed measurements fail with typed codes."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from veilnet.crypto import SecretKey
from veilnet.errors import VeilnetError
from veilnet.inference import (
    AllowedMeasurements,
    GatewayClient,
    InferenceAttestationInvalid,
    InferenceMeasurementNotAllowed,
    InferenceNonceMismatch,
    InferenceReceiptInvalid,
    Receipt,
    attestation_report,
    create_app,
    receipt_text,
    sign_receipt,
    verify_gateway_attestation,
    verify_receipt,
)
from veilnet.inference._serve import serve_in_thread

from .inference_helpers import (
    OTHER_MEASUREMENTS,
    PINNED_TIME,
    FakeEnclave,
    StubBackend,
    fake_quote_verifier,
    make_verifier,
)

KEY = SecretKey.derive(b"inference-verification-test-key!", "gw")
OTHER = SecretKey.derive(b"inference-verification-test-key!", "other")
NONCE = bytes(range(32))
POLICY = AllowedMeasurements.of([{"mrtd": "aa" * 48, "rtmr0": "bb" * 48}])


def _verify(document: Any, *, nonce: bytes = NONCE, at: int = PINNED_TIME) -> Any:
    return verify_gateway_attestation(
        document, nonce=nonce, quote_verifier=fake_quote_verifier, policy=POLICY, at=at
    )


def _code(exc: pytest.ExceptionInfo[VeilnetError]) -> str:
    return exc.value.code


# -- receipts -------------------------------------------------------------------------------


def test_receipt_text_is_two_sha256_hex_digests() -> None:
    expected = f"{hashlib.sha256(b'req').hexdigest()}:{hashlib.sha256(b'resp').hexdigest()}"
    assert receipt_text(b"req", b"resp") == expected


def test_receipt_signature_recovers_with_eth_account() -> None:
    receipt = sign_receipt(KEY, "chatcmpl-1", b"request", b"response")
    document = receipt.to_json()
    recovered = Account.recover_message(
        encode_defunct(text=document["text"]), signature=document["signature"]
    )
    assert recovered == KEY.address.hex == document["signing_address"]
    assert (
        verify_receipt(
            document, signer=KEY.address, request_body=b"request", response_body=b"response"
        )
        == receipt
    )


@pytest.mark.parametrize(
    ("mutate", "bodies"),
    [
        (lambda r: r, (b"request", b"RESPONSE")),
        (lambda r: r, (b"REQUEST", b"response")),
        (lambda r: replace(r, text=receipt_text(b"request", b"other")), (None, None)),
        (
            lambda r: replace(r, signature=r.signature[:-1] + bytes([r.signature[-1] ^ 1])),
            (None, None),
        ),
        (lambda r: replace(r, signature=bytes(65)), (None, None)),
        (lambda r: replace(r, signing_address=OTHER.address), (None, None)),
        (lambda r: sign_receipt(OTHER, r.id, b"request", b"response"), (None, None)),
    ],
    ids=["response", "request", "text", "signature-bit", "signature-zero", "address", "signer"],
)
def test_tampered_receipts_are_rejected(mutate: Any, bodies: tuple[Any, Any]) -> None:
    receipt = mutate(sign_receipt(KEY, "chatcmpl-1", b"request", b"response"))
    request_body, response_body = bodies
    with pytest.raises(InferenceReceiptInvalid) as caught:
        verify_receipt(
            receipt, signer=KEY.address, request_body=request_body, response_body=response_body
        )
    assert _code(caught) == "inference_receipt_invalid"


@pytest.mark.parametrize(
    "document",
    [
        None,
        [],
        {},
        {"id": "x", "text": "t", "signature": "0xzz", "signing_address": KEY.address.hex},
        {"id": "x", "text": "t", "signature": "0x00", "signing_address": KEY.address.hex},
        {"id": "x", "text": "t", "signature": "00" * 65, "signing_address": "0x1234"},
        {"id": "", "text": "t", "signature": "00" * 65, "signing_address": KEY.address.hex},
        {"id": "x", "text": 1, "signature": "00" * 65, "signing_address": KEY.address.hex},
        {
            "id": "x",
            "text": "t",
            "signature": "00" * 65,
            "signing_address": KEY.address.hex,
            "signing_algo": "ed25519",
        },
    ],
)
def test_malformed_receipts_are_rejected(document: Any) -> None:
    with pytest.raises(InferenceReceiptInvalid) as caught:
        Receipt.from_json(document)
    assert _code(caught) == "inference_receipt_invalid"


# -- attestation ----------------------------------------------------------------------------


def test_good_attestation_binds_the_signing_address() -> None:
    attestation = _verify(attestation_report(FakeEnclave(), KEY.address, NONCE))
    assert attestation.signing_address == KEY.address
    assert attestation.measurements["mrtd"] == "aa" * 48
    assert attestation.verified_at == PINNED_TIME


def test_wrong_nonce_is_rejected() -> None:
    document = attestation_report(FakeEnclave(), KEY.address, bytes(32))
    with pytest.raises(InferenceNonceMismatch) as caught:
        _verify(document)
    assert _code(caught) == "inference_nonce_mismatch"


def test_disallowed_measurement_is_rejected() -> None:
    document = attestation_report(FakeEnclave(OTHER_MEASUREMENTS), KEY.address, NONCE)
    with pytest.raises(InferenceMeasurementNotAllowed) as caught:
        _verify(document)
    assert _code(caught) == "inference_measurement_not_allowed"
    assert caught.value.http_status == 403


def test_quote_for_another_key_is_rejected() -> None:
    document = attestation_report(FakeEnclave(), OTHER.address, NONCE)
    document["signing_address"] = KEY.address.hex
    with pytest.raises(InferenceAttestationInvalid) as caught:
        _verify(document)
    assert _code(caught) == "inference_attestation_invalid"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(quote="00" + d["quote"][2:]),
        lambda d: d.update(quote="zz"),
        lambda d: d.update(signing_address="0x12"),
        lambda d: d.pop("quote"),
        lambda d: d.update(collateral={"issued_at": PINNED_TIME + 10, "valid_for": 1}),
        lambda d: d.update(collateral_encoding="hex", collateral="zz"),
    ],
    ids=["forged", "not-hex", "bad-address", "missing", "expired-collateral", "bad-collateral"],
)
def test_broken_attestations_are_rejected(mutate: Any) -> None:
    document = attestation_report(FakeEnclave(), KEY.address, NONCE)
    mutate(document)
    with pytest.raises(InferenceAttestationInvalid) as caught:
        _verify(document)
    assert _code(caught) == "inference_attestation_invalid"


def test_report_data_of_wrong_length_is_rejected() -> None:
    enclave = FakeEnclave(override_report_data=bytes(48))
    with pytest.raises(InferenceAttestationInvalid):
        _verify(attestation_report(enclave, KEY.address, NONCE))
    with pytest.raises(InferenceAttestationInvalid):
        _verify("not a mapping")


def test_empty_allowlist_rejects_everything() -> None:
    document = attestation_report(FakeEnclave(), KEY.address, NONCE)
    with pytest.raises(InferenceMeasurementNotAllowed):
        verify_gateway_attestation(
            document,
            nonce=NONCE,
            quote_verifier=fake_quote_verifier,
            policy=AllowedMeasurements.of([]),
            at=PINNED_TIME,
        )


# -- the worker's client against live gateways --------------------------------------------------


MESSAGES = [{"role": "user", "content": "hi"}]


def test_client_rejects_a_gateway_with_a_disallowed_measurement() -> None:
    app = create_app(StubBackend(), KEY, FakeEnclave(OTHER_MEASUREMENTS))
    with serve_in_thread(app) as url, GatewayClient(url, make_verifier()) as client:
        with pytest.raises(InferenceMeasurementNotAllowed) as caught:
            client.chat(MESSAGES, model="stub-model")
        assert _code(caught) == "inference_measurement_not_allowed"


def test_client_rejects_a_replayed_attestation() -> None:
    """A host that replays an old report (old nonce) instead of asking the enclave."""
    old = attestation_report(FakeEnclave(), KEY.address, bytes(32))
    app = create_app(StubBackend(), KEY, FakeEnclave())

    def replay(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/attestation/report":
            return httpx.Response(200, json=old)
        return httpx.Response(404)

    with serve_in_thread(app) as url:
        client = GatewayClient(url, make_verifier(), transport=httpx.MockTransport(replay))
        with pytest.raises(InferenceNonceMismatch) as caught:
            client.attestation()
        assert _code(caught) == "inference_nonce_mismatch"


def test_client_rejects_a_tampered_response() -> None:
    """A host that rewrites the model's answer in flight: the receipt no longer matches."""
    app = create_app(StubBackend(), KEY, FakeEnclave())
    with serve_in_thread(app) as url:
        real = httpx.HTTPTransport()

        def tamper(request: httpx.Request) -> httpx.Response:
            response = real.handle_request(request)
            body = response.read()
            if request.url.path == "/v1/chat/completions":
                body = body.replace(b"echo: hi", b"echo: no")
            return httpx.Response(response.status_code, content=body)

        client = GatewayClient(url, make_verifier(), transport=httpx.MockTransport(tamper))
        with pytest.raises(InferenceReceiptInvalid) as caught:
            client.chat(MESSAGES, model="stub-model")
        assert _code(caught) == "inference_receipt_invalid"


def test_client_rejects_a_receipt_from_an_unattested_key() -> None:
    """A host that answers itself and signs with its own key, while the quote names the enclave's."""
    app = create_app(StubBackend(), KEY, FakeEnclave())
    impostor = create_app(StubBackend(), OTHER, FakeEnclave())
    with serve_in_thread(app) as url, serve_in_thread(impostor) as fake_url:
        real = httpx.HTTPTransport()

        def route(request: httpx.Request) -> httpx.Response:
            if request.url.path != "/v1/attestation/report":
                request.url = httpx.URL(fake_url + request.url.raw_path.decode())
            response = real.handle_request(request)
            return httpx.Response(response.status_code, content=response.read())

        client = GatewayClient(url, make_verifier(), transport=httpx.MockTransport(route))
        with pytest.raises(InferenceReceiptInvalid) as caught:
            client.chat(MESSAGES, model="stub-model")
        assert _code(caught) == "inference_receipt_invalid"


def test_client_maps_gateway_errors_to_typed_errors() -> None:
    from veilnet.inference import InferenceNotFound

    app = create_app(StubBackend(), KEY, FakeEnclave())
    with serve_in_thread(app) as url, GatewayClient(url, make_verifier()) as client:
        with pytest.raises(InferenceNotFound) as caught:
            client.chat(MESSAGES, model="no-such-model")
        assert caught.value.details["gateway_status"] == 404
        with pytest.raises(InferenceNotFound):
            client.receipt("chatcmpl-missing")
