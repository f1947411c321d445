"""Errors of ``veilnet.attestation``; dcap-qvl's exceptions never cross this package line.

InvalidInput
├── QuoteMalformed           bytes are not a DCAP quote (truncated, bad lengths, bad header)
├── QuoteTooLarge            the quote or collateral exceeds the size limits
├── UnsupportedTEE           TEE type or quote version this build does not verify
├── CollateralInvalid        collateral JSON missing fields or unparseable
├── QuoteUnverified          dcap-qvl rejected the signature chain, TCB match or QE identity
├── WrongTrustRoot           the collateral or quote chains to a different root CA
├── EventLogInvalid          a dstack event log is malformed or does not replay to the RTMRs
└── PolicyInvalid            a policy document has unknown keys or bad values
PolicyRejected
├── CollateralExpired        verification time outside the collateral validity window
├── DevRootRefused           a development root was offered to a production verifier
├── InsecureDevTEENotAllowed the dev root was requested without allow_insecure_dev_tee
├── AttestationRejected      the quote verified but the policy refused it (``reasons``)
└── QuoteReplayed            a quote with the same report_data was already accepted
Unavailable
└── CollateralUnavailable    a PCCS-compatible service gave no usable collateral for a quote
"""

from veilnet.errors import InvalidInput, PolicyRejected, Unavailable

__all__ = [
    "AttestationRejected",
    "CollateralExpired",
    "CollateralInvalid",
    "CollateralUnavailable",
    "DevRootRefused",
    "EventLogInvalid",
    "InsecureDevTEENotAllowed",
    "PolicyInvalid",
    "QuoteMalformed",
    "QuoteReplayed",
    "QuoteTooLarge",
    "QuoteUnverified",
    "UnsupportedTEE",
    "WrongTrustRoot",
]


class QuoteMalformed(InvalidInput):
    """The bytes are not a well-formed DCAP quote."""

    code = "attestation_quote_malformed"


class QuoteTooLarge(InvalidInput):
    """The quote or collateral is larger than this verifier accepts."""

    code = "attestation_input_too_large"
    http_status = 413


class UnsupportedTEE(InvalidInput):
    """The quote names a TEE type or quote version this build does not verify."""

    code = "attestation_unsupported_tee"


class CollateralInvalid(InvalidInput):
    """The collateral is missing fields or cannot be parsed."""

    code = "attestation_collateral_invalid"


class QuoteUnverified(InvalidInput):
    """dcap-qvl could not verify the quote against the collateral and trust root."""

    code = "attestation_quote_unverified"


class WrongTrustRoot(InvalidInput):
    """The quote or its collateral chains to a root CA other than the configured one."""

    code = "attestation_wrong_root"


class EventLogInvalid(InvalidInput):
    """The event log is malformed or does not replay to the quoted RTMR values."""

    code = "attestation_event_log_invalid"


class PolicyInvalid(InvalidInput):
    """The policy document has unknown keys or bad values."""

    code = "attestation_policy_invalid"


class CollateralExpired(PolicyRejected):
    """The verification time lies outside the collateral's validity window."""

    code = "attestation_collateral_expired"


class DevRootRefused(PolicyRejected):
    """A production policy refuses the development attestation root."""

    code = "attestation_dev_root_refused"


class InsecureDevTEENotAllowed(PolicyRejected):
    """The development TEE root needs allow_insecure_dev_tee=True (--insecure-dev-tee)."""

    code = "attestation_insecure_dev_tee_required"


class AttestationRejected(PolicyRejected):
    """The quote verified, but the attestation policy refused it."""

    code = "attestation_rejected"


class QuoteReplayed(PolicyRejected):
    """A quote with the same report_data was already accepted."""

    code = "attestation_quote_replayed"
    http_status = 409


class CollateralUnavailable(Unavailable):
    """A PCCS-compatible service could not be reached or gave no usable collateral."""

    code = "attestation_collateral_unavailable"
