"""Quote collateral (PCS/PCCS format): TCB info, QE identity, CRLs and issuer chains.
Serialises to and from canonical JSON bytes so workers can ship it over HTTP and on chain."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final, final

import dcap_qvl
from cryptography import x509

from veilnet.attestation.constants import MAX_COLLATERAL_SIZE
from veilnet.attestation.errors import CollateralInvalid, QuoteTooLarge

__all__ = ["Collateral"]

_STRING_FIELDS: Final = (
    "pck_crl_issuer_chain",
    "tcb_info_issuer_chain",
    "tcb_info",
    "qe_identity_issuer_chain",
    "qe_identity",
)
_HEX_FIELDS: Final = ("root_ca_crl", "pck_crl", "tcb_info_signature", "qe_identity_signature")
_OPTIONAL_FIELDS: Final = ("pck_certificate_chain",)


def _timestamp(document: dict[str, Any], key: str, what: str) -> int:
    value = document.get(key)
    if not isinstance(value, str):
        raise CollateralInvalid(f"{what} has no {key}")
    try:
        return int(datetime.fromisoformat(value).timestamp())
    except ValueError as exc:
        raise CollateralInvalid(f"{what}.{key} is not an ISO 8601 time") from exc


@final
class Collateral:
    """Collateral for one quote (verified later, by dcap-qvl); immutable after construction.

    Build with ``from_json``/``from_fields``. ``issued_at``/``expires_at`` are the window in
    which the TCB info, QE identity and both CRLs are all valid (unix seconds).
    """

    __slots__ = ("_dcap", "_fields", "_root_der", "expires_at", "issued_at", "tcb_type")

    def __init__(self, fields: dict[str, str], *, _token: object = None) -> None:
        if _token is not _CONSTRUCT:
            raise TypeError("use Collateral.from_json() or Collateral.from_fields()")
        self._fields = fields
        self._root_der: bytes | None = None
        try:
            tcb_info = json.loads(fields["tcb_info"])
            qe_identity = json.loads(fields["qe_identity"])
        except ValueError as exc:
            raise CollateralInvalid("tcb_info or qe_identity is not JSON") from exc
        if not isinstance(tcb_info, dict) or not isinstance(qe_identity, dict):
            raise CollateralInvalid("tcb_info and qe_identity must be JSON objects")
        self.tcb_type = str(tcb_info.get("id", ""))
        starts = [
            _timestamp(tcb_info, "issueDate", "tcb_info"),
            _timestamp(qe_identity, "issueDate", "qe_identity"),
        ]
        ends = [
            _timestamp(tcb_info, "nextUpdate", "tcb_info"),
            _timestamp(qe_identity, "nextUpdate", "qe_identity"),
        ]
        for name in ("root_ca_crl", "pck_crl"):
            try:
                crl = x509.load_der_x509_crl(bytes.fromhex(fields[name]))
            except ValueError as exc:
                raise CollateralInvalid(f"{name} is not a DER CRL") from exc
            starts.append(int(crl.last_update_utc.timestamp()))
            if crl.next_update_utc is not None:
                ends.append(int(crl.next_update_utc.timestamp()))
        self.issued_at = max(starts)
        self.expires_at = min(ends)
        try:
            self._dcap = dcap_qvl.QuoteCollateralV3.from_json(json.dumps(fields))
        except ValueError as exc:
            raise CollateralInvalid(f"collateral rejected by dcap-qvl: {exc}") from exc

    @classmethod
    def from_fields(cls, **fields: str) -> Collateral:
        """From the PCS field names (hex strings for CRLs and signatures, PEM chains)."""
        clean: dict[str, str] = {}
        for name in (*_STRING_FIELDS, *_HEX_FIELDS, *_OPTIONAL_FIELDS):
            value = fields.get(name)
            if value is None and name in _OPTIONAL_FIELDS:
                continue
            if not isinstance(value, str):
                raise CollateralInvalid(f"collateral field {name} is missing or not a string")
            if name in _HEX_FIELDS:
                try:
                    bytes.fromhex(value)
                except ValueError as exc:
                    raise CollateralInvalid(f"collateral field {name} is not hex") from exc
            clean[name] = value
        return cls(clean, _token=_CONSTRUCT)

    @classmethod
    def from_json(cls, data: bytes | str) -> Collateral:
        """Parse collateral JSON (the format of dcap-qvl and the PCCS).

        Raises:
            QuoteTooLarge: over ``MAX_COLLATERAL_SIZE``.
            CollateralInvalid: not JSON, missing fields, unparseable TCB info or dates.
        """
        if len(data) > MAX_COLLATERAL_SIZE:
            raise QuoteTooLarge(f"collateral is over {MAX_COLLATERAL_SIZE} bytes")
        try:
            document = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CollateralInvalid("collateral is not JSON") from exc
        if not isinstance(document, dict):
            raise CollateralInvalid("collateral must be a JSON object")
        return cls.from_fields(**{k: v for k, v in document.items() if isinstance(k, str)})

    def to_json(self) -> bytes:
        """Canonical JSON bytes (sorted keys, compact); ``from_json`` round-trips it."""
        return json.dumps(self._fields, sort_keys=True, separators=(",", ":")).encode()

    def to_dict(self) -> dict[str, str]:
        return dict(self._fields)

    @property
    def root_der(self) -> bytes:
        """DER of the root CA that the TCB-info issuer chain ends in."""
        if self._root_der is None:
            try:
                chain = x509.load_pem_x509_certificates(
                    self._fields["tcb_info_issuer_chain"].encode()
                )
            except ValueError as exc:
                raise CollateralInvalid("tcb_info_issuer_chain is not a PEM chain") from exc
            from cryptography.hazmat.primitives.serialization import Encoding

            self._root_der = chain[-1].public_bytes(Encoding.DER)
        return self._root_der

    def _for_dcap(self) -> Any:
        return self._dcap

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Collateral) and self._fields == other._fields

    def __hash__(self) -> int:
        return hash(self.to_json())

    def __repr__(self) -> str:
        return f"Collateral(tcb={self.tcb_type}, valid=[{self.issued_at}, {self.expires_at}])"


_CONSTRUCT = object()
