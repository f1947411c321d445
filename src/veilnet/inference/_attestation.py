"""The gateway's attestation report and its verification, both without I/O.
report_data = signing address right-padded to 32 bytes || 32-byte nonce (Phala's layout)."""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from veilnet.crypto import Address, KeyInvalid
from veilnet.errors import VeilnetError
from veilnet.inference.constants import ADDRESS_FIELD_LENGTH, NONCE_LENGTH, REPORT_DATA_LENGTH
from veilnet.inference.errors import (
    InferenceAttestationInvalid,
    InferenceMeasurementNotAllowed,
    InferenceNonceMismatch,
)
from veilnet.inference.interfaces import Enclave, MeasurementPolicy, QuoteReport, QuoteVerifier
from veilnet.protocol.gateway import report_data_for

__all__ = [
    "AllowedMeasurements",
    "GatewayAttestation",
    "attestation_report",
    "report_data_for",
    "verify_gateway_attestation",
]


def attestation_report(
    enclave: Enclave,
    address: Address,
    nonce: bytes,
    *,
    encryption_key: bytes = b"",
    encryption_key_signature: bytes = b"",
) -> dict[str, Any]:
    """The ``/v1/attestation/report`` document: address, nonce, quote and collateral, and the
    X25519 key sealed chats go to with the signing key's signature over it (if given)."""
    report_data = report_data_for(address, nonce)
    quote = enclave.quote(report_data)
    collateral = enclave.collateral()
    encoding = "json"
    to_json = getattr(collateral, "to_json", None)
    if callable(to_json):  # veilnet.attestation.Collateral: embed its JSON document
        collateral = json.loads(to_json())
    elif isinstance(collateral, bytes | bytearray):
        collateral, encoding = bytes(collateral).hex(), "hex"
    return {
        "signing_address": address.hex,
        "signing_algo": "ecdsa",
        "nonce": nonce.hex(),
        "report_data": report_data.hex(),
        "tee": str(enclave.kind),
        "quote": quote.hex(),
        "intel_quote": quote.hex(),
        "collateral": collateral,
        "collateral_encoding": encoding,
        **(
            {
                "encryption_key": encryption_key.hex(),
                "encryption_key_signature": "0x" + encryption_key_signature.hex(),
            }
            if encryption_key
            else {}
        ),
    }


@dataclass(frozen=True, slots=True)
class AllowedMeasurements:
    """A measurement allowlist: a report passes if it matches every field of one entry.

    Entries map measurement names (``mrtd``, ``rtmr0``.., ``mr_enclave``) to lowercase hex.
    """

    entries: tuple[Mapping[str, str], ...] = field(default_factory=tuple)

    @classmethod
    def of(cls, entries: Collection[Mapping[str, str]]) -> AllowedMeasurements:
        return cls(tuple({k: v.lower() for k, v in e.items()} for e in entries))

    @classmethod
    def of_ids(cls, ids: Collection[bytes]) -> AllowedMeasurements:
        """An allowlist of on-chain measurement ids (``veilnet.attestation.measurement_id``)."""
        return cls(tuple({"measurement_id": i.hex()} for i in ids))

    def __call__(self, report: QuoteReport) -> None:
        got = {k: str(v).lower() for k, v in report.measurements.items()}
        for entry in self.entries:
            if entry and all(k in got and hmac.compare_digest(got[k], v) for k, v in entry.items()):
                return
        raise InferenceMeasurementNotAllowed(
            "gateway measurements are not on the allowlist",
            measurements=dict(sorted(got.items())),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayAttestation:
    """A gateway whose quote verified: the key it signs receipts with, and what it runs."""

    signing_address: Address
    tee: str
    measurements: Mapping[str, str]
    verified_at: int
    nonce: bytes


def verify_gateway_attestation(
    document: Any,
    *,
    nonce: bytes,
    quote_verifier: QuoteVerifier,
    policy: MeasurementPolicy | Callable[[QuoteReport], None],
    at: int,
) -> GatewayAttestation:
    """Check a ``/v1/attestation/report`` document against the nonce we sent.

    Raises InferenceAttestationInvalid (malformed, quote does not verify, report_data does not
    bind the signing address), InferenceNonceMismatch (not our nonce) or
    InferenceMeasurementNotAllowed (verified but not on the allowlist).
    """
    if len(nonce) != NONCE_LENGTH:
        raise ValueError(f"nonce must be {NONCE_LENGTH} bytes")
    if not isinstance(document, Mapping):
        raise InferenceAttestationInvalid("attestation report is not a JSON object")
    addr, quote_hex = document.get("signing_address"), document.get("quote")
    if not isinstance(addr, str) or not isinstance(quote_hex, str):
        raise InferenceAttestationInvalid("attestation report lacks signing_address or quote")
    try:
        address = Address.parse(addr)
        quote = bytes.fromhex(quote_hex.removeprefix("0x"))
    except (ValueError, KeyInvalid) as exc:
        raise InferenceAttestationInvalid("attestation report fields are malformed") from exc
    collateral = document.get("collateral")
    if document.get("collateral_encoding") == "hex":
        if not isinstance(collateral, str):
            raise InferenceAttestationInvalid("attestation collateral is malformed")
        try:
            collateral = bytes.fromhex(collateral)
        except ValueError as exc:
            raise InferenceAttestationInvalid("attestation collateral is malformed") from exc
    try:
        report = quote_verifier(quote, collateral, at=at)
    except (InferenceMeasurementNotAllowed, InferenceNonceMismatch, InferenceAttestationInvalid):
        raise
    except VeilnetError as exc:
        raise InferenceAttestationInvalid("gateway quote does not verify", reason=exc.code) from exc
    report_data = bytes(report.report_data)
    if len(report_data) != REPORT_DATA_LENGTH:
        raise InferenceAttestationInvalid("quote report_data has the wrong length")
    if not hmac.compare_digest(report_data[NONCE_LENGTH:], nonce):
        raise InferenceNonceMismatch("gateway quote does not carry our nonce")
    expected_head = address.raw.ljust(ADDRESS_FIELD_LENGTH, b"\x00")
    if not hmac.compare_digest(report_data[:ADDRESS_FIELD_LENGTH], expected_head):
        raise InferenceAttestationInvalid("quote report_data does not bind the signing address")
    policy(report)
    return GatewayAttestation(
        signing_address=address,
        tee=str(document.get("tee", "")),
        measurements=dict(report.measurements),
        verified_at=at,
        nonce=nonce,
    )
