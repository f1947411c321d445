"""Key objects: one secret seed gives a secp256k1 signing key and HPKE keys for both suites.
Secret key classes are final, unpicklable, redacted in repr, built only by named constructors."""

from __future__ import annotations

import functools
import hmac
import os
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any, NoReturn, final

from eth_utils.address import to_checksum_address

from veilnet.crypto._hazmat import aead, kdf, secp256k1
from veilnet.crypto._hazmat import hpke as raw_hpke
from veilnet.crypto._hazmat.hpke import Suite
from veilnet.crypto._hazmat.kdf import PathSegment
from veilnet.crypto.constants import (
    ADDRESS_LENGTH,
    AEAD_NONCE_LENGTH,
    SEALED_VALUE_VERSION,
    SEED_LENGTH,
    SYMMETRIC_KEY_LENGTH,
)
from veilnet.crypto.errors import EnvelopeInvalid, KeyInvalid, UnsupportedVersion

__all__ = ["Address", "PublicKeys", "SecretKey", "Suite", "SymmetricKey"]


class _Secret:
    """Behaviour shared by secret key classes: no pickling, no copying, a redacted repr."""

    __slots__ = ()

    def __reduce__(self) -> NoReturn:
        raise TypeError(f"{type(self).__name__} cannot be pickled; seal it instead")

    def __copy__(self) -> NoReturn:
        raise TypeError(f"{type(self).__name__} cannot be copied")

    def __deepcopy__(self, memo: Any) -> NoReturn:
        raise TypeError(f"{type(self).__name__} cannot be copied")


@final
@dataclass(frozen=True, slots=True)
class Address:
    """A 20-byte Ethereum address; ``str()`` gives the EIP-55 checksummed hex form."""

    raw: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.raw, bytes) or len(self.raw) != ADDRESS_LENGTH:
            raise KeyInvalid("an address is exactly 20 bytes")

    @classmethod
    def parse(cls, text: str | bytes) -> Address:
        """From 20 raw bytes or ``0x``-prefixed hex (any case); raises KeyInvalid otherwise."""
        if isinstance(text, bytes):
            return cls(text)
        body = text[2:] if text[:2] in ("0x", "0X") else text
        try:
            raw = bytes.fromhex(body)
        except ValueError as exc:
            raise KeyInvalid("address is not hex") from exc
        return cls(raw)

    @property
    def hex(self) -> str:
        """EIP-55 checksummed ``0x`` hex."""
        return _checksummed(self.raw)

    def __str__(self) -> str:
        return self.hex

    def __repr__(self) -> str:
        return f"Address({self.hex})"


@final
@dataclass(frozen=True, slots=True)
class PublicKeys:
    """The public half of a SecretKey: secp256k1 key (and address) plus HPKE public keys."""

    secp256k1: bytes
    """64-byte uncompressed secp256k1 public key (x || y)."""
    x25519: bytes
    """32-byte X25519 HPKE public key (suite 1)."""
    mlkem768_x25519: bytes
    """1216-byte hybrid HPKE public key (suite 2): ML-KEM-768 then X25519."""
    _loaded: dict[Suite, raw_hpke.PublicKey] = field(
        init=False, repr=False, compare=False, hash=False
    )
    _address: Address = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        secp256k1.validate_public_key(self.secp256k1)
        object.__setattr__(self, "_address", Address(secp256k1.address_of(self.secp256k1)))
        object.__setattr__(
            self,
            "_loaded",
            {
                Suite.X25519_SHA256_AES256GCM: raw_hpke.load_public(
                    Suite.X25519_SHA256_AES256GCM, self.x25519
                ),
                Suite.MLKEM768_X25519_SHA256_AES256GCM: raw_hpke.load_public(
                    Suite.MLKEM768_X25519_SHA256_AES256GCM, self.mlkem768_x25519
                ),
            },
        )

    def hpke_key(self, suite: Suite) -> raw_hpke.PublicKey:
        """The parsed HPKE public key for ``suite`` (parsed once, at construction)."""
        return self._loaded[suite]

    @property
    def address(self) -> Address:
        return self._address

    def hpke_public(self, suite: Suite) -> bytes:
        """Raw HPKE public key bytes for ``suite``."""
        if suite is Suite.X25519_SHA256_AES256GCM:
            return self.x25519
        return self.mlkem768_x25519

    def __repr__(self) -> str:
        return f"PublicKeys(address={self.address.hex})"


@final
class SecretKey(_Secret):
    """A 32-byte secret seed; every key Veilnet uses for one identity is derived from it.

    Build with ``generate()``, ``derive()`` or ``unseal()``. The seed never leaves the object
    except sealed.
    """

    __slots__ = ("_hpke_cache", "_public", "_scalar", "_seed", "_signer")

    def __init__(self, _seed: bytes, *, _token: object = None) -> None:
        if _token is not _CONSTRUCT:
            raise TypeError("use SecretKey.generate(), .derive() or .unseal()")
        if len(_seed) != SEED_LENGTH:
            raise KeyInvalid("a secret seed is 32 bytes")
        self._seed = _seed
        self._scalar = secp256k1.scalar_from_seed(kdf.derive_bytes(_seed, ["secp256k1"], 48))
        self._signer = secp256k1.signer(self._scalar)
        self._public: PublicKeys | None = None
        self._hpke_cache: dict[Suite, raw_hpke.PrivateKey] = {}

    @classmethod
    def generate(cls, entropy: bytes | None = None) -> SecretKey:
        """A fresh key from the OS, or from 32+ bytes of caller entropy (e.g. a TEE's RNG)."""
        material = os.urandom(SEED_LENGTH) if entropy is None else entropy
        if len(material) < SEED_LENGTH:
            raise ValueError("entropy must be at least 32 bytes")
        return cls(kdf.derive_bytes(material, ["seed"]), _token=_CONSTRUCT)

    @classmethod
    def derive(cls, parent: SecretKey | bytes, *path: PathSegment) -> SecretKey:
        """The child key at ``path`` below ``parent`` (a key or raw 32+ byte secret)."""
        root = parent._seed if isinstance(parent, SecretKey) else parent
        return cls(kdf.derive_bytes(root, ["key", *path]), _token=_CONSTRUCT)

    @classmethod
    def unseal(cls, sealer: SymmetricKey, blob: bytes, *, aad: bytes) -> SecretKey:
        """Inverse of ``seal``; raises EnvelopeInvalid if the blob or AAD do not match."""
        return cls(sealer.open(blob, aad=b"secret-key:" + aad), _token=_CONSTRUCT)

    @classmethod
    def _from_seed(cls, seed: bytes) -> SecretKey:
        """Hazardous: only ``crypto.envelope`` (key wrapping) calls this."""
        return cls(seed, _token=_CONSTRUCT)

    def _seed_bytes(self) -> bytes:
        """Hazardous: only ``crypto.envelope`` (key wrapping) calls this."""
        return self._seed

    def seal(self, sealer: SymmetricKey, *, aad: bytes) -> bytes:
        """This key's seed encrypted under ``sealer`` and bound to ``aad``."""
        return sealer.seal(self._seed, aad=b"secret-key:" + aad)

    def child(self, *path: PathSegment) -> SecretKey:
        """Shorthand for ``SecretKey.derive(self, *path)``."""
        return SecretKey.derive(self, *path)

    def symmetric(self, *path: PathSegment) -> SymmetricKey:
        """A symmetric key derived from this key at ``path``."""
        return SymmetricKey._from_bytes(kdf.derive_bytes(self._seed, ["symmetric", *path]))

    @property
    def public(self) -> PublicKeys:
        if self._public is None:
            x_seed, m_seed = self._hpke_seeds()
            self._public = PublicKeys(
                secp256k1=secp256k1.public_key(self._scalar),
                x25519=raw_hpke.public_bytes(Suite.X25519_SHA256_AES256GCM, x_seed, m_seed),
                mlkem768_x25519=raw_hpke.public_bytes(
                    Suite.MLKEM768_X25519_SHA256_AES256GCM, x_seed, m_seed
                ),
            )
        return self._public

    @property
    def address(self) -> Address:
        return self.public.address

    def sign_digest(self, digest: bytes) -> bytes:
        """Hazardous: sign a raw 32-byte digest. Prefer ``veilnet.crypto.sign_typed``."""
        return secp256k1.sign_digest(self._signer, digest)

    def _hpke_seeds(self) -> tuple[bytes, bytes]:
        return (
            kdf.derive_bytes(self._seed, ["hpke", "x25519"], 32),
            kdf.derive_bytes(self._seed, ["hpke", "mlkem768"], 64),
        )

    def _hpke_private(self, suite: Suite) -> raw_hpke.PrivateKey:
        cached = self._hpke_cache.get(suite)
        if cached is None:
            cached = raw_hpke.private_key(suite, *self._hpke_seeds())
            self._hpke_cache[suite] = cached
        return cached

    def _private_scalar(self) -> bytes:
        """Hazardous: the raw scalar, for a ``TransactionSigner`` (the registration transaction)."""
        return self._scalar

    def __repr__(self) -> str:
        return f"SecretKey(address={self.address.hex}, <redacted>)"


@final
class SymmetricKey(_Secret):
    """A 32-byte key for sealing values at rest (deterministic AEAD) and keyed hashing."""

    __slots__ = ("_enc", "_mac", "_nonce", "_root")
    _enc: bytes
    _mac: bytes
    _nonce: bytes
    _root: bytes

    def __init__(self, *, _token: object = None) -> None:
        if _token is not _CONSTRUCT:
            raise TypeError("use SecretKey.symmetric() or SymmetricKey.generate()")

    @classmethod
    def generate(cls, entropy: bytes | None = None) -> SymmetricKey:
        material = os.urandom(SYMMETRIC_KEY_LENGTH) if entropy is None else entropy
        if len(material) < SYMMETRIC_KEY_LENGTH:
            raise ValueError("entropy must be at least 32 bytes")
        return cls._from_bytes(kdf.derive_bytes(material, ["symmetric-root"]))

    @classmethod
    def _from_bytes(cls, root: bytes) -> SymmetricKey:
        key = cls(_token=_CONSTRUCT)
        key._root = root
        key._enc = kdf.derive_bytes(root, ["aead"])
        key._nonce = kdf.derive_bytes(root, ["nonce"])
        key._mac = kdf.derive_bytes(root, ["mac"])
        return key

    def seal(self, plaintext: bytes, *, aad: bytes) -> bytes:
        """``version || nonce || AES-256-GCM-SIV(plaintext, aad)``; equal inputs seal equally."""
        nonce = aead.synthetic_nonce(self._nonce, plaintext, aad)
        return (
            bytes([SEALED_VALUE_VERSION]) + nonce + aead.encrypt(self._enc, nonce, plaintext, aad)
        )

    def open(self, sealed: bytes, *, aad: bytes) -> bytes:
        """Inverse of ``seal``. Raises UnsupportedVersion or EnvelopeInvalid (opaque)."""
        if len(sealed) < 1 + AEAD_NONCE_LENGTH + 16:
            raise EnvelopeInvalid()
        if sealed[0] != SEALED_VALUE_VERSION:
            raise UnsupportedVersion(f"sealed value version {sealed[0]} is not supported")
        nonce = sealed[1 : 1 + AEAD_NONCE_LENGTH]
        plaintext = aead.decrypt(self._enc, nonce, sealed[1 + AEAD_NONCE_LENGTH :], aad)
        if not hmac.compare_digest(aead.synthetic_nonce(self._nonce, plaintext, aad), nonce):
            raise EnvelopeInvalid()
        return plaintext

    def mac(self, data: bytes) -> bytes:
        """HMAC-SHA256 keyed hash, e.g. for state commitments that must leak nothing."""
        return hmac.new(self._mac, data, sha256).digest()

    def child(self, *path: PathSegment) -> SymmetricKey:
        return SymmetricKey._from_bytes(kdf.derive_bytes(self._root, ["child", *path]))

    def __repr__(self) -> str:
        return "SymmetricKey(<redacted>)"


_CONSTRUCT = object()


@functools.lru_cache(maxsize=4096)
def _checksummed(raw: bytes) -> str:
    """EIP-55 form, cached: addresses recur constantly (workers, contracts, wallets)."""
    return str(to_checksum_address(raw))
