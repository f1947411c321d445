"""The production quote verifier for gateway attestations: ``veilnet.attestation`` (dcap-qvl)
under a trust root and policy, adapted to the gateway client's ``QuoteVerifier`` protocol."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from veilnet.attestation import Collateral, Policy, TrustRoot, verify_quote_at
from veilnet.errors import VeilnetError
from veilnet.inference.errors import InferenceAttestationInvalid, InferenceMeasurementNotAllowed

__all__ = ["DCAPQuoteVerifier", "VerifiedQuote"]


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifiedQuote:
    """A quote that dcap-qvl and the policy accepted (satisfies ``QuoteReport``).

    ``measurements`` holds the hex measurements plus ``measurement_id`` (the on-chain id).
    """

    tee: str
    report_data: bytes
    measurements: Mapping[str, str]


class DCAPQuoteVerifier:
    """Verifies TDX/SGX DCAP quotes with ``veilnet.attestation.verify_quote_at``.

    Args:
        root: ``TrustRoot.intel()`` in production; a ``DevAttestationRoot`` on a devnet.
        policy: TCB and measurement rules; a measurement refusal is reported as
            ``inference_measurement_not_allowed``, any other as ``inference_attestation_invalid``.
    """

    def __init__(self, *, root: TrustRoot, policy: Policy) -> None:
        self._root = root
        self._policy = policy

    def __call__(self, quote: bytes, collateral: Any, *, at: int) -> VerifiedQuote:
        try:
            report = verify_quote_at(
                quote, _collateral(collateral), at=at, policy=self._policy, root=self._root
            )
        except VeilnetError as exc:
            raise InferenceAttestationInvalid(
                "gateway quote does not verify", reason=exc.code
            ) from exc
        if not report.accepted:
            if any(r.startswith("measurement_not_allowed") for r in report.reasons):
                raise InferenceMeasurementNotAllowed(
                    "gateway measurements are not on the allowlist",
                    measurement_id=report.measurement.id.hex(),
                )
            raise InferenceAttestationInvalid(
                "gateway quote was rejected by policy", reasons=list(report.reasons)
            )
        measurements = {k: str(v) for k, v in report.measurement.to_json().items()}
        measurements["measurement_id"] = report.measurement.id.hex()
        return VerifiedQuote(
            tee=str(report.tee), report_data=report.report_data, measurements=measurements
        )


def _collateral(value: Any) -> Collateral:
    if isinstance(value, Collateral):
        return value
    if isinstance(value, Mapping):
        return Collateral.from_json(json.dumps(dict(value)))
    if isinstance(value, bytes | str):
        return Collateral.from_json(value)
    raise InferenceAttestationInvalid("gateway collateral is malformed")
