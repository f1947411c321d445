"""Quote verification: dcap-qvl for signatures, collateral and TCB, then Veilnet's policy.
``verify_quote_at`` is pure (time passed in); ``verify_quote`` reads the clock and delegates.

Theory of operation: a quote is first parsed by our own bounded parser (so malformed bytes fail
with a typed error before reaching native code), the root and collateral window are checked,
then dcap-qvl verifies the chain, CRLs, TCB info, QE identity and both signatures. Only then are
policy rules applied; their failures do not raise but are listed in ``reasons`` with
``accepted=False`` so that auditors see every problem at once (``require_accepted`` raises).
Replay protection keys on ``report_data``, never on the raw bytes: some quote bytes (the copy
of the root certificate, PEM whitespace, trailing padding) are not covered by any signature."""

from __future__ import annotations

import hmac
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import dcap_qvl

from veilnet.attestation._collateral import Collateral
from veilnet.attestation._measurement import Measurement
from veilnet.attestation._policy import Policy, confidence_level
from veilnet.attestation._quote import ParsedQuote, TEEKind, parse_quote
from veilnet.attestation._roots import TrustRoot
from veilnet.attestation.constants import REPORT_DATA_LENGTH, SGX_DEBUG_BIT, TDX_DEBUG_BIT
from veilnet.attestation.errors import (
    AttestationRejected,
    CollateralExpired,
    DevRootRefused,
    QuoteReplayed,
    QuoteUnverified,
    WrongTrustRoot,
)

__all__ = ["AttestationReport", "ReplayGuard", "verify_quote", "verify_quote_at"]


@dataclass(frozen=True, slots=True, kw_only=True)
class AttestationReport:
    """The outcome of verifying one quote under one policy.

    ``accepted`` is True only when dcap-qvl verified the quote and every policy rule passed;
    otherwise ``reasons`` says why (one ``code: text`` string per failed rule).
    """

    tee: TEEKind
    quote_version: int
    status: str
    advisory_ids: tuple[str, ...]
    confidence_level: int
    measurement: Measurement
    report_data: bytes
    accepted: bool
    reasons: tuple[str, ...]
    warnings: tuple[str, ...]
    verified_at: int
    collateral_expires_at: int
    trust_root: str
    ppid: bytes

    @property
    def measurement_id(self) -> bytes:
        return self.measurement.id

    @property
    def dedup_key(self) -> bytes:
        """What identifies "the same quote": the TEE kind and its signed report_data."""
        return self.tee.value.encode() + b":" + self.report_data

    def require_accepted(self) -> AttestationReport:
        """Return self if accepted, else raise ``AttestationRejected`` listing the reasons."""
        if not self.accepted:
            raise AttestationRejected(
                "attestation rejected: " + "; ".join(self.reasons), reasons=list(self.reasons)
            )
        return self

    def to_json(self) -> dict[str, Any]:
        """The JSON document of ``veil attest verify --json`` (keys fixed by INTERFACES.md)."""
        return {
            "tee": self.tee.value,
            "quote_version": self.quote_version,
            "status": self.status,
            "advisory_ids": list(self.advisory_ids),
            "confidence_level": self.confidence_level,
            "measurements": self.measurement.to_json(),
            "measurement_id": self.measurement.id.hex(),
            "report_data": self.report_data.hex(),
            "accepted": self.accepted,
            "reasons": list(self.reasons),
            "warnings": list(self.warnings),
            "verified_at": self.verified_at,
            "collateral_expires_at": self.collateral_expires_at,
            "trust_root": self.trust_root,
            "ppid": self.ppid.hex(),
        }


def verify_quote_at(
    quote: bytes,
    collateral: Collateral,
    *,
    at: int,
    policy: Policy,
    root: TrustRoot,
    expected_report_data: bytes | None = None,
    nonce_issued_at: int | None = None,
) -> AttestationReport:
    """Verify ``quote`` with ``collateral`` at unix time ``at`` and apply ``policy``.

    Args:
        quote: raw quote bytes (see ``read_quote`` for hex or JSON-array text).
        collateral: the quote's collateral.
        at: verification time, unix seconds.
        policy: rules applied after cryptographic verification.
        root: the trust root (``TrustRoot.intel()`` in production).
        expected_report_data: the 64 bytes the quote must bind (e.g. a hash of keys and nonce).
        nonce_issued_at: when the nonce inside ``expected_report_data`` was issued.

    Returns:
        A report; check ``accepted`` or call ``require_accepted()``.

    Raises:
        DevRootRefused: a production policy with a development root.
        QuoteMalformed, QuoteTooLarge, UnsupportedTEE: the quote bytes are unusable.
        CollateralExpired: ``at`` lies outside the collateral's validity window.
        WrongTrustRoot: the collateral chains to a different root.
        QuoteUnverified: dcap-qvl rejected the quote (signatures, chain, CRL, TCB, QE).
    """
    if not isinstance(at, int) or isinstance(at, bool) or at < 0:
        raise TypeError("at is a non-negative int (unix seconds)")
    if not isinstance(collateral, Collateral):
        raise TypeError("collateral must be a veilnet.attestation.Collateral")
    if root.is_dev and policy.production:
        raise DevRootRefused("a production policy refuses the development attestation root")
    parsed = parse_quote(quote)
    if at < collateral.issued_at or at > collateral.expires_at:
        raise CollateralExpired(
            f"collateral is valid from {collateral.issued_at} to {collateral.expires_at}, "
            f"not at {at}",
            issued_at=collateral.issued_at,
            expires_at=collateral.expires_at,
            at=at,
        )
    if not hmac.compare_digest(collateral.root_der, root.der):
        raise WrongTrustRoot(
            f"the collateral chains to a root CA other than the configured {root.name} "
            "(development quotes need --insecure-dev-tee and --root-ca)"
        )
    verified = _dcap_verify(bytes(quote), collateral, root, at)
    status = str(verified.status)
    advisories = tuple(str(a) for a in verified.advisory_ids)
    level = confidence_level(status, advisories)
    measurement = Measurement.of_quote(parsed)
    reasons = _policy_reasons(
        parsed,
        measurement,
        status=status,
        advisories=advisories,
        level=level,
        policy=policy,
        at=at,
        expected_report_data=expected_report_data,
        nonce_issued_at=nonce_issued_at,
    )
    warnings: list[str] = []
    if collateral.expires_at - at < policy.collateral_warning_s:
        warnings.append(
            f"collateral_expiring: collateral expires at {collateral.expires_at}, "
            f"{collateral.expires_at - at} s from now; refresh it"
        )
    if policy.allowed_measurements is None:
        warnings.append("measurement_unchecked: no measurement allowlist configured")
    if root.is_dev:
        warnings.append("insecure_dev_tee: development root, proves nothing about hardware")
    return AttestationReport(
        tee=parsed.tee,
        quote_version=parsed.version,
        status=status,
        advisory_ids=advisories,
        confidence_level=level,
        measurement=measurement,
        report_data=parsed.report_data,
        accepted=not reasons,
        reasons=tuple(reasons),
        warnings=tuple(warnings),
        verified_at=at,
        collateral_expires_at=collateral.expires_at,
        trust_root=root.name,
        ppid=bytes(verified.ppid),
    )


def verify_quote(
    quote: bytes,
    collateral: Collateral,
    *,
    policy: Policy,
    root: TrustRoot | None = None,
    expected_report_data: bytes | None = None,
    nonce_issued_at: int | None = None,
) -> AttestationReport:
    """``verify_quote_at`` at the current wall-clock time, Intel's root by default."""
    return verify_quote_at(
        quote,
        collateral,
        at=int(time.time()),
        policy=policy,
        root=root if root is not None else TrustRoot.intel(),
        expected_report_data=expected_report_data,
        nonce_issued_at=nonce_issued_at,
    )


def _dcap_verify(quote: bytes, collateral: Collateral, root: TrustRoot, at: int) -> Any:
    try:
        if root.is_dev:
            return dcap_qvl.verify_with_root_ca(quote, collateral._for_dcap(), root.der, at)
        return dcap_qvl.verify(quote, collateral._for_dcap(), at)
    except (ValueError, RuntimeError, OverflowError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "expired" in detail or "in the future" in detail:
            raise CollateralExpired(f"dcap-qvl: {detail}") from exc
        raise QuoteUnverified(f"dcap-qvl: {detail}") from exc


def _policy_reasons(
    parsed: ParsedQuote,
    measurement: Measurement,
    *,
    status: str,
    advisories: tuple[str, ...],
    level: int,
    policy: Policy,
    at: int,
    expected_report_data: bytes | None,
    nonce_issued_at: int | None,
) -> list[str]:
    reasons: list[str] = []
    if level > policy.max_confidence_level:
        reasons.append(
            f"confidence_too_low: TCB status {status} gives confidence level {level}, "
            f"the policy allows at most {policy.max_confidence_level}"
        )
    refused = sorted(set(advisories) & policy.rejected_advisories)
    if refused:
        reasons.append(f"advisory_rejected: {', '.join(refused)}")
    if (
        policy.allowed_measurements is not None
        and measurement.id not in policy.allowed_measurements
    ):
        reasons.append(f"measurement_not_allowed: {measurement.id.hex()} is not in the allowlist")
    if parsed.tee is TEEKind.TDX:
        if policy.allowed_rtmr3 is not None and parsed.rtmr3 not in policy.allowed_rtmr3:
            reasons.append("rtmr3_not_allowed: RTMR3 is not in the allowlist")
        debug = bool(parsed.td_attributes[0] & TDX_DEBUG_BIT)
    else:
        if parsed.isv_svn < policy.min_isv_svn:
            reasons.append(
                f"isv_svn_too_low: ISV SVN {parsed.isv_svn} is below {policy.min_isv_svn}"
            )
        debug = bool(parsed.attributes[0] & SGX_DEBUG_BIT)
    if debug and not policy.allow_debug:
        reasons.append("debug_enclave: the TD or enclave runs in debug mode")
    if expected_report_data is not None:
        if len(expected_report_data) != REPORT_DATA_LENGTH:
            raise ValueError("expected_report_data is 64 bytes")
        if not hmac.compare_digest(expected_report_data, parsed.report_data):
            reasons.append("report_data_mismatch: the quote does not bind the expected data")
    elif policy.require_report_data:
        reasons.append("report_data_unchecked: the policy requires a report_data binding")
    if nonce_issued_at is not None:
        age = at - nonce_issued_at
        if age < 0:
            reasons.append("nonce_from_future: the nonce was issued after the verification time")
        elif age > policy.max_nonce_age_s:
            reasons.append(
                f"nonce_stale: the nonce is {age} s old, the policy allows "
                f"{policy.max_nonce_age_s} s"
            )
    return reasons


class ReplayGuard:
    """Remembers accepted quotes by ``report_data`` so each counts once.

    Keys on ``AttestationReport.dedup_key`` (TEE kind and report_data), never on raw quote
    bytes. Bounded: the oldest entries are forgotten after ``capacity``.
    """

    __slots__ = ("_capacity", "_seen")

    def __init__(self, capacity: int = 100_000) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self._capacity = capacity
        self._seen: OrderedDict[bytes, None] = OrderedDict()

    def is_new(self, report: AttestationReport) -> bool:
        return report.dedup_key not in self._seen

    def record(self, report: AttestationReport) -> None:
        """Record ``report``; raises ``QuoteReplayed`` if its report_data was seen."""
        key = report.dedup_key
        if key in self._seen:
            raise QuoteReplayed("a quote with this report_data was already accepted")
        self._seen[key] = None
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)

    def __len__(self) -> int:
        return len(self._seen)
