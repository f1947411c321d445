"""Query sessions: both sides derive the same keys; anything else opens nothing."""

from __future__ import annotations

import pytest

from veilnet.crypto import (
    Binding,
    EnvelopeInvalid,
    KeyInvalid,
    QuerySession,
    SecretKey,
    UnsupportedVersion,
)

CLIENT = SecretKey.derive(b"\x11" * 32, "client")
CONTRACT = SecretKey.derive(b"\x22" * 32, "contract")
SECRET = b"\x33" * 32
BINDING = Binding(chain_id=31337, target=b"\x44" * 32, epoch=1, purpose="query-session")
REQUEST = b"\x55" * 32


def _pair(binding: Binding = BINDING, secret: bytes = SECRET) -> tuple[QuerySession, QuerySession]:
    client = QuerySession.agree(CLIENT, CONTRACT.public.x25519, binding=binding, secret=secret)
    worker = QuerySession.agree(CONTRACT, CLIENT.public.x25519, binding=binding, secret=secret)
    return client, worker


def test_client_and_worker_derive_the_same_keys_both_ways() -> None:
    client, worker = _pair()
    request = client.seal(b"ask", request_id=REQUEST, direction="request")
    assert worker.open(request, request_id=REQUEST, direction="request") == b"ask"
    response = worker.seal(b"answer", request_id=REQUEST, direction="response")
    assert client.open(response, request_id=REQUEST, direction="response") == b"answer"


@pytest.mark.parametrize("direction", ["request", "response"])
def test_sealing_is_the_documented_formula(direction: str) -> None:
    """``docs/protocol.md`` §11, from the keys up: ``root = HKDF(X25519 || secret, path)``, one
    key per direction ``HKDF(root, ["query", direction])``, then ``0x52 || AES-256-GCM-SIV(key,
    nonce = request id[:12], plaintext, AAD = request id)``."""
    from cryptography.hazmat.primitives.asymmetric import x25519
    from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV

    from veilnet.crypto._hazmat import kdf
    from veilnet.crypto._hazmat.hpke import Suite

    private = CLIENT._hpke_private(Suite.X25519_SHA256_AES256GCM)
    assert isinstance(private, x25519.X25519PrivateKey)
    shared = private.exchange(x25519.X25519PublicKey.from_public_bytes(CONTRACT.public.x25519))
    low, high = sorted((CLIENT.public.x25519, CONTRACT.public.x25519))
    root = kdf.derive_bytes(
        shared + SECRET, ["query-session", "query-session", 31337, b"\x44" * 32, 1, low, high]
    )
    key = kdf.derive_bytes(root, ["query", direction])
    request = bytes(range(32))
    expected = b"\x52" + AESGCMSIV(key).encrypt(request[:12], b"ask", request)
    client, worker = _pair()
    assert client.seal(b"ask", request_id=request, direction=direction) == expected
    assert worker.open(expected, request_id=request, direction=direction) == b"ask"


def test_the_per_request_keys_of_version_0x51_are_refused() -> None:
    """Sessions sealed each value under a key per request id until envelope 0x52: such a
    value is refused by its version byte, before any decryption."""
    _, worker = _pair()
    with pytest.raises(UnsupportedVersion, match="0x51 is not supported"):
        worker.open(b"\x51" + bytes(40), request_id=REQUEST, direction="request")


def test_sealing_is_deterministic_per_request_and_direction() -> None:
    client, _ = _pair()
    one = client.seal(b"x", request_id=REQUEST, direction="request")
    assert one == client.seal(b"x", request_id=REQUEST, direction="request")
    assert one != client.seal(b"x", request_id=b"\x56" * 32, direction="request")
    assert one != client.seal(b"x", request_id=REQUEST, direction="response")


@pytest.mark.parametrize(
    "other",
    [
        {"binding": Binding(chain_id=1, target=b"\x44" * 32, epoch=1, purpose="query-session")},
        {"binding": Binding(chain_id=31337, target=b"\x45" * 32, epoch=1, purpose="query-session")},
        {"binding": Binding(chain_id=31337, target=b"\x44" * 32, epoch=2, purpose="query-session")},
        {"secret": b"\x34" * 32},
    ],
    ids=["chain", "contract", "epoch", "secret"],
)
def test_a_session_for_anything_else_opens_nothing(other: dict[str, object]) -> None:
    client, _ = _pair()
    _, stranger = _pair(**other)  # type: ignore[arg-type]
    sealed = client.seal(b"ask", request_id=REQUEST, direction="request")
    with pytest.raises(EnvelopeInvalid):
        stranger.open(sealed, request_id=REQUEST, direction="request")


def test_someone_holding_only_the_certified_public_key_cannot_open_answers() -> None:
    """Mallory copies Alice's certificate (her public query key) but has her own private key."""
    mallory = SecretKey.derive(b"\x66" * 32, "mallory")
    _, worker = _pair()
    as_mallory = QuerySession.agree(mallory, CONTRACT.public.x25519, binding=BINDING, secret=SECRET)
    answer = worker.seal(b"alice's balance", request_id=REQUEST, direction="response")
    with pytest.raises(EnvelopeInvalid):
        as_mallory.open(answer, request_id=REQUEST, direction="response")


def test_wrong_request_or_direction_tampering_and_truncation_are_one_opaque_error() -> None:
    client, worker = _pair()
    sealed = client.seal(b"ask", request_id=REQUEST, direction="request")
    flipped = sealed[:-1] + bytes([sealed[-1] ^ 1])
    for bad, rid, direction in [
        (sealed, b"\x56" * 32, "request"),
        (sealed, REQUEST, "response"),
        (flipped, REQUEST, "request"),
        (sealed[:-1], REQUEST, "request"),
        (sealed[:1], REQUEST, "request"),
        (b"", REQUEST, "request"),
    ]:
        with pytest.raises(EnvelopeInvalid) as info:
            worker.open(bad, request_id=rid, direction=direction)
        assert info.value.code == "envelope_invalid"


def test_unknown_version_and_oversize_are_refused_before_decryption() -> None:
    client, worker = _pair()
    sealed = client.seal(b"ask", request_id=REQUEST, direction="request")
    with pytest.raises(UnsupportedVersion):
        worker.open(b"\x01" + sealed[1:], request_id=REQUEST, direction="request")
    with pytest.raises(EnvelopeInvalid):
        worker.open(sealed, request_id=REQUEST, direction="request", max_size=len(sealed) - 1)


def test_bad_inputs_are_typed_errors() -> None:
    with pytest.raises(KeyInvalid):
        QuerySession.agree(CLIENT, b"\x00" * 31, binding=BINDING, secret=SECRET)
    with pytest.raises(KeyInvalid, match="shared secret"):  # a low-order point
        QuerySession.agree(CLIENT, b"\x00" * 32, binding=BINDING, secret=SECRET)
    with pytest.raises(KeyInvalid):
        QuerySession.agree(CLIENT, CONTRACT.public.x25519, binding=BINDING, secret=b"short")
    client, _ = _pair()
    with pytest.raises(ValueError):
        client.seal(b"x", request_id=b"\x00" * 31, direction="request")
    with pytest.raises(ValueError):
        client.seal(b"x", request_id=REQUEST, direction="sideways")


def test_a_session_is_redacted_and_cannot_be_built_directly() -> None:
    client, _ = _pair()
    assert repr(client) == "QuerySession(<redacted>)"
    with pytest.raises(TypeError):
        QuerySession()
    with pytest.raises(TypeError):
        client.__reduce__()
