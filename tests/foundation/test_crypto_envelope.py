"""HPKE envelopes: round trips for every suite, wrong key/binding, tampering, truncation."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veilnet.crypto import (
    Binding,
    EnvelopeInvalid,
    SecretKey,
    Suite,
    UnsupportedVersion,
    open_envelope,
    peek_envelope,
    seal_for,
)

KEY = SecretKey.derive(b"\x21" * 32, "contract", b"\x01" * 32)
OTHER = SecretKey.derive(b"\x21" * 32, "contract", b"\x02" * 32)
BINDING = Binding(chain_id=31337, target=b"\x01" * 32, epoch=3, purpose="command")


@pytest.mark.parametrize("suite", list(Suite))
@pytest.mark.parametrize("size", [0, 1, 1024, 64 * 1024])
def test_round_trip(suite: Suite, size: int) -> None:
    message = bytes(range(256)) * (size // 256) + bytes(size % 256)
    envelope = seal_for(KEY.public, message, binding=BINDING, suite=suite)
    header = peek_envelope(envelope)
    assert (header.suite, header.epoch) == (suite, 3)
    assert open_envelope(KEY, envelope, binding=BINDING) == message


@pytest.mark.parametrize("suite", list(Suite))
def test_raw_public_bytes_work_as_recipient(suite: Suite) -> None:
    envelope = seal_for(KEY.public.hpke_public(suite), b"hi", binding=BINDING, suite=suite)
    assert open_envelope(KEY, envelope, binding=BINDING) == b"hi"


def test_envelopes_are_randomised() -> None:
    assert seal_for(KEY.public, b"x", binding=BINDING) != seal_for(
        KEY.public, b"x", binding=BINDING
    )


@pytest.mark.parametrize("suite", list(Suite))
def test_wrong_key_is_opaque_error(suite: Suite) -> None:
    envelope = seal_for(KEY.public, b"secret", binding=BINDING, suite=suite)
    with pytest.raises(EnvelopeInvalid) as info:
        open_envelope(OTHER, envelope, binding=BINDING)
    assert info.value.code == "envelope_invalid"
    assert "secret" not in str(info.value)


@pytest.mark.parametrize(
    "change",
    [{"chain_id": 1}, {"target": b"\x02" * 32}, {"epoch": 4}, {"purpose": "query"}],
    ids=["chain", "target", "epoch", "purpose"],
)
@pytest.mark.parametrize("suite", list(Suite))
def test_wrong_binding_is_rejected(change: dict, suite: Suite) -> None:
    envelope = seal_for(KEY.public, b"secret", binding=BINDING, suite=suite)
    with pytest.raises(EnvelopeInvalid):
        open_envelope(KEY, envelope, binding=dataclasses.replace(BINDING, **change))


def test_every_flipped_byte_is_rejected_x25519() -> None:
    envelope = seal_for(KEY.public, b"a command payload", binding=BINDING)
    for index in range(len(envelope)):
        for bit in (0x01, 0x80):
            tampered = bytearray(envelope)
            tampered[index] ^= bit
            with pytest.raises((EnvelopeInvalid, UnsupportedVersion)):
                open_envelope(KEY, bytes(tampered), binding=BINDING)


def test_flipped_bytes_are_rejected_hybrid() -> None:
    envelope = seal_for(
        KEY.public, b"payload", binding=BINDING, suite=Suite.MLKEM768_X25519_SHA256_AES256GCM
    )
    # header, ML-KEM ciphertext, X25519 share, AEAD body and tag
    for index in [0, 1, 2, 5, 6, 100, 1093, 1094, 1125, 1126, len(envelope) - 1]:
        tampered = bytearray(envelope)
        tampered[index] ^= 0x04
        with pytest.raises((EnvelopeInvalid, UnsupportedVersion)):
            open_envelope(KEY, bytes(tampered), binding=BINDING)


@pytest.mark.parametrize("suite", list(Suite))
def test_truncated_envelopes_are_rejected(suite: Suite) -> None:
    envelope = seal_for(KEY.public, b"payload", binding=BINDING, suite=suite)
    for cut in range(0, len(envelope), max(1, len(envelope) // 60)):
        with pytest.raises(EnvelopeInvalid):
            open_envelope(KEY, envelope[:cut], binding=BINDING)


def test_unknown_version_and_suite() -> None:
    envelope = seal_for(KEY.public, b"payload", binding=BINDING)
    with pytest.raises(UnsupportedVersion) as version:
        open_envelope(KEY, b"\x02" + envelope[1:], binding=BINDING)
    assert version.value.code == "unsupported_version"
    with pytest.raises(UnsupportedVersion):
        open_envelope(KEY, envelope[:1] + b"\x09" + envelope[2:], binding=BINDING)


def test_oversized_envelope_is_rejected_before_work() -> None:
    with pytest.raises(EnvelopeInvalid) as info:
        open_envelope(KEY, b"\x01" * 2048, binding=BINDING, max_size=1024)
    assert info.value.details["max_size"] == 1024


@given(st.binary(max_size=300))
def test_garbage_never_crashes(data: bytes) -> None:
    with pytest.raises((EnvelopeInvalid, UnsupportedVersion)):
        open_envelope(KEY, data, binding=BINDING)


def test_binding_validates_ranges() -> None:
    with pytest.raises(ValueError):
        Binding(chain_id=-1, target=b"", epoch=0, purpose="x")
    with pytest.raises(ValueError):
        Binding(chain_id=1, target=b"", epoch=2**32, purpose="x")
