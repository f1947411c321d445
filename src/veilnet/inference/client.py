"""Client side of the gateway: verify its attestation once, then verify every receipt.
``GatewayClient.chat`` is what the worker's ``llm.chat`` host call uses."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote as url_quote

import httpx

from veilnet.crypto import Address
from veilnet.errors import VeilnetError, error_codes
from veilnet.inference._attestation import (
    AllowedMeasurements,
    GatewayAttestation,
    verify_gateway_attestation,
)
from veilnet.inference._receipts import Receipt
from veilnet.inference.constants import (
    ATTESTATION_MAX_AGE_S,
    CLIENT_TIMEOUT_S,
    DEFAULT_MODEL_NAME,
    MAX_RESPONSE_BYTES,
    NONCE_LENGTH,
)
from veilnet.inference.errors import (
    InferenceBackendUnavailable,
    InferenceReceiptInvalid,
    InferenceResponseInvalid,
)
from veilnet.inference.interfaces import MeasurementPolicy, QuoteReport, QuoteVerifier

__all__ = [
    "AllowedMeasurements",
    "GatewayAttestation",
    "GatewayClient",
    "GatewayVerifier",
    "VerifiedCompletion",
    "verify_gateway_attestation",
    "verify_receipt",
]


def verify_receipt(
    receipt: Receipt | Mapping[str, Any],
    *,
    signer: Address | GatewayAttestation,
    request_body: bytes | None = None,
    response_body: bytes | None = None,
) -> Receipt:
    """Check a receipt against the attested signer (and the exchanged bodies, when given).

    Returns the parsed receipt; raises InferenceReceiptInvalid.
    """
    parsed = receipt if isinstance(receipt, Receipt) else Receipt.from_json(receipt)
    address = signer.signing_address if isinstance(signer, GatewayAttestation) else signer
    parsed.verify(signer=address, request_body=request_body, response_body=response_body)
    return parsed


class GatewayVerifier:
    """Verifies each gateway's attestation with a fresh nonce, then caches it for a while.

    Args:
        quote_verifier: checks a quote's chain and TCB (``veilnet.attestation`` in production).
        policy: the measurement allowlist, e.g. ``AllowedMeasurements.of(...)``.
        clock: Unix seconds; passed to the quote verifier as ``at``.
        entropy: randomness for nonces.
        max_age_s: how long one verification is reused before re-attesting.
    """

    def __init__(
        self,
        *,
        quote_verifier: QuoteVerifier,
        policy: MeasurementPolicy | Callable[[QuoteReport], None],
        clock: Callable[[], float] = time.time,
        entropy: Callable[[int], bytes] = os.urandom,
        max_age_s: int = ATTESTATION_MAX_AGE_S,
    ) -> None:
        self._quote_verifier = quote_verifier
        self._policy = policy
        self._clock = clock
        self._entropy = entropy
        self._max_age_s = max_age_s
        self._cache: dict[str, GatewayAttestation] = {}
        self._lock = threading.Lock()

    def attested(
        self, url: str, fetch: Callable[[bytes], Any], *, refresh: bool = False
    ) -> GatewayAttestation:
        """The cached attestation of ``url``, or a new one: ``fetch(nonce)`` gets the report."""
        now = int(self._clock())
        with self._lock:
            cached = self._cache.get(url)
        if cached is not None and not refresh and now - cached.verified_at < self._max_age_s:
            return cached
        nonce = self._entropy(NONCE_LENGTH)
        attestation = verify_gateway_attestation(
            fetch(nonce),
            nonce=nonce,
            quote_verifier=self._quote_verifier,
            policy=self._policy,
            at=now,
        )
        with self._lock:
            self._cache[url] = attestation
        return attestation

    def forget(self, url: str) -> None:
        with self._lock:
            self._cache.pop(url, None)


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifiedCompletion:
    """An answer whose receipt was verified against the gateway's attested key."""

    text: str
    receipt_id: str
    signing_address: Address
    model: str
    finish_reason: str | None
    usage: Mapping[str, Any]
    receipt: Receipt = field(repr=False)
    attestation: GatewayAttestation = field(repr=False)
    request_body: bytes = field(repr=False)
    response_body: bytes = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        """What an agent receives from ``llm.chat``."""
        return {
            "text": self.text,
            "receipt_id": self.receipt_id,
            "signing_address": self.signing_address.hex,
            "model": self.model,
            "finish_reason": self.finish_reason,
            "usage": dict(self.usage),
        }


class GatewayClient:
    """A verifying client for one gateway.

    Args:
        url: the gateway's base URL (``http://127.0.0.1:8600``; ``/v1`` is added).
        verifier: shared attestation cache and policy.
        transport: an httpx transport (tests may pass the app's ASGI transport).
    """

    def __init__(
        self,
        url: str,
        verifier: GatewayVerifier,
        *,
        timeout_s: float = CLIENT_TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        base = url.rstrip("/")
        self.url = base[: -len("/v1")] if base.endswith("/v1") else base
        self._verifier = verifier
        self._http = httpx.Client(timeout=timeout_s, transport=transport)

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- verification -------------------------------------------------------------------------

    def attestation(self, *, refresh: bool = False) -> GatewayAttestation:
        """The gateway's verified attestation (cached by the verifier)."""
        return self._verifier.attested(self.url, self._fetch_report, refresh=refresh)

    def receipt(self, receipt_id: str) -> Receipt:
        """The receipt the gateway serves for ``receipt_id`` (not yet verified)."""
        raw = self._get(f"/v1/signature/{url_quote(receipt_id, safe='')}")
        return Receipt.from_json(_json(raw))

    def verify(
        self,
        receipt_id: str,
        *,
        request_body: bytes | None = None,
        response_body: bytes | None = None,
    ) -> tuple[Receipt, GatewayAttestation]:
        """Fetch and verify a receipt against a freshly verified attestation."""
        receipt = self.receipt(receipt_id)
        if receipt.id != receipt_id:
            raise InferenceReceiptInvalid("gateway served a receipt for another id")
        attestation = self.attestation(refresh=True)
        verify_receipt(
            receipt, signer=attestation, request_body=request_body, response_body=response_body
        )
        return receipt, attestation

    # -- calls --------------------------------------------------------------------------------

    def chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        model: str = DEFAULT_MODEL_NAME,
        **params: Any,
    ) -> VerifiedCompletion:
        """Ask the gateway; return the answer once its receipt verifies.

        Raises the gateway's typed error for a failed call, InferenceReceiptInvalid or an
        attestation error when the answer cannot be trusted.
        """
        body = {"model": model, "messages": [dict(m) for m in messages], **params, "stream": False}
        request_body, response_body, document = self._post("/v1/chat/completions", body)
        choice = _first_choice(document)
        message = choice.get("message")
        text = message.get("content") if isinstance(message, dict) else None
        return self._verified(request_body, response_body, document, text, choice)

    def complete(
        self, prompt: str, *, model: str = DEFAULT_MODEL_NAME, **params: Any
    ) -> VerifiedCompletion:
        """``/v1/completions`` with a verified receipt."""
        body = {"model": model, "prompt": prompt, **params, "stream": False}
        request_body, response_body, document = self._post("/v1/completions", body)
        choice = _first_choice(document)
        return self._verified(request_body, response_body, document, choice.get("text"), choice)

    # -- helpers ------------------------------------------------------------------------------

    def _verified(
        self,
        request_body: bytes,
        response_body: bytes,
        document: Mapping[str, Any],
        text: Any,
        choice: Mapping[str, Any],
    ) -> VerifiedCompletion:
        receipt_id = document.get("id")
        if not isinstance(receipt_id, str) or not isinstance(text, str):
            raise InferenceResponseInvalid("gateway response lacks an id or text")
        receipt = self.receipt(receipt_id)
        if receipt.id != receipt_id:
            raise InferenceReceiptInvalid("gateway served a receipt for another id")
        attestation = self.attestation()
        if receipt.signing_address != attestation.signing_address:
            # The gateway may have restarted with a new key: attest again, once.
            attestation = self.attestation(refresh=True)
        verify_receipt(
            receipt, signer=attestation, request_body=request_body, response_body=response_body
        )
        usage = document.get("usage")
        finish = choice.get("finish_reason")
        return VerifiedCompletion(
            text=text,
            receipt_id=receipt_id,
            signing_address=attestation.signing_address,
            model=str(document.get("model", "")),
            finish_reason=finish if isinstance(finish, str) else None,
            usage=usage if isinstance(usage, dict) else {},
            receipt=receipt,
            attestation=attestation,
            request_body=request_body,
            response_body=response_body,
        )

    def _fetch_report(self, nonce: bytes) -> Any:
        return _json(self._get(f"/v1/attestation/report?nonce={nonce.hex()}"))

    def _get(self, path: str) -> bytes:
        return self._exchange("GET", path, None)

    def _post(self, path: str, body: Mapping[str, Any]) -> tuple[bytes, bytes, dict[str, Any]]:
        request_body = json.dumps(body, separators=(",", ":")).encode()
        response_body = self._exchange("POST", path, request_body)
        return request_body, response_body, _json(response_body)

    def _exchange(self, method: str, path: str, content: bytes | None) -> bytes:
        headers = {"content-type": "application/json"} if content is not None else {}
        try:
            with self._http.stream(
                method, self.url + path, content=content, headers=headers
            ) as response:
                raw = _read_bounded(response)
                status = response.status_code
        except httpx.HTTPError as exc:
            raise InferenceBackendUnavailable("the gateway is unreachable") from exc
        if status >= 400:
            raise _error_from(status, raw)
        return raw


def _read_bounded(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise InferenceResponseInvalid("gateway response is too large")
        chunks.append(chunk)
    return b"".join(chunks)


def _json(raw: bytes) -> dict[str, Any]:
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InferenceResponseInvalid("gateway answered with something that is not JSON") from exc
    if not isinstance(document, dict):
        raise InferenceResponseInvalid("gateway answered with a non-object")
    return document


def _first_choice(document: Mapping[str, Any]) -> Mapping[str, Any]:
    choices = document.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise InferenceResponseInvalid("gateway response has no choices")
    first: Mapping[str, Any] = choices[0]
    return first


def _error_from(status: int, raw: bytes) -> VeilnetError:
    """The gateway's typed error, rebuilt from its stable code where this build knows it."""
    code, message = "", f"gateway answered HTTP {status}"
    try:
        error = json.loads(raw).get("error", {})
        code, message = str(error.get("code", "")), str(error.get("message", message))
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        pass
    cls = error_codes().get(code)
    if cls is None or cls is VeilnetError:
        cls = InferenceBackendUnavailable if status >= 500 else InferenceResponseInvalid
    return cls(message[:500], gateway_status=status)
