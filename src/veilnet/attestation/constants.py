"""Limits and fixed layout values of DCAP quote verification, named once.
Offsets follow Intel's SGX/TDX DCAP quote formats (v3 SGX, v4/v5 TDX) as dcap-qvl parses them."""

from typing import Final

MAX_QUOTE_SIZE: Final = 64 * 1024
"""Largest quote accepted (real quotes are 4-8 KiB, zero padding included)."""
MAX_COLLATERAL_SIZE: Final = 512 * 1024
"""Largest collateral JSON document accepted."""
MAX_EVENT_LOG_SIZE: Final = 4 * 1024 * 1024
MAX_EVENT_LOG_ENTRIES: Final = 4096

HEADER_SIZE: Final = 48
SGX_REPORT_SIZE: Final = 384
TD_REPORT10_SIZE: Final = 584
TD_REPORT15_SIZE: Final = 648
V5_BODY_DESCRIPTOR_SIZE: Final = 6
SIGNATURE_LENGTH_SIZE: Final = 4
ECDSA_SIGNATURE_SIZE: Final = 64
ATTESTATION_KEY_SIZE: Final = 64
REPORT_DATA_LENGTH: Final = 64
MR_TDX_LENGTH: Final = 48
MR_SGX_LENGTH: Final = 32

TEE_TYPE_SGX: Final = 0x00000000
TEE_TYPE_TDX: Final = 0x00000081
ATTESTATION_KEY_ECDSA_P256: Final = 2
INTEL_QE_VENDOR_ID: Final = bytes.fromhex("939a7233f79c4ca9940a0db3957f0607")

SUPPORTED_VERSIONS: Final = {TEE_TYPE_SGX: (3,), TEE_TYPE_TDX: (4, 5)}
"""Quote versions this build verifies, per TEE type (issue 3: SGX v3, TDX v4 and v5)."""

V5_BODY_TD10: Final = 2
V5_BODY_TD15: Final = 3

TDX_DEBUG_BIT: Final = 0x01
"""td_attributes[0] bit 0: the TD runs in debug mode (its memory is readable by the host)."""
SGX_DEBUG_BIT: Final = 0x02
"""attributes[0] bit 1: the enclave runs in debug mode."""

BENIGN_ADVISORIES: Final = frozenset(
    {
        "INTEL-SA-00219",
        "INTEL-SA-00289",
        "INTEL-SA-00334",
        "INTEL-SA-00614",
        "INTEL-SA-00615",
        "INTEL-SA-00617",
    }
)
"""Advisories whose mitigations are configuration choices that do not expose enclave secrets in
Veilnet's threat model (the list Phala's confidence levels also tolerate). Any other advisory
lowers the confidence to 4."""

DEFAULT_MAX_CONFIDENCE_LEVEL: Final = 3
DEFAULT_MAX_NONCE_AGE_S: Final = 600
DEFAULT_COLLATERAL_WARNING_S: Final = 3 * 24 * 3600
"""Reports warn (never reject) when the collateral expires within this window."""

MEASUREMENT_ID_TAG: Final = b"veil/v1/measurement"
