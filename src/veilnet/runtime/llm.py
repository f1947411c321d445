"""Agents' ``llm.chat``: the core verifies the inference gateway's quote itself, seals the prompt
to the gateway's attested key and checks the answer's receipt; the host carries only ciphertext.

Theory of operation
-------------------
The host is handed opaque calls to its gateway (``Channel``: method, path, body in; status and
body out). Before the first chat, and again once ``ATTESTATION_TTL_S`` of chain time has passed,
the core asks for the gateway's report with a nonce from TEE entropy and checks it here: the
quote under the network's attestation root and policy at the block's time, its report data
binding the signing address and that nonce, its measurement among the network's allowed
gateway measurements (``CoreConfig.gateway_measurements``, part of the measured configuration),
and the signing key's signature over the X25519 key chats are sealed to.

Each chat is then sealed to that key (``protocol.gateway.seal_chat``) with a fresh reply key;
the answer must open under the reply key and carry a receipt, by the attested signing key, over
the exact request and response bodies. Anything else is refused and forgets the gateway, so a
host can delay or drop answers but never read a prompt or invent an answer.
"""

from __future__ import annotations

import hmac
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from veilnet.crypto import (
    Address,
    EnvelopeInvalid,
    KeyInvalid,
    SecretKey,
    SignatureInvalid,
    UnsupportedVersion,
    recover_text,
)
from veilnet.errors import Unavailable
from veilnet.protocol import gateway as gw
from veilnet.runtime.interfaces import Platform, QuoteVerifier
from veilnet.sandbox.interfaces import JSONValue

__all__ = [
    "ATTESTATION_TTL_S",
    "Channel",
    "GatewayTrust",
    "LLMFailed",
    "TrustedGateway",
    "chat",
]

ATTESTATION_TTL_S: Final = 3600
"""Chain seconds a verified gateway attestation is reused before the core asks again."""
AGENT_PARAMS: Final = ("max_tokens", "temperature", "top_p", "seed", "stop")
"""OpenAI request fields an agent may set besides ``messages`` and ``model``."""
MAX_REPORT_BYTES: Final = 256 * 1024

Channel = Callable[[str, str, bytes], tuple[int, bytes]]
"""The host's way to its gateway: ``(method, path, body) -> (status, body)``."""


class LLMFailed(Unavailable):
    """``llm.chat`` could not be answered with a verified answer (``details["reason"]``)."""

    code = "runtime_llm_failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class TrustedGateway:
    """A gateway whose report this core verified."""

    address: Address
    encryption_key: bytes
    measurement: bytes
    verified_at: int


class GatewayTrust:
    """The gateway this core verified last (per core, not replicated: queries only)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: TrustedGateway | None = None

    def current(self, at: int) -> TrustedGateway | None:
        with self._lock:
            found = self._current
        if found is None or not 0 <= at - found.verified_at <= ATTESTATION_TTL_S:
            return None
        return found

    def remember(self, gateway: TrustedGateway) -> None:
        with self._lock:
            self._current = gateway

    def forget(self) -> None:
        with self._lock:
            self._current = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Judge:
    """What the core judges a gateway with (all from the measured configuration)."""

    verifier: QuoteVerifier
    allowed: frozenset[bytes]
    platform: Platform
    trust: GatewayTrust


def chat(request: JSONValue, *, channel: Channel, judge: Judge, at: int) -> dict[str, Any]:
    """One verified chat completion for an agent, at chain time ``at``.

    Raises:
        LLMFailed: the request is malformed, the gateway cannot be verified, or its answer is
            not sealed and signed by it for this very request.
    """
    body = _request_body(request)
    gateway = judge.trust.current(at) or _verify_gateway(channel, judge, at)
    reply_key = SecretKey.generate(judge.platform.random_bytes(32))
    sealed = gw.seal_chat(gateway.encryption_key, gateway.address, body, reply_key.public.x25519)
    status, answer = channel("POST", gw.SEALED_CHAT_PATH, sealed)
    if status != 200:
        raise LLMFailed(
            f"the gateway refused the chat (HTTP {status})",
            reason="gateway_error",
            gateway_error=_error_code(answer),
        )
    try:
        response_body, receipt = gw.open_reply(reply_key, gateway.address, answer)
        document = json.loads(response_body)
    except (EnvelopeInvalid, UnsupportedVersion, ValueError, UnicodeDecodeError) as exc:
        judge.trust.forget()
        raise LLMFailed(
            "the answer is not sealed by the attested gateway", reason="sealing"
        ) from exc
    _check_receipt(receipt, gateway.address, body, response_body, judge)
    return _for_agent(document, receipt, gateway.address)


def _request_body(request: JSONValue) -> bytes:
    if not isinstance(request, dict) or not isinstance(request.get("messages"), list):
        raise LLMFailed("llm.chat needs {messages: [...]}", reason="request")
    model = request.get("model") or "default"
    if not isinstance(model, str):
        raise LLMFailed("model must be a string", reason="request")
    document = {
        "model": gw.DEFAULT_MODEL_NAME if model == "default" else model,
        "messages": request["messages"],
        **{k: request[k] for k in AGENT_PARAMS if k in request},
        "stream": False,
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def _verify_gateway(channel: Channel, judge: Judge, at: int) -> TrustedGateway:
    nonce = judge.platform.random_bytes(gw.NONCE_LENGTH)
    status, raw = channel("GET", f"{gw.ATTESTATION_PATH}?nonce={nonce.hex()}", b"")
    if status != 200 or len(raw) > MAX_REPORT_BYTES:
        raise LLMFailed("the gateway gave no attestation report", reason="attestation")
    try:
        report = json.loads(raw)
        address = Address.parse(report["signing_address"])
        quote = bytes.fromhex(str(report["quote"]).removeprefix("0x"))
        collateral = report["collateral"]
        if report.get("collateral_encoding") == "hex":
            collateral_bytes = bytes.fromhex(str(collateral))
        else:
            collateral_bytes = json.dumps(collateral).encode()
        encryption_key = bytes.fromhex(str(report["encryption_key"]))
        vouch = bytes.fromhex(str(report["encryption_key_signature"]).removeprefix("0x"))
    except (ValueError, KeyError, TypeError, KeyInvalid) as exc:
        raise LLMFailed(
            "the gateway's attestation report is malformed", reason="attestation"
        ) from exc
    verdict = judge.verifier(
        quote=quote,
        collateral=collateral_bytes,
        at=at,
        report_data=gw.report_data_for(address, nonce),
    )
    if not verdict.accepted:
        raise LLMFailed(
            "the gateway's quote does not verify for its key and our nonce",
            reason="attestation",
            reasons=list(verdict.reasons)[:4],
        )
    if verdict.measurement not in judge.allowed:
        raise LLMFailed(
            "the gateway runs a measurement this network does not allow",
            reason="measurement",
            measurement="0x" + verdict.measurement.hex(),
        )
    try:
        vouched = recover_text(vouch, gw.encryption_key_text(encryption_key))
    except SignatureInvalid as exc:
        raise LLMFailed(
            "the gateway's encryption key is not vouched for", reason="attestation"
        ) from exc
    if len(encryption_key) != gw.X25519_KEY_LENGTH or vouched != address:
        raise LLMFailed("the gateway's encryption key is not vouched for", reason="attestation")
    trusted = TrustedGateway(
        address=address,
        encryption_key=encryption_key,
        measurement=verdict.measurement,
        verified_at=at,
    )
    judge.trust.remember(trusted)
    return trusted


def _check_receipt(
    receipt: Any, signer: Address, request_body: bytes, response_body: bytes, judge: Judge
) -> None:
    expected = gw.receipt_text(request_body, response_body)
    try:
        if not isinstance(receipt, Mapping) or receipt.get("text") != expected:
            raise ValueError("the receipt covers another exchange")
        recovered = recover_text(
            bytes.fromhex(str(receipt["signature"]).removeprefix("0x")), expected
        )
    except (ValueError, KeyError, SignatureInvalid) as exc:
        judge.trust.forget()
        raise LLMFailed("the answer's receipt does not verify", reason="receipt") from exc
    if not hmac.compare_digest(recovered.raw, signer.raw):
        judge.trust.forget()
        raise LLMFailed("the answer's receipt is not the attested gateway's", reason="receipt")


def _for_agent(document: Any, receipt: Any, signer: Address) -> dict[str, Any]:
    """The OpenAI ``chat.completion`` plus ``text``, ``receipt_id``, ``signing_address``,
    ``receipt`` and ``verified``: what an agent's ``llm.chat`` returns."""
    if not isinstance(document, dict):
        raise LLMFailed("the answer is not a chat completion", reason="answer")
    choices = document.get("choices")
    first = choices[0] if isinstance(choices, list) and choices else {}
    message = first.get("message") if isinstance(first, dict) else None
    text = message.get("content") if isinstance(message, dict) else None
    if not isinstance(text, str):
        raise LLMFailed("the answer has no message", reason="answer")
    return {
        **document,
        "object": "chat.completion",
        "text": text,
        "finish_reason": first.get("finish_reason"),
        "receipt_id": document.get("id"),
        "signing_address": signer.hex,
        "receipt": dict(receipt),
        "verified": True,
    }


def _error_code(body: bytes) -> str:
    try:
        code = json.loads(body[:4096])["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return ""
    return code[:64] if isinstance(code, str) else ""
