"""Known-answer and property tests for the KDF tree, checked against an independent HKDF."""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veilnet.crypto import SecretKey
from veilnet.crypto._hazmat import kdf
from veilnet.crypto.constants import KDF_SALT, VERSION_TAG

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "kdf.json").read_text())


def _segment(value: object) -> bytes:
    """Independent re-statement of the path encoding, from the spec in docs/protocol.md."""
    if isinstance(value, bytes):
        return b"b" + struct.pack(">I", len(value)) + value
    if isinstance(value, str):
        raw = value.encode()
        return b"s" + struct.pack(">I", len(raw)) + raw
    assert isinstance(value, int)
    return b"i" + struct.pack(">I", 8) + value.to_bytes(8, "big")


def _stdlib_hkdf(ikm: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 with nothing but hmac/hashlib: a second implementation to check ours."""
    prk = hmac.new(KDF_SALT, ikm, hashlib.sha256).digest()
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
        counter += 1
    return okm[:length]


def _path(case: dict) -> list[object]:
    return [
        bytes.fromhex(p) if t == "bytes" else (int(p) if t == "int" else p)
        for p, t in zip(case["path"], case["path_types"], strict=True)
    ]


def test_rfc5869_case_1_with_stdlib_reference() -> None:
    """RFC 5869 A.1 through the reference implementation, so the reference itself is trusted."""
    ikm = bytes.fromhex("0b" * 22)
    salt = bytes.fromhex("000102030405060708090a0b0c")
    info = bytes.fromhex("f0f1f2f3f4f5f6f7f8f9")
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    assert prk.hex() == "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5"
    t1 = hmac.new(prk, info + b"\x01", hashlib.sha256).digest()
    t2 = hmac.new(prk, t1 + info + b"\x02", hashlib.sha256).digest()
    assert (t1 + t2)[:42].hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )


@pytest.mark.parametrize(
    "case", VECTORS["hkdf"], ids=lambda c: "/".join(map(str, c["path"])) or "root"
)
def test_kdf_known_answers(case: dict) -> None:
    path = _path(case)
    secret = bytes.fromhex(case["secret"])
    info = _segment(VERSION_TAG) + b"".join(_segment(p) for p in path)
    assert info.hex() == case["info"]
    assert kdf.encode_path(path).hex() == case["info"]
    assert kdf.derive_bytes(secret, path, case["length"]).hex() == case["okm"]
    assert _stdlib_hkdf(secret, info, case["length"]).hex() == case["okm"]


@pytest.mark.parametrize("case", VECTORS["keys"], ids=lambda c: c["address"])
def test_key_derivation_known_answers(case: dict) -> None:
    key = SecretKey.derive(bytes.fromhex(case["parent"]), *_path(case))
    assert key.address.hex == case["address"]
    assert key.public.secp256k1.hex() == case["secp256k1_public"]
    assert key.public.x25519.hex() == case["x25519_public"]
    assert (
        hashlib.sha256(key.public.mlkem768_x25519).hexdigest()
        == case["mlkem768_x25519_public_sha256"]
    )


segment = st.one_of(st.binary(max_size=40), st.text(max_size=20), st.integers(0, 2**64 - 1))


@given(st.lists(segment, max_size=5), st.lists(segment, max_size=5))
def test_path_encoding_is_injective(a: list[object], b: list[object]) -> None:
    if [(type(x), x) for x in a] != [(type(x), x) for x in b]:
        assert kdf.encode_path(a) != kdf.encode_path(b)


def test_segment_types_never_collide() -> None:
    assert kdf.encode_path([b"1"]) != kdf.encode_path(["1"])
    assert kdf.encode_path([1]) != kdf.encode_path([(1).to_bytes(8, "big")])
    assert kdf.encode_path(["ab", "c"]) != kdf.encode_path(["a", "bc"])


def test_bad_kdf_arguments_are_caller_errors() -> None:
    with pytest.raises(TypeError):
        kdf.encode_path([True])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        kdf.encode_path([-1])
    with pytest.raises(ValueError):
        kdf.derive_bytes(b"short", [])
