"""Raw secp256k1 operations (coincurve/libsecp256k1): deterministic RFC 6979 signing and recovery.
Signatures are 65 bytes ``r || s || v`` with v in {27, 28}, the form EVM ``ecrecover`` takes."""

from __future__ import annotations

import functools

import coincurve

from veilnet.crypto._hazmat.keccak import keccak
from veilnet.crypto.constants import SECP256K1_HALF_N, SECP256K1_N, SIGNATURE_LENGTH
from veilnet.crypto.errors import KeyInvalid, SignatureInvalid


def scalar_from_seed(material: bytes) -> bytes:
    """Map 32+ uniform bytes to a valid private scalar in [1, n-1] (bias is below 2^-127)."""
    value = int.from_bytes(material, "big") % (SECP256K1_N - 1) + 1
    return value.to_bytes(32, "big")


def public_key(private_scalar: bytes) -> bytes:
    """64-byte uncompressed public key (x || y) without the 0x04 prefix."""
    return coincurve.PrivateKey(private_scalar).public_key.format(compressed=False)[1:]


def address_of(public_key_64: bytes) -> bytes:
    """The 20-byte Ethereum address of a 64-byte public key."""
    if len(public_key_64) != 64:
        raise KeyInvalid("secp256k1 public key must be 64 bytes")
    return _address_of(bytes(public_key_64))


@functools.lru_cache(maxsize=1024)
def _address_of(public_key_64: bytes) -> bytes:
    # memoised: the same few signers (workers, wallets) are recovered over and over
    return keccak(public_key_64)[12:]


def signer(private_scalar: bytes) -> coincurve.PrivateKey:
    """A reusable signing handle for ``sign_digest`` (parsing the scalar once)."""
    return coincurve.PrivateKey(private_scalar)


def sign_digest(private: bytes | coincurve.PrivateKey, digest: bytes) -> bytes:
    """Deterministic (RFC 6979), low-s signature of a 32-byte digest as r || s || v(27/28)."""
    if len(digest) != 32:
        raise ValueError("digest must be 32 bytes")
    handle = private if isinstance(private, coincurve.PrivateKey) else signer(private)
    rsv = handle.sign_recoverable(digest, hasher=None)
    return rsv[:64] + bytes([rsv[64] + 27])


def recover_digest(digest: bytes, signature: bytes) -> bytes:
    """The 64-byte public key that made ``signature`` over ``digest``.

    Raises:
        SignatureInvalid: wrong length, v not 27/28, r or s out of range, high s, or no key.
    """
    if len(digest) != 32:
        raise ValueError("digest must be 32 bytes")
    if not isinstance(signature, bytes | bytearray) or len(signature) != SIGNATURE_LENGTH:
        raise SignatureInvalid("signature must be 65 bytes (r || s || v)")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    if v not in (27, 28):
        raise SignatureInvalid("signature recovery id must be 27 or 28")
    if not (0 < r < SECP256K1_N and 0 < s <= SECP256K1_HALF_N):
        raise SignatureInvalid("signature r or s out of range (high-s signatures are refused)")
    try:
        recovered = coincurve.PublicKey.from_signature_and_message(
            bytes(signature[:64]) + bytes([v - 27]), digest, hasher=None
        )
    except Exception as exc:  # libsecp256k1 reports every failure as a plain Exception
        raise SignatureInvalid("signature does not recover to any public key") from exc
    return recovered.format(compressed=False)[1:]


def validate_public_key(public_key_64: bytes) -> None:
    """Raise KeyInvalid unless the bytes are a point on secp256k1."""
    if len(public_key_64) != 64:
        raise KeyInvalid("secp256k1 public key must be 64 bytes")
    try:
        coincurve.PublicKey(b"\x04" + public_key_64)
    except Exception as exc:
        raise KeyInvalid("bytes are not a secp256k1 public key") from exc
