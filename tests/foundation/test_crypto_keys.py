"""Key objects: secrets stay inside (no pickle, no copy, redacted repr), sealing round-trips."""

from __future__ import annotations

import copy
import pickle  # noqa: TID251 - proving keys refuse pickling

import pytest

from veilnet.crypto import (
    Address,
    EnvelopeInvalid,
    KeyInvalid,
    PublicKeys,
    SecretKey,
    UnsupportedVersion,
)

PARENT = b"\x11" * 32


def test_secret_key_cannot_be_pickled_copied_or_printed() -> None:
    key = SecretKey.derive(PARENT, "identity")
    with pytest.raises(TypeError):
        pickle.dumps(key)
    with pytest.raises(TypeError):
        copy.deepcopy(key)
    with pytest.raises(TypeError):
        copy.copy(key)
    assert "redacted" in repr(key)
    assert key._seed.hex() not in repr(key)
    sym = key.symmetric("state")
    with pytest.raises(TypeError):
        pickle.dumps(sym)
    assert repr(sym) == "SymmetricKey(<redacted>)"


def test_secret_key_has_no_public_constructor() -> None:
    with pytest.raises(TypeError):
        SecretKey(b"\x00" * 32)


def test_derivation_is_deterministic_and_separated() -> None:
    a = SecretKey.derive(PARENT, "cluster", b"\x01" * 32, 0)
    b = SecretKey.derive(PARENT, "cluster", b"\x01" * 32, 0)
    c = SecretKey.derive(PARENT, "cluster", b"\x01" * 32, 1)
    assert a.address == b.address
    assert a.address != c.address
    assert a.child("contract").address == SecretKey.derive(a, "contract").address


def test_generate_uses_entropy_when_given() -> None:
    assert SecretKey.generate(b"\x05" * 32).address == SecretKey.generate(b"\x05" * 32).address
    assert SecretKey.generate().address != SecretKey.generate().address
    with pytest.raises(ValueError):
        SecretKey.generate(b"short")


def test_seal_and_unseal_secret_key() -> None:
    key = SecretKey.derive(PARENT, "identity")
    sealer = SecretKey.derive(PARENT, "sealing").symmetric("disk")
    blob = key.seal(sealer, aad=b"worker-1")
    assert SecretKey.unseal(sealer, blob, aad=b"worker-1").address == key.address
    with pytest.raises(EnvelopeInvalid):
        SecretKey.unseal(sealer, blob, aad=b"worker-2")
    other = SecretKey.derive(PARENT, "other").symmetric("disk")
    with pytest.raises(EnvelopeInvalid):
        SecretKey.unseal(other, blob, aad=b"worker-1")


def test_sealed_values_are_deterministic_bound_and_tamper_evident() -> None:
    sym = SecretKey.derive(PARENT, "state").symmetric("values")
    sealed = sym.seal(b"secret value", aad=b"contract-1/key-a")
    assert sealed == sym.seal(b"secret value", aad=b"contract-1/key-a")
    assert sealed != sym.seal(b"secret value", aad=b"contract-1/key-b")
    assert sym.open(sealed, aad=b"contract-1/key-a") == b"secret value"
    with pytest.raises(EnvelopeInvalid) as wrong_aad:
        sym.open(sealed, aad=b"contract-2/key-a")
    assert wrong_aad.value.code == "envelope_invalid"
    for index in range(len(sealed)):
        tampered = bytearray(sealed)
        tampered[index] ^= 0x01
        with pytest.raises((EnvelopeInvalid, UnsupportedVersion)):
            sym.open(bytes(tampered), aad=b"contract-1/key-a")
    for cut in range(len(sealed)):
        with pytest.raises((EnvelopeInvalid, UnsupportedVersion)):
            sym.open(sealed[:cut], aad=b"contract-1/key-a")


def test_mac_is_keyed() -> None:
    a = SecretKey.derive(PARENT, "a").symmetric("m")
    b = SecretKey.derive(PARENT, "b").symmetric("m")
    assert a.mac(b"data") == a.mac(b"data") != b.mac(b"data")


def test_address_parsing_and_errors() -> None:
    key = SecretKey.derive(PARENT, "identity")
    assert Address.parse(key.address.hex.lower()) == key.address
    assert Address.parse(key.address.raw) == key.address
    for bad in ("0x1234", "0xzz" + "00" * 19, b"\x00" * 19):
        with pytest.raises(KeyInvalid) as info:
            Address.parse(bad)
        assert info.value.code == "key_invalid"


def test_public_keys_validate_their_bytes() -> None:
    public = SecretKey.derive(PARENT, "identity").public
    with pytest.raises(KeyInvalid):
        PublicKeys(
            secp256k1=b"\x00" * 64, x25519=public.x25519, mlkem768_x25519=public.mlkem768_x25519
        )
    with pytest.raises(KeyInvalid):
        PublicKeys(
            secp256k1=public.secp256k1, x25519=b"\x00" * 31, mlkem768_x25519=public.mlkem768_x25519
        )
    with pytest.raises(KeyInvalid):
        PublicKeys(secp256k1=public.secp256k1, x25519=public.x25519, mlkem768_x25519=b"\x00" * 10)
