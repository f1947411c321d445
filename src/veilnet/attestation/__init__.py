"""Offline verification of Intel TDX and SGX DCAP quotes with dcap-qvl, plus Veilnet's policy.
Entry point: ``verify_quote_at(quote, collateral, at=, policy=, root=TrustRoot.intel())``."""

from veilnet.attestation._collateral import Collateral
from veilnet.attestation._inputs import read_quote
from veilnet.attestation._measurement import Measurement, measurement_id
from veilnet.attestation._policy import Policy, confidence_level
from veilnet.attestation._quote import ParsedQuote, TEEKind, parse_quote
from veilnet.attestation._roots import INTEL_SGX_ROOT_CA_DER, DevAttestationRoot, TrustRoot
from veilnet.attestation._verify import (
    AttestationReport,
    ReplayGuard,
    verify_quote,
    verify_quote_at,
)
from veilnet.attestation.errors import (
    AttestationRejected,
    CollateralExpired,
    CollateralInvalid,
    DevRootRefused,
    EventLogInvalid,
    InsecureDevTEENotAllowed,
    PolicyInvalid,
    QuoteMalformed,
    QuoteReplayed,
    QuoteTooLarge,
    QuoteUnverified,
    UnsupportedTEE,
    WrongTrustRoot,
)
from veilnet.attestation.eventlog import (
    EventLogEntry,
    ReplayedEventLog,
    parse_event_log,
    replay_rtmrs,
    verify_event_log,
)

__all__ = [
    "INTEL_SGX_ROOT_CA_DER",
    "AttestationRejected",
    "AttestationReport",
    "Collateral",
    "CollateralExpired",
    "CollateralInvalid",
    "DevAttestationRoot",
    "DevRootRefused",
    "EventLogEntry",
    "EventLogInvalid",
    "InsecureDevTEENotAllowed",
    "Measurement",
    "ParsedQuote",
    "Policy",
    "PolicyInvalid",
    "QuoteMalformed",
    "QuoteReplayed",
    "QuoteTooLarge",
    "QuoteUnverified",
    "ReplayGuard",
    "ReplayedEventLog",
    "TEEKind",
    "TrustRoot",
    "UnsupportedTEE",
    "WrongTrustRoot",
    "confidence_level",
    "measurement_id",
    "parse_event_log",
    "parse_quote",
    "read_quote",
    "replay_rtmrs",
    "verify_event_log",
    "verify_quote",
    "verify_quote_at",
]
