"""The attested, OpenAI-compatible inference gateway and the client that verifies its receipts.
Every completion is signed by the gateway's attested key; see ``client`` for the checks."""

from veilnet.inference._attestation import (
    AllowedMeasurements,
    GatewayAttestation,
    attestation_report,
    report_data_for,
    verify_gateway_attestation,
)
from veilnet.inference._dcap import DCAPQuoteVerifier, VerifiedQuote
from veilnet.inference._models_path import default_model_path, resolve_model
from veilnet.inference._receipts import Receipt, ReceiptStore, receipt_text, sign_receipt
from veilnet.inference._requests import (
    ChatMessage,
    ChatRequest,
    CompletionRequest,
    SamplingParams,
    parse_chat_request,
    parse_completion_request,
)
from veilnet.inference._serve import serve_in_thread
from veilnet.inference._server import RECEIPT_HEADER, Gateway, create_app
from veilnet.inference.backends import LlamaCppBackend, UpstreamBackend, UpstreamKey
from veilnet.inference.client import (
    GatewayClient,
    GatewayVerifier,
    VerifiedCompletion,
    verify_receipt,
)
from veilnet.inference.errors import (
    InferenceAttestationInvalid,
    InferenceBackendUnavailable,
    InferenceMeasurementNotAllowed,
    InferenceModelMissing,
    InferenceNonceMismatch,
    InferenceNotFound,
    InferenceReceiptInvalid,
    InferenceRequestInvalid,
    InferenceRequestTooLarge,
    InferenceResponseInvalid,
)
from veilnet.inference.interfaces import (
    Backend,
    Enclave,
    MeasurementPolicy,
    QuoteReport,
    QuoteVerifier,
)

__all__ = [
    "RECEIPT_HEADER",
    "AllowedMeasurements",
    "Backend",
    "ChatMessage",
    "ChatRequest",
    "CompletionRequest",
    "DCAPQuoteVerifier",
    "Enclave",
    "Gateway",
    "GatewayAttestation",
    "GatewayClient",
    "GatewayVerifier",
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
    "LlamaCppBackend",
    "MeasurementPolicy",
    "QuoteReport",
    "QuoteVerifier",
    "Receipt",
    "ReceiptStore",
    "SamplingParams",
    "UpstreamBackend",
    "UpstreamKey",
    "VerifiedCompletion",
    "VerifiedQuote",
    "attestation_report",
    "create_app",
    "default_model_path",
    "parse_chat_request",
    "parse_completion_request",
    "receipt_text",
    "report_data_for",
    "resolve_model",
    "serve_in_thread",
    "sign_receipt",
    "verify_gateway_attestation",
    "verify_receipt",
]
