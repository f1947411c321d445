"""Deterministic AEAD for values at rest: AES-256-GCM-SIV with a synthetic nonce.
The nonce is a keyed hash of AAD and plaintext, so replicas need no entropy to seal state."""

from __future__ import annotations

import hmac
from hashlib import sha256

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV

from veilnet.crypto.constants import AEAD_NONCE_LENGTH
from veilnet.crypto.errors import EnvelopeInvalid


def synthetic_nonce(nonce_key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """HMAC-SHA256(nonce_key, len(aad) || aad || plaintext)[:12]."""
    mac = hmac.new(nonce_key, len(aad).to_bytes(8, "big") + aad + plaintext, sha256)
    return mac.digest()[:AEAD_NONCE_LENGTH]


def encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """AES-256-GCM-SIV encryption (misuse-resistant even if a nonce repeats)."""
    return Cipher(key).encrypt(nonce, plaintext, aad)


def decrypt(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    """AES-256-GCM-SIV decryption; any failure (a malformed key too) is one opaque
    EnvelopeInvalid."""
    try:
        cipher = Cipher(key)
    except ValueError as exc:
        raise EnvelopeInvalid() from exc
    return cipher.decrypt(nonce, ciphertext, aad)


class Cipher:
    """AES-256-GCM-SIV under one key, set up once for many values (a query session's)."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCMSIV(key)

    def encrypt(self, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        return self._aead.encrypt(nonce, plaintext, aad)

    def decrypt(self, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        """Any failure is one opaque EnvelopeInvalid."""
        try:
            return self._aead.decrypt(nonce, ciphertext, aad)
        except (InvalidTag, ValueError) as exc:
            raise EnvelopeInvalid() from exc

    def __repr__(self) -> str:
        return "Cipher(<redacted>)"
