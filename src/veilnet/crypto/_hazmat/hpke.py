"""Raw HPKE (RFC 9180, single-shot base mode) for Veilnet's two suites, via ``cryptography``.
Key pairs are derived deterministically from a seed, so one identity seed yields every key."""

from __future__ import annotations

import enum

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from veilnet.crypto.errors import EnvelopeInvalid, KeyInvalid

X25519_PUBLIC_LENGTH = 32
MLKEM768_PUBLIC_LENGTH = 1184
HYBRID_PUBLIC_LENGTH = MLKEM768_PUBLIC_LENGTH + X25519_PUBLIC_LENGTH


class Suite(enum.IntEnum):
    """HPKE suites Veilnet offers; the value is the suite byte on the wire."""

    X25519_SHA256_AES256GCM = 1
    """DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-256-GCM: the default."""
    MLKEM768_X25519_SHA256_AES256GCM = 2
    """Post-quantum hybrid KEM MLKEM768-X25519 / HKDF-SHA256 / AES-256-GCM."""


_SUITES = {
    Suite.X25519_SHA256_AES256GCM: hpke.Suite(
        hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM
    ),
    Suite.MLKEM768_X25519_SHA256_AES256GCM: hpke.Suite(
        hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM
    ),
}

ENC_LENGTH = {
    Suite.X25519_SHA256_AES256GCM: hpke.KEM.X25519.enc_length(),
    Suite.MLKEM768_X25519_SHA256_AES256GCM: hpke.KEM.MLKEM768_X25519.enc_length(),
}

PublicKey = x25519.X25519PublicKey | hpke.MLKEM768X25519PublicKey
PrivateKey = x25519.X25519PrivateKey | hpke.MLKEM768X25519PrivateKey


def private_key(suite: Suite, x25519_seed: bytes, mlkem_seed: bytes) -> PrivateKey:
    """The suite's private key from a 32-byte X25519 seed and a 64-byte ML-KEM seed."""
    x_key = x25519.X25519PrivateKey.from_private_bytes(x25519_seed)
    if suite is Suite.X25519_SHA256_AES256GCM:
        return x_key
    return hpke.MLKEM768X25519PrivateKey(
        mlkem.MLKEM768PrivateKey.from_seed_bytes(mlkem_seed), x_key
    )


def public_bytes(suite: Suite, x25519_seed: bytes, mlkem_seed: bytes) -> bytes:
    """Raw public key bytes: 32 for X25519; ML-KEM (1184) followed by X25519 (32) for hybrid."""
    x_pub = x25519.X25519PrivateKey.from_private_bytes(x25519_seed).public_key().public_bytes_raw()
    if suite is Suite.X25519_SHA256_AES256GCM:
        return x_pub
    m_pub = mlkem.MLKEM768PrivateKey.from_seed_bytes(mlkem_seed).public_key().public_bytes_raw()
    return m_pub + x_pub


def load_public(suite: Suite, raw: bytes) -> PublicKey:
    """Parse raw public key bytes for a suite; raises KeyInvalid on malformed bytes."""
    try:
        if suite is Suite.X25519_SHA256_AES256GCM:
            if len(raw) != X25519_PUBLIC_LENGTH:
                raise ValueError("length")
            return x25519.X25519PublicKey.from_public_bytes(raw)
        if len(raw) != HYBRID_PUBLIC_LENGTH:
            raise ValueError("length")
        return hpke.MLKEM768X25519PublicKey(
            mlkem.MLKEM768PublicKey.from_public_bytes(raw[:MLKEM768_PUBLIC_LENGTH]),
            x25519.X25519PublicKey.from_public_bytes(raw[MLKEM768_PUBLIC_LENGTH:]),
        )
    except ValueError as exc:
        raise KeyInvalid(f"malformed public key for HPKE suite {suite.name}") from exc


def seal(suite: Suite, public: PublicKey, plaintext: bytes, info: bytes) -> bytes:
    """Single-shot HPKE base-mode encryption: ``enc || ciphertext``."""
    return _SUITES[suite].encrypt(plaintext, public, info=info)


def open_(suite: Suite, private: PrivateKey, sealed: bytes, info: bytes) -> bytes:
    """Single-shot HPKE decryption; every failure becomes one opaque EnvelopeInvalid."""
    try:
        return _SUITES[suite].decrypt(sealed, private, info=info)
    except (InvalidTag, ValueError) as exc:
        raise EnvelopeInvalid() from exc
