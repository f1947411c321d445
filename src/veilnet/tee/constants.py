"""Fixed values of the TEE backends: dev PKI validity, quote layout constants, device paths.
The dev PKI mirrors Intel's DCAP PKI shape so dev quotes pass the same dcap-qvl checks."""

from datetime import UTC, datetime
from typing import Final

REPORT_DATA_LENGTH: Final = 64
MIN_NETWORK_SEED_LENGTH: Final = 32

DEV_COLLATERAL_VALIDITY_S: Final = 30 * 24 * 3600
"""Default validity of dev collateral (TCB info, QE identity, CRLs) from its issue time."""
DEV_CERT_NOT_BEFORE: Final = datetime(2020, 1, 1, tzinfo=UTC)
DEV_CERT_NOT_AFTER: Final = datetime(2100, 1, 1, tzinfo=UTC)
DEV_ORGANIZATION: Final = "Veilnet Dev TEE PKI (INSECURE)"

DEV_QE_MRSIGNER: Final = bytes([0x44]) * 32
DEV_QE_ISV_PROD_ID: Final = 1
DEV_QE_ISV_SVN: Final = 1
DEV_QE_SVN: Final = 1
DEV_TD_ATTRIBUTES: Final = bytes.fromhex("0000001000000000")
"""SEPT_VE_DISABLE set, debug clear (dcap-qvl refuses TDs without SEPT_VE_DISABLE)."""
DEV_SGX_ATTRIBUTES: Final = bytes.fromhex("0500000000000000e700000000000000")
"""INIT and MODE64BIT, debug clear; XFRM x87/SSE/AVX/AVX-512."""

SGX_EXTENSION_OID: Final = "1.2.840.113741.1.13.1"

GRAMINE_ATTESTATION_DIR: Final = "/dev/attestation"
DSTACK_SOCKET_PATHS: Final = ("/var/run/dstack.sock", "/var/run/dstack/dstack.sock")
DSTACK_TIMEOUT_S: Final = 10.0
MAX_SEALED_SIZE: Final = 64 * 1024 * 1024
