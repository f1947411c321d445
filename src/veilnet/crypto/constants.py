"""Fixed parameters of Veilnet's cryptography, named once.
Changing any of them is a wire-format change and needs a new version tag."""

from typing import Final

VERSION_TAG: Final = b"veil/v1"
"""First segment of every KDF path and HPKE info; bump to break compatibility on purpose."""

KDF_SALT: Final = b"veilnet key derivation salt, version 1"
"""Fixed HKDF salt (RFC 5869 §3.1: a constant non-secret salt still strengthens extraction)."""

SEED_LENGTH: Final = 32
SYMMETRIC_KEY_LENGTH: Final = 32
AEAD_NONCE_LENGTH: Final = 12
AEAD_TAG_LENGTH: Final = 16
SIGNATURE_LENGTH: Final = 65
ADDRESS_LENGTH: Final = 20

ENVELOPE_VERSION: Final = 1
SEALED_VALUE_VERSION: Final = 1
MAX_ENVELOPE_SIZE: Final = 4 * 1024 * 1024
"""Largest HPKE envelope any recipe opens (commands and queries are far smaller)."""

SECP256K1_N: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SECP256K1_HALF_N: Final = SECP256K1_N // 2

EIP712_DOMAIN_NAME: Final = "Veilnet"
EIP712_DOMAIN_VERSION: Final = "1"
