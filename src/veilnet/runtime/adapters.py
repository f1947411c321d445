"""Adapters from the attestation and TEE libraries to the core's Platform and QuoteVerifier.
The core sees bytes (measurement ids, collateral JSON); these turn library objects into them."""

from __future__ import annotations

from typing import Any

from veilnet.attestation import Collateral, Policy, TrustRoot, verify_quote_at
from veilnet.errors import VeilnetError
from veilnet.runtime.interfaces import Verdict
from veilnet.tee import Enclave


class TEEPlatform:
    """A ``veilnet.tee`` Enclave seen as the core's Platform."""

    def __init__(self, enclave: Enclave, *, collateral_at: int | None = None) -> None:
        self._enclave = enclave
        self.collateral_at = collateral_at
        """The issue time asked of a development enclave's collateral (None: its own)."""
        self._collateral: bytes | None = None

    @property
    def kind(self) -> str:
        return str(getattr(self._enclave.kind, "value", self._enclave.kind))

    @property
    def measurement(self) -> bytes:
        return self._enclave.measurement.id

    def random_bytes(self, n: int) -> bytes:
        return self._enclave.random_bytes(n)

    def quote(self, report_data: bytes) -> bytes:
        return self._enclave.quote(report_data)

    def collateral(self) -> bytes:
        """The same bytes every time until ``renew_collateral`` (their hash is on chain)."""
        if self._collateral is None:
            getter: Any = self._enclave.collateral
            found = getter(issued_at=self.collateral_at) if self.collateral_at else getter()
            self._collateral = found.to_json() if isinstance(found, Collateral) else bytes(found)
        return self._collateral

    def renew_collateral(self) -> None:
        self._collateral = None

    def seal(self, data: bytes, aad: bytes) -> bytes:
        return self._enclave.seal(data, aad)

    def unseal(self, blob: bytes, aad: bytes) -> bytes:
        return self._enclave.unseal(blob, aad)


class PolicyVerifier:
    """The gatekeeper's quote check: dcap-qvl plus the network policy, at the block's time."""

    def __init__(self, *, policy: Policy, root: TrustRoot) -> None:
        self._policy = policy
        self._root = root

    def __call__(self, *, quote: bytes, collateral: bytes, at: int, report_data: bytes) -> Verdict:
        try:
            report = verify_quote_at(
                quote,
                Collateral.from_json(collateral),
                at=at,
                policy=self._policy,
                root=self._root,
                expected_report_data=report_data,
            )
        except VeilnetError as exc:
            return Verdict(accepted=False, confidence=5, measurement=b"", reasons=(exc.code,))
        return Verdict(
            accepted=report.accepted,
            confidence=report.confidence_level,
            measurement=report.measurement_id,
            reasons=tuple(report.reasons),
            valid_until=report.collateral_expires_at,
        )
