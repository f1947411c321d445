"""The gateway attested by the real development TEE (``veilnet.tee.DevEnclave``) and checked by
``veilnet.attestation`` through ``DCAPQuoteVerifier``: the same path production takes."""

from __future__ import annotations

import pytest

import veilnet.attestation as attestation
import veilnet.tee.dev as tee
from veilnet.crypto import SecretKey
from veilnet.inference import (
    AllowedMeasurements,
    DCAPQuoteVerifier,
    GatewayClient,
    GatewayVerifier,
    InferenceAttestationInvalid,
    InferenceMeasurementNotAllowed,
    create_app,
)
from veilnet.inference._serve import serve_in_thread

from .inference_helpers import StubBackend

SEED = b"inference-dev-tee-network-seed!!"
ISSUED_AT = 1_750_000_000 // 3600 * 3600
AT = ISSUED_AT + 60
MESSAGES = [{"role": "user", "content": "attested?"}]


def _enclave() -> tee.DevEnclave:
    return tee.DevEnclave(SEED, allow_insecure_dev_tee=True, collateral_issued_at=ISSUED_AT)


def _verifier(allowed: list[bytes], *, root_seed: bytes = SEED) -> GatewayVerifier:
    root = tee.DevEnclave(root_seed, allow_insecure_dev_tee=True).trust_root
    return GatewayVerifier(
        quote_verifier=DCAPQuoteVerifier(root=root, policy=attestation.Policy.development()),
        policy=AllowedMeasurements.of_ids(allowed),
        clock=lambda: AT,
    )


def test_dev_tee_gateway_verifies_end_to_end() -> None:
    enclave = _enclave()
    key = SecretKey.derive(SEED, "gateway")
    app = create_app(StubBackend(), key, enclave)
    with serve_in_thread(app) as url:
        with GatewayClient(url, _verifier([enclave.measurement.id])) as client:
            answer = client.chat(MESSAGES, model="stub-model")
            assert answer.signing_address == key.address
            assert answer.attestation.tee == "tdx"
            expected = enclave.measurement.id.hex()
            assert answer.attestation.measurements["measurement_id"] == expected
        with GatewayClient(url, _verifier([bytes(32)])) as client:
            with pytest.raises(InferenceMeasurementNotAllowed) as caught:
                client.chat(MESSAGES, model="stub-model")
            assert caught.value.code == "inference_measurement_not_allowed"
        other_network = b"another-network-seed-for-tests!!"
        with GatewayClient(url, _verifier([], root_seed=other_network)) as client:
            with pytest.raises(InferenceAttestationInvalid) as invalid:
                client.attestation()
            assert invalid.value.code == "inference_attestation_invalid"


def test_policy_measurement_refusal_is_typed() -> None:
    enclave = _enclave()
    root = enclave.trust_root
    strict = attestation.Policy.development(allowed_measurements=frozenset({bytes(32)}))
    verifier = DCAPQuoteVerifier(root=root, policy=strict)
    quote = enclave.quote(bytes(64))
    with pytest.raises(InferenceMeasurementNotAllowed):
        verifier(quote, enclave.collateral(), at=AT)
    lenient = DCAPQuoteVerifier(root=root, policy=attestation.Policy.development())
    report = lenient(quote, enclave.collateral().to_dict(), at=AT)
    assert report.report_data == bytes(64)
    with pytest.raises(InferenceAttestationInvalid):
        lenient(quote, enclave.collateral(), at=ISSUED_AT - 1)
    with pytest.raises(InferenceAttestationInvalid):
        lenient(quote, 42, at=AT)
