"""Errors of ``veilnet.crypto``; decryption failures share one opaque error on purpose.

InvalidInput
├── EnvelopeInvalid       any HPKE envelope or sealed value that does not open (opaque)
├── UnsupportedVersion    a version byte or suite id this build does not know
├── SignatureInvalid      malformed signature, or it does not recover to the expected signer
└── KeyInvalid            malformed public key, seed or address bytes
"""

from veilnet.errors import InvalidInput


class EnvelopeInvalid(InvalidInput):
    """The envelope could not be opened (wrong key, binding, tampered or truncated)."""

    code = "envelope_invalid"


class UnsupportedVersion(InvalidInput):
    """The data names a format version or cipher suite this build does not support."""

    code = "unsupported_version"


class SignatureInvalid(InvalidInput):
    """The signature is malformed or was not made by the expected signer."""

    code = "signature_invalid"
    http_status = 401


class KeyInvalid(InvalidInput):
    """Key or address bytes are malformed."""

    code = "key_invalid"
