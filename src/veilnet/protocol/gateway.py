"""What an enclave core and an inference gateway exchange for an agent's ``llm.chat``: the attested
report's layout, the sealed request and reply, and the receipt text. The host carries only these.

Theory of operation
-------------------
The gateway's attested quote binds its signing address (``report_data_for``); the same key signs
``encryption_key_text`` of its X25519 public key, so a core that verified the quote knows which
key only that gateway opens. The core seals ``{"request": <the exact OpenAI request body>,
"reply_to": <an ephemeral X25519 key>}`` to it (``seal_chat``); the gateway answers with
``{"response": <the exact response body>, "receipt": <its receipt>}`` sealed to ``reply_to``
(``seal_reply``). The receipt signs ``receipt_text(request, response)``, both bodies byte for
byte, so the core checks that the answer is the gateway's answer to that very prompt.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Final

from veilnet.crypto import Address, Binding, SecretKey, open_envelope, seal_for

__all__ = [
    "ADDRESS_FIELD_LENGTH",
    "ATTESTATION_PATH",
    "CHAT_PURPOSE",
    "DEFAULT_MODEL_NAME",
    "NONCE_LENGTH",
    "REPLY_PURPOSE",
    "REPORT_DATA_LENGTH",
    "SEALED_CHAT_PATH",
    "encryption_key_text",
    "open_chat",
    "open_reply",
    "receipt_text",
    "report_data_for",
    "seal_chat",
    "seal_reply",
]

ATTESTATION_PATH: Final = "/v1/attestation/report"
"""``GET ?nonce=<64 hex>``: the gateway's quote over ``report_data_for(address, nonce)``."""
SEALED_CHAT_PATH: Final = "/v1/sealed/chat/completions"
"""``POST`` a ``seal_chat`` envelope; ``200`` with a ``seal_reply`` envelope."""
CHAT_PURPOSE: Final = "veil/gateway/chat"
REPLY_PURPOSE: Final = "veil/gateway/chat-reply"
NONCE_LENGTH: Final = 32
ADDRESS_FIELD_LENGTH: Final = 32
REPORT_DATA_LENGTH: Final = ADDRESS_FIELD_LENGTH + NONCE_LENGTH
DEFAULT_MODEL_NAME: Final = "smollm2-135m-instruct"
"""What ``model: "default"`` (or no model) names: the model every devnet gateway serves."""
X25519_KEY_LENGTH: Final = 32
MAX_SEALED_BYTES: Final = 4 * 1024 * 1024
"""Largest sealed request or reply either side opens."""


def report_data_for(address: Address, nonce: bytes) -> bytes:
    """The 64 bytes a gateway's quote commits to: its signing address right-padded to 32 bytes,
    then the verifier's nonce (Phala's layout)."""
    if len(nonce) != NONCE_LENGTH:
        raise ValueError(f"nonce must be {NONCE_LENGTH} bytes")
    return address.raw.ljust(ADDRESS_FIELD_LENGTH, b"\x00") + nonce


def receipt_text(request_body: bytes, response_body: bytes) -> str:
    """``hex(sha256(request)) ":" hex(sha256(response))``: the text a receipt signs."""
    return f"{hashlib.sha256(request_body).hexdigest()}:{hashlib.sha256(response_body).hexdigest()}"


def encryption_key_text(public_key: bytes) -> str:
    """What the gateway's signing key signs (EIP-191) to vouch for its X25519 key."""
    return "veil/gateway/encryption-key:" + public_key.hex()


def _binding(gateway: Address, purpose: str) -> Binding:
    # A gateway serves every network: the binding names the gateway, not a chain.
    return Binding(chain_id=0, target=gateway.raw, epoch=0, purpose=purpose)


def seal_chat(gateway_key: bytes, gateway: Address, request_body: bytes, reply_to: bytes) -> bytes:
    """The envelope only ``gateway`` opens: the request body and where to seal the reply."""
    if len(gateway_key) != X25519_KEY_LENGTH or len(reply_to) != X25519_KEY_LENGTH:
        raise ValueError("keys are 32-byte X25519 public keys")
    plaintext = json.dumps(
        {"request": request_body.decode("utf-8"), "reply_to": reply_to.hex()},
        separators=(",", ":"),
    ).encode()
    return seal_for(gateway_key, plaintext, binding=_binding(gateway, CHAT_PURPOSE))


def open_chat(key: SecretKey, envelope: bytes) -> tuple[bytes, bytes]:
    """The gateway's side: ``(request_body, reply_to)``.

    Raises:
        EnvelopeInvalid: not sealed to ``key`` for a chat.
        ValueError: the plaintext is not a chat request.
    """
    plain = open_envelope(
        key, envelope, binding=_binding(key.address, CHAT_PURPOSE), max_size=MAX_SEALED_BYTES
    )
    document = json.loads(plain)
    if not isinstance(document, dict):
        raise ValueError("a sealed chat is a JSON object")
    request, reply_to = document.get("request"), document.get("reply_to")
    if not isinstance(request, str) or not isinstance(reply_to, str):
        raise ValueError("a sealed chat needs request and reply_to")
    to = bytes.fromhex(reply_to)
    if len(to) != X25519_KEY_LENGTH:
        raise ValueError("reply_to is a 32-byte X25519 key")
    return request.encode("utf-8"), to


def seal_reply(
    reply_to: bytes, gateway: Address, response_body: bytes, receipt: dict[str, Any]
) -> bytes:
    """The gateway's answer, readable only by whoever holds ``reply_to``'s private key."""
    plaintext = json.dumps(
        {"response": response_body.decode("utf-8"), "receipt": receipt}, separators=(",", ":")
    ).encode()
    return seal_for(reply_to, plaintext, binding=_binding(gateway, REPLY_PURPOSE))


def open_reply(key: SecretKey, gateway: Address, envelope: bytes) -> tuple[bytes, Any]:
    """The core's side: ``(response_body, receipt document)``.

    Raises:
        EnvelopeInvalid: not sealed to ``key`` by a party naming ``gateway``.
        ValueError: the plaintext is not a chat reply.
    """
    plain = open_envelope(
        key, envelope, binding=_binding(gateway, REPLY_PURPOSE), max_size=MAX_SEALED_BYTES
    )
    document = json.loads(plain)
    if not isinstance(document, dict) or not isinstance(document.get("response"), str):
        raise ValueError("a sealed reply needs a response")
    return document["response"].encode("utf-8"), document.get("receipt")
