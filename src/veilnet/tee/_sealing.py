"""Sealing shared by the backends: AEAD under a key only this enclave (measurement) derives.
Failures become ``UnsealFailed``; the crypto layer's errors do not leak out of ``veilnet.tee``."""

from __future__ import annotations

from veilnet.crypto import EnvelopeInvalid, SymmetricKey, UnsupportedVersion
from veilnet.tee.constants import MAX_SEALED_SIZE
from veilnet.tee.errors import UnsealFailed

__all__ = ["seal_with", "unseal_with"]


def seal_with(key: SymmetricKey, data: bytes, aad: bytes) -> bytes:
    if len(data) > MAX_SEALED_SIZE:
        raise ValueError("data is too large to seal")
    return key.seal(data, aad=b"veil/v1 tee-seal:" + aad)


def unseal_with(key: SymmetricKey, blob: bytes, aad: bytes) -> bytes:
    if not isinstance(blob, bytes) or len(blob) > MAX_SEALED_SIZE + 64:
        raise UnsealFailed()
    try:
        return key.open(blob, aad=b"veil/v1 tee-seal:" + aad)
    except (EnvelopeInvalid, UnsupportedVersion) as exc:
        raise UnsealFailed() from exc
