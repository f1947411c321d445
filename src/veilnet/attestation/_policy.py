"""Attestation policy: what a verified quote must also satisfy to be accepted.
Confidence levels map dcap-qvl's TCB status and advisories to 1 (best) … 5 (worst)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from veilnet.attestation.constants import (
    BENIGN_ADVISORIES,
    DEFAULT_COLLATERAL_WARNING_S,
    DEFAULT_MAX_CONFIDENCE_LEVEL,
    DEFAULT_MAX_NONCE_AGE_S,
)
from veilnet.attestation.errors import PolicyInvalid

__all__ = ["Policy", "confidence_level"]

_LEVEL_BY_STATUS = {
    "UpToDate": 1,
    "SWHardeningNeeded": 2,
    "ConfigurationNeeded": 3,
    "ConfigurationAndSWHardeningNeeded": 3,
    "OutOfDate": 4,
    "OutOfDateConfigurationNeeded": 4,
}


def confidence_level(status: str, advisory_ids: tuple[str, ...] | list[str]) -> int:
    """Map a TCB status and advisories to a confidence level, 1 (best) to 5 (worst).

    ====== =================================================================================
    level  meaning
    ====== =================================================================================
    1      ``UpToDate`` with no advisories
    2      ``SWHardeningNeeded``, or ``UpToDate`` whose advisories are all benign
    3      ``ConfigurationNeeded`` / ``ConfigurationAndSWHardeningNeeded``, advisories benign
    4      ``OutOfDate*``, or any status above carrying a non-benign advisory
    5      ``Revoked`` or a status this build does not know
    ====== =================================================================================

    "Benign" is ``constants.BENIGN_ADVISORIES``. Production accepts levels 1-3 by default.
    """
    level = _LEVEL_BY_STATUS.get(status, 5)
    if level == 5:
        return 5
    if any(advisory not in BENIGN_ADVISORIES for advisory in advisory_ids):
        return max(level, 4)
    if advisory_ids:
        return max(level, 2)
    return level


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """Rules applied after dcap-qvl has verified a quote.

    Attributes:
        production: refuse development trust roots (``DevRootRefused``).
        max_confidence_level: worst acceptable confidence level (1-5).
        rejected_advisories: advisory ids refused whatever the level.
        allowed_measurements: measurement ids (``measurement_id``) allowed; ``None`` skips the
            check (and the report warns), an empty set allows nothing.
        allowed_rtmr3: allowed RTMR3 values for TDX; ``None`` skips the check.
        min_isv_svn: smallest SGX ISV SVN accepted.
        allow_debug: accept debug TDs/enclaves (never in production).
        require_report_data: the caller must pass ``expected_report_data``.
        max_nonce_age_s: oldest acceptable nonce (when ``nonce_issued_at`` is passed).
        collateral_warning_s: warn when the collateral expires sooner than this.
    """

    production: bool = True
    max_confidence_level: int = DEFAULT_MAX_CONFIDENCE_LEVEL
    rejected_advisories: frozenset[str] = field(default_factory=frozenset)
    allowed_measurements: frozenset[bytes] | None = None
    allowed_rtmr3: frozenset[bytes] | None = None
    min_isv_svn: int = 0
    allow_debug: bool = False
    require_report_data: bool = False
    max_nonce_age_s: int = DEFAULT_MAX_NONCE_AGE_S
    collateral_warning_s: int = DEFAULT_COLLATERAL_WARNING_S

    def __post_init__(self) -> None:
        if not 1 <= self.max_confidence_level <= 5:
            raise ValueError("max_confidence_level is 1..5")
        if self.production and self.allow_debug:
            raise ValueError("a production policy cannot allow debug enclaves")
        if self.max_nonce_age_s < 0 or self.collateral_warning_s < 0 or self.min_isv_svn < 0:
            raise ValueError("ages and SVNs are non-negative")
        for value in self.allowed_measurements or ():
            if len(value) != 32:
                raise ValueError("measurement ids are 32 bytes")

    @classmethod
    def development(cls, **overrides: Any) -> Policy:
        """A policy for devnets: dev roots allowed, everything else as strict as production."""
        return cls(production=False, **overrides)

    @classmethod
    def from_json(cls, data: bytes | str) -> Policy:
        """From a JSON object using the attribute names (bytes as hex strings).

        Raises:
            PolicyInvalid: not JSON, unknown keys or bad values.
        """
        try:
            document = json.loads(data)
        except ValueError as exc:
            raise PolicyInvalid("policy file is not JSON") from exc
        if not isinstance(document, dict):
            raise PolicyInvalid("policy file must be a JSON object")
        known = set(cls.__dataclass_fields__)
        unknown = set(document) - known
        if unknown:
            raise PolicyInvalid(f"unknown policy keys: {', '.join(sorted(unknown))}")
        kwargs: dict[str, Any] = dict(document)
        try:
            for key in ("allowed_measurements", "allowed_rtmr3"):
                if kwargs.get(key) is not None:
                    kwargs[key] = frozenset(bytes.fromhex(_unhex(v)) for v in kwargs[key])
            if "rejected_advisories" in kwargs:
                kwargs["rejected_advisories"] = frozenset(kwargs["rejected_advisories"])
            return cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise PolicyInvalid(f"bad policy value: {exc}") from exc

    def to_json(self) -> dict[str, Any]:
        return {
            "production": self.production,
            "max_confidence_level": self.max_confidence_level,
            "rejected_advisories": sorted(self.rejected_advisories),
            "allowed_measurements": None
            if self.allowed_measurements is None
            else sorted(v.hex() for v in self.allowed_measurements),
            "allowed_rtmr3": None
            if self.allowed_rtmr3 is None
            else sorted(v.hex() for v in self.allowed_rtmr3),
            "min_isv_svn": self.min_isv_svn,
            "allow_debug": self.allow_debug,
            "require_report_data": self.require_report_data,
            "max_nonce_age_s": self.max_nonce_age_s,
            "collateral_warning_s": self.collateral_warning_s,
        }


def _unhex(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a hex string")
    return value[2:] if value.startswith(("0x", "0X")) else value
