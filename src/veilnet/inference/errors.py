"""Errors of ``veilnet.inference``: bad requests, receipts and attestations, and failed backends.

InvalidInput
├── InferenceRequestInvalid          a request body that is not a valid OpenAI request (400)
├── InferenceRequestTooLarge         a request body over MAX_REQUEST_BYTES (413)
├── InferenceNotFound                unknown path, model or receipt id (404)
├── InferenceReceiptInvalid          a receipt whose hashes, signer or signature do not check (401)
├── InferenceAttestationInvalid      a gateway quote that fails verification or binding (401)
├── InferenceNonceMismatch           a quote that does not carry our fresh nonce (401)
└── InferenceResponseInvalid         a gateway or upstream answer that breaks the API (502)
PolicyRejected
└── InferenceMeasurementNotAllowed   a verified gateway running code not on the allowlist (403)
Unavailable
├── InferenceBackendUnavailable      the model or upstream cannot serve now (503)
└── InferenceModelMissing            the model file or llama_cpp is not installed (503)
"""

from __future__ import annotations

from veilnet.errors import InvalidInput, PolicyRejected, Unavailable

__all__ = [
    "InferenceAttestationInvalid",
    "InferenceBackendUnavailable",
    "InferenceMeasurementNotAllowed",
    "InferenceModelMissing",
    "InferenceNonceMismatch",
    "InferenceNotFound",
    "InferenceReceiptInvalid",
    "InferenceRequestInvalid",
    "InferenceRequestTooLarge",
    "InferenceResponseInvalid",
]


class InferenceRequestInvalid(InvalidInput):
    """The request is not a valid OpenAI-compatible request."""

    code = "inference_request_invalid"
    http_status = 400


class InferenceRequestTooLarge(InvalidInput):
    """The request body is larger than the gateway accepts."""

    code = "inference_request_too_large"
    http_status = 413


class InferenceNotFound(InvalidInput):
    """No such path, model or receipt."""

    code = "inference_not_found"
    http_status = 404


class InferenceReceiptInvalid(InvalidInput):
    """The receipt does not match the exchange, or was not signed by the attested gateway key."""

    code = "inference_receipt_invalid"
    http_status = 401


class InferenceAttestationInvalid(InvalidInput):
    """The gateway's attestation report does not verify or does not bind its signing key."""

    code = "inference_attestation_invalid"
    http_status = 401


class InferenceNonceMismatch(InvalidInput):
    """The gateway's quote does not carry the nonce we sent (stale or replayed)."""

    code = "inference_nonce_mismatch"
    http_status = 401


class InferenceResponseInvalid(InvalidInput):
    """A gateway or upstream answered with something that is not a valid API response."""

    code = "inference_response_invalid"
    http_status = 502


class InferenceMeasurementNotAllowed(PolicyRejected):
    """The gateway's quote verifies, but its measurements are not on the allowlist."""

    code = "inference_measurement_not_allowed"
    http_status = 403


class InferenceBackendUnavailable(Unavailable):
    """The model backend or upstream could not answer; retrying may help."""

    code = "inference_backend_unavailable"
    http_status = 503


class InferenceModelMissing(Unavailable):
    """The model file or the llama_cpp library is not installed."""

    code = "inference_model_missing"
    http_status = 503
