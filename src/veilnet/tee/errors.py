"""Errors of ``veilnet.tee``; backend library errors (httpx, dstack-sdk, OS) never cross it.

InvalidInput
├── UnsealFailed            a sealed blob does not open (wrong enclave, AAD or tampered)
└── TEEResponseInvalid      the TEE answered with a malformed or mismatching quote
PolicyRejected
└── DevTEENotAllowed        the dev TEE was requested without allow_insecure_dev_tee
Unavailable
├── TEEUnavailable          the guest agent or /dev/attestation cannot be reached
└── CollateralUnavailable   the backend cannot provide collateral offline
"""

from veilnet.errors import InvalidInput, PolicyRejected, Unavailable

__all__ = [
    "CollateralUnavailable",
    "DevTEENotAllowed",
    "TEEResponseInvalid",
    "TEEUnavailable",
    "UnsealFailed",
]


class UnsealFailed(InvalidInput):
    """The sealed blob could not be opened by this enclave."""

    code = "tee_unseal_failed"


class TEEResponseInvalid(InvalidInput):
    """The TEE returned a malformed quote or one that does not bind the requested data."""

    code = "tee_response_invalid"
    http_status = 502


class DevTEENotAllowed(PolicyRejected):
    """The development TEE needs allow_insecure_dev_tee=True (--insecure-dev-tee)."""

    code = "tee_dev_not_allowed"


class TEEUnavailable(Unavailable):
    """The TEE interface (dstack guest agent, /dev/attestation) is not reachable."""

    code = "tee_unavailable"


class CollateralUnavailable(Unavailable):
    """This backend has no offline collateral; fetch it from a PCCS."""

    code = "tee_collateral_unavailable"
