"""Query sessions: what a client's certified query key and a contract key agree on, per epoch.
Requests and responses are sealed under the session's key of their direction, per request id."""

from __future__ import annotations

import struct
from typing import final

from cryptography.hazmat.primitives.asymmetric import x25519

from veilnet.crypto._hazmat import aead, kdf
from veilnet.crypto._hazmat import hpke as raw_hpke
from veilnet.crypto._hazmat.hpke import Suite
from veilnet.crypto.constants import AEAD_NONCE_LENGTH, AEAD_TAG_LENGTH, MAX_ENVELOPE_SIZE
from veilnet.crypto.envelope import Binding
from veilnet.crypto.errors import EnvelopeInvalid, KeyInvalid, UnsupportedVersion
from veilnet.crypto.keys import SecretKey, _Secret

__all__ = ["QuerySession"]

SESSION_ENVELOPE_VERSION = 0x52
"""First byte of a session-sealed value; differs from HPKE envelopes and sealed values. (0x51
sealed each request under a key of its own, derived per request id; refused since.)"""
SESSION_SECRET_LENGTH = 32
REQUEST_ID_LENGTH = 32
_DIRECTIONS = ("request", "response")
_HEADER = struct.Struct(">B")


@final
class QuerySession(_Secret):
    """What a client's query key and a contract key agree on, once per certificate and epoch.

    The root mixes X25519(own private, peer public) with a client-chosen ``secret`` that
    travels HPKE-sealed to the contract key (so a post-quantum hybrid contract key keeps query
    traffic safe from harvest-now-decrypt-later). Only the holder of the client's certified key
    (or of the contract key, inside a worker's TEE) can derive request and response keys, so a
    request also proves its sender holds the certified key.

    Each direction has one key for the whole session, derived once; a value is sealed under it
    with its request id as nonce (the first 12 bytes) and as associated data (all 32).
    AES-256-GCM-SIV derives fresh keys from every nonce and resists nonce reuse: request ids
    are random, and where one id is sealed twice (the same query asked of another worker) a
    repeat shows only whether the two values were equal (``docs/protocol.md`` §11).
    """

    __slots__ = ("_ciphers",)
    _ciphers: dict[str, aead.Cipher]

    def __init__(self, *, _token: object = None) -> None:
        if _token is not _CONSTRUCT:
            raise TypeError("use QuerySession.agree()")

    @classmethod
    def agree(
        cls, own: SecretKey, peer_x25519: bytes, *, binding: Binding, secret: bytes
    ) -> QuerySession:
        """The session between ``own`` and the X25519 public key ``peer_x25519``.

        ``binding`` names the chain, the contract and its key epoch; both public keys enter
        the derivation too, so a session is tied to exactly this pair. ``secret``: 32 bytes
        the client drew and sealed to the contract key.

        Raises:
            KeyInvalid: the peer key is malformed or of low order (no shared secret).
        """
        if not isinstance(peer_x25519, bytes) or len(peer_x25519) != raw_hpke.X25519_PUBLIC_LENGTH:
            raise KeyInvalid("a query key is a 32-byte X25519 public key")
        if not isinstance(secret, bytes) or len(secret) != SESSION_SECRET_LENGTH:
            raise KeyInvalid("a session secret is 32 bytes")
        private = own._hpke_private(Suite.X25519_SHA256_AES256GCM)
        assert isinstance(private, x25519.X25519PrivateKey)
        try:
            shared = private.exchange(x25519.X25519PublicKey.from_public_bytes(peer_x25519))
        except ValueError as exc:  # all-zero output: a low-order point
            raise KeyInvalid("the query key has no shared secret with this key") from exc
        low, high = sorted((own.public.x25519, peer_x25519))
        root = kdf.derive_bytes(
            shared + secret,
            [
                "query-session",
                binding.purpose,
                binding.chain_id,
                binding.target,
                binding.epoch,
                low,
                high,
            ],
        )
        session = cls(_token=_CONSTRUCT)
        # the per-query cost is then one AEAD operation: no key derivation, no cipher setup
        session._ciphers = {
            direction: aead.Cipher(kdf.derive_bytes(root, ["query", direction]))
            for direction in _DIRECTIONS
        }
        return session

    def seal(self, plaintext: bytes, *, request_id: bytes, direction: str) -> bytes:
        """``version || AES-256-GCM-SIV(key of direction, nonce = request_id[:12], plaintext,
        aad = request_id)``; ``direction`` is ``"request"`` or ``"response"``."""
        cipher = self._cipher(request_id, direction)
        return _HEADER.pack(SESSION_ENVELOPE_VERSION) + cipher.encrypt(
            request_id[:AEAD_NONCE_LENGTH], plaintext, request_id
        )

    def open(
        self,
        sealed: bytes,
        *,
        request_id: bytes,
        direction: str,
        max_size: int = MAX_ENVELOPE_SIZE,
    ) -> bytes:
        """Inverse of ``seal``.

        Raises:
            EnvelopeInvalid: truncated, oversized, tampered, or sealed for another request,
                direction or session (one opaque error).
            UnsupportedVersion: an unknown version byte.
        """
        if not isinstance(sealed, bytes) or len(sealed) > max_size:
            raise EnvelopeInvalid()
        if len(sealed) < _HEADER.size + AEAD_TAG_LENGTH:
            raise EnvelopeInvalid()
        if sealed[0] != SESSION_ENVELOPE_VERSION:
            raise UnsupportedVersion(
                f"session envelope 0x{sealed[0]:02x} is not supported (this build seals "
                f"0x{SESSION_ENVELOPE_VERSION:02x}: client and worker must both be as new)",
                version=sealed[0],
            )
        cipher = self._cipher(request_id, direction)
        return cipher.decrypt(request_id[:AEAD_NONCE_LENGTH], sealed[_HEADER.size :], request_id)

    def _cipher(self, request_id: bytes, direction: str) -> aead.Cipher:
        if not isinstance(request_id, bytes) or len(request_id) != REQUEST_ID_LENGTH:
            raise ValueError("a request id is 32 bytes")
        cipher = self._ciphers.get(direction)
        if cipher is None:
            raise ValueError("direction is 'request' or 'response'")
        return cipher

    def __repr__(self) -> str:
        return "QuerySession(<redacted>)"


_CONSTRUCT = object()
