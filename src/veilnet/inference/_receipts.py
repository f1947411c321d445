"""Signed receipts: the gateway key's EIP-191 signature over ``sha256(request):sha256(response)``.
The same text format as Phala's private-ml gateway, so eth-account's ``recover_message`` works."""

from __future__ import annotations

import hmac
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from veilnet.crypto import Address, KeyInvalid, SecretKey, SignatureInvalid, recover_text, sign_text
from veilnet.inference.constants import MAX_RECEIPT_ID_LENGTH, MAX_RECEIPTS, SIGNATURE_LENGTH
from veilnet.inference.errors import InferenceReceiptInvalid
from veilnet.protocol.gateway import receipt_text

__all__ = ["Receipt", "ReceiptStore", "receipt_text", "sign_receipt"]

SIGNING_ALGO = "ecdsa"


@dataclass(frozen=True, slots=True, kw_only=True)
class Receipt:
    """One signed exchange, as served at ``/v1/signature/{id}``."""

    id: str
    text: str
    signature: bytes
    signing_address: Address

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "text": self.text,
            "signature": "0x" + self.signature.hex(),
            "signing_address": self.signing_address.hex,
            "signing_algo": SIGNING_ALGO,
        }

    @classmethod
    def from_json(cls, document: Any) -> Receipt:
        """Parse a served receipt; raises InferenceReceiptInvalid for any malformed field."""
        if not isinstance(document, Mapping):
            raise InferenceReceiptInvalid("receipt is not a JSON object")
        rid, text, sig, addr = (
            document.get(k) for k in ("id", "text", "signature", "signing_address")
        )
        if not isinstance(rid, str) or not 0 < len(rid) <= MAX_RECEIPT_ID_LENGTH:
            raise InferenceReceiptInvalid("receipt id is missing or malformed")
        if not isinstance(text, str) or not isinstance(sig, str) or not isinstance(addr, str):
            raise InferenceReceiptInvalid("receipt fields are missing", receipt_id=rid)
        algo = document.get("signing_algo", SIGNING_ALGO)
        if algo != SIGNING_ALGO:
            raise InferenceReceiptInvalid("unsupported receipt signing algorithm", receipt_id=rid)
        try:
            signature = bytes.fromhex(sig.removeprefix("0x"))
            address = Address.parse(addr)
        except (ValueError, KeyInvalid) as exc:
            raise InferenceReceiptInvalid("receipt fields are malformed", receipt_id=rid) from exc
        if len(signature) != SIGNATURE_LENGTH:
            raise InferenceReceiptInvalid("receipt signature has the wrong length", receipt_id=rid)
        return cls(id=rid, text=text, signature=signature, signing_address=address)

    def verify(
        self,
        *,
        signer: Address,
        request_body: bytes | None = None,
        response_body: bytes | None = None,
    ) -> None:
        """Raise InferenceReceiptInvalid unless ``signer`` signed this receipt's text.

        With both bodies given, the text must also be exactly their hashes.
        """
        if (request_body is None) != (response_body is None):
            raise ValueError("give both request_body and response_body, or neither")
        if request_body is not None and response_body is not None:
            expected = receipt_text(request_body, response_body)
            if not hmac.compare_digest(expected.encode(), self.text.encode()):
                raise InferenceReceiptInvalid(
                    "receipt does not match the request and response", receipt_id=self.id
                )
        if not hmac.compare_digest(self.signing_address.raw, signer.raw):
            raise InferenceReceiptInvalid(
                "receipt names a signer other than the attested gateway key", receipt_id=self.id
            )
        try:
            recovered = recover_text(self.signature, self.text)
        except SignatureInvalid as exc:
            raise InferenceReceiptInvalid(
                "receipt signature is malformed", receipt_id=self.id
            ) from exc
        if not hmac.compare_digest(recovered.raw, signer.raw):
            raise InferenceReceiptInvalid(
                "receipt was not signed by the attested gateway key", receipt_id=self.id
            )


def sign_receipt(
    key: SecretKey, receipt_id: str, request_body: bytes, response_body: bytes
) -> Receipt:
    """Sign one exchange with the gateway key."""
    text = receipt_text(request_body, response_body)
    return Receipt(
        id=receipt_id, text=text, signature=sign_text(key, text), signing_address=key.address
    )


class ReceiptStore:
    """A bounded, thread-safe map of receipt id to receipt; the oldest are evicted first."""

    def __init__(self, max_items: int = MAX_RECEIPTS) -> None:
        if max_items < 1:
            raise ValueError("max_items must be positive")
        self._items: OrderedDict[str, Receipt] = OrderedDict()
        self._max = max_items
        self._lock = threading.Lock()

    def put(self, receipt: Receipt) -> None:
        with self._lock:
            self._items[receipt.id] = receipt
            self._items.move_to_end(receipt.id)
            while len(self._items) > self._max:
                self._items.popitem(last=False)

    def get(self, receipt_id: str) -> Receipt | None:
        with self._lock:
            return self._items.get(receipt_id)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
