"""HPKE envelopes: encrypt to a public key, bound to chain, target and key epoch.
The clear header (version, suite, epoch) lets a receiver pick its key; all of it is bound."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from veilnet.crypto._hazmat import hpke as raw_hpke
from veilnet.crypto._hazmat import kdf
from veilnet.crypto._hazmat.hpke import Suite
from veilnet.crypto.constants import ENVELOPE_VERSION, MAX_ENVELOPE_SIZE
from veilnet.crypto.errors import EnvelopeInvalid, UnsupportedVersion
from veilnet.crypto.keys import PublicKeys, SecretKey

__all__ = [
    "Binding",
    "EnvelopeHeader",
    "open_envelope",
    "open_key_envelope",
    "peek_envelope",
    "seal_for",
    "seal_key_for",
    "suite_for_public_key",
]

_HEADER = struct.Struct(">BBI")


@dataclass(frozen=True, slots=True, kw_only=True)
class Binding:
    """What an envelope is for; any mismatch on opening is an EnvelopeInvalid.

    Attributes:
        chain_id: EVM chain id of the network.
        target: id of the recipient (contract id, worker address, cluster id), as bytes.
        epoch: key epoch of the recipient key.
        purpose: short label separating uses ("command", "query", "cluster-key", ...).
    """

    chain_id: int
    target: bytes
    epoch: int
    purpose: str

    def __post_init__(self) -> None:
        if not 0 <= self.chain_id < 2**64:
            raise ValueError("chain_id out of range")
        if not 0 <= self.epoch < 2**32:
            raise ValueError("epoch out of range")
        if not isinstance(self.target, bytes):
            raise TypeError("target must be bytes")

    def info(self, suite: Suite) -> bytes:
        return kdf.encode_path(
            ["hpke", int(suite), self.purpose, self.chain_id, self.target, self.epoch]
        )


@dataclass(frozen=True, slots=True)
class EnvelopeHeader:
    """The clear header of an envelope: which suite and which key epoch to open it with."""

    suite: Suite
    epoch: int


def seal_for(
    recipient: PublicKeys | bytes,
    plaintext: bytes,
    *,
    binding: Binding,
    suite: Suite | None = None,
) -> bytes:
    """Encrypt ``plaintext`` to ``recipient`` (its PublicKeys, or raw HPKE public bytes).

    Without ``suite``: X25519 for PublicKeys; for raw bytes, the suite of the key (a 1,216-byte
    key is a post-quantum hybrid one, so what is sealed to a hybrid cluster stays hybrid).

    Returns ``version(1) || suite(1) || epoch(4) || enc || ciphertext``.
    """
    if isinstance(recipient, PublicKeys):
        suite = Suite.X25519_SHA256_AES256GCM if suite is None else suite
        public = recipient.hpke_key(suite)
    else:
        suite = suite_for_public_key(recipient) if suite is None else suite
        public = raw_hpke.load_public(suite, recipient)
    header = _HEADER.pack(ENVELOPE_VERSION, int(suite), binding.epoch)
    return header + raw_hpke.seal(suite, public, plaintext, binding.info(suite))


def peek_envelope(envelope: bytes, *, max_size: int = MAX_ENVELOPE_SIZE) -> EnvelopeHeader:
    """Read the clear header without decrypting.

    Raises:
        EnvelopeInvalid: truncated or oversized.
        UnsupportedVersion: unknown version byte or suite id.
    """
    if not isinstance(envelope, bytes | bytearray):
        raise TypeError("envelope must be bytes")
    if len(envelope) > max_size:
        raise EnvelopeInvalid("envelope is larger than allowed", max_size=max_size)
    if len(envelope) < _HEADER.size:
        raise EnvelopeInvalid()
    version, suite_id, epoch = _HEADER.unpack_from(envelope)
    if version != ENVELOPE_VERSION:
        raise UnsupportedVersion(f"envelope version {version} is not supported")
    try:
        suite = Suite(suite_id)
    except ValueError as exc:
        raise UnsupportedVersion(f"HPKE suite {suite_id} is not supported") from exc
    if len(envelope) < _HEADER.size + raw_hpke.ENC_LENGTH[suite] + 16:
        raise EnvelopeInvalid()
    return EnvelopeHeader(suite=suite, epoch=epoch)


def open_envelope(
    key: SecretKey,
    envelope: bytes,
    *,
    binding: Binding,
    max_size: int = MAX_ENVELOPE_SIZE,
) -> bytes:
    """Decrypt an envelope made by ``seal_for`` with the same binding.

    Raises:
        EnvelopeInvalid: wrong key, wrong binding (chain, target, epoch, purpose), tampered
            or truncated bytes: one opaque error for all of them.
        UnsupportedVersion: unknown version byte or suite id.
    """
    header = peek_envelope(envelope, max_size=max_size)
    if header.epoch != binding.epoch:
        raise EnvelopeInvalid()
    private = key._hpke_private(header.suite)
    return raw_hpke.open_(
        header.suite, private, bytes(envelope[_HEADER.size :]), binding.info(header.suite)
    )


def suite_for_public_key(raw: bytes) -> Suite:
    """The HPKE suite a raw public key belongs to, by its length (32 or 1216 bytes)."""
    if len(raw) == raw_hpke.X25519_PUBLIC_LENGTH:
        return Suite.X25519_SHA256_AES256GCM
    if len(raw) == raw_hpke.HYBRID_PUBLIC_LENGTH:
        return Suite.MLKEM768_X25519_SHA256_AES256GCM
    raise EnvelopeInvalid("public key length matches no HPKE suite")


def seal_key_for(recipient: PublicKeys | bytes, key: SecretKey, *, binding: Binding) -> bytes:
    """Wrap a secret key for ``recipient`` (suite chosen by the recipient key's type).

    The seed is encrypted inside this module only; callers never see it.
    """
    if isinstance(recipient, PublicKeys):
        return seal_for(recipient, key._seed_bytes(), binding=binding)
    suite = suite_for_public_key(recipient)
    return seal_for(recipient, key._seed_bytes(), binding=binding, suite=suite)


def open_key_envelope(key: SecretKey, envelope: bytes, *, binding: Binding) -> SecretKey:
    """Unwrap a key made by ``seal_key_for``; raises EnvelopeInvalid on any mismatch."""
    seed = open_envelope(key, envelope, binding=binding)
    if len(seed) != 32:
        raise EnvelopeInvalid()
    return SecretKey._from_seed(seed)
