"""The keyring's memoised contract keys and query sessions: reused while held, gone with the
epoch that made them (forward secrecy does not wait for a cache)."""

from __future__ import annotations

from veilnet.crypto import SecretKey
from veilnet.protocol import envelopes as proto
from veilnet.runtime.keyring import KeyRing

CLUSTER = b"c1".ljust(32, b"\x00")
CONTRACT = b"\x44" * 32
CHAIN = 31337


def _ring() -> KeyRing:
    ring = KeyRing(SecretKey.derive(b"\x01" * 32, "identity"))
    ring.cluster_keys[(CLUSTER, 1)] = SecretKey.derive(b"\x02" * 32, "cluster", 1)
    return ring


def _client_session(ring: KeyRing) -> tuple[SecretKey, proto.ClientSession]:
    contract_key = ring.contract_key(CLUSTER, CONTRACT, 1)
    assert contract_key is not None
    ephemeral = SecretKey.derive(b"\x03" * 32, "client")
    session = proto.open_session(
        ephemeral,
        contract_key.public,
        chain_id=CHAIN,
        contract_id=CONTRACT,
        epoch=1,
        secret=b"\x04" * 32,
    )
    return ephemeral, session


def test_contract_keys_and_sessions_are_memoised_and_agree_with_the_client() -> None:
    ring = _ring()
    assert ring.contract_key(CLUSTER, CONTRACT, 1) is ring.contract_key(CLUSTER, CONTRACT, 1)
    ephemeral, client = _client_session(ring)
    worker = ring.query_session(
        CLUSTER, CONTRACT, 1, client.envelope, ephemeral.public.x25519, chain_id=CHAIN
    )
    assert worker is not None
    again = ring.query_session(
        CLUSTER, CONTRACT, 1, client.envelope, ephemeral.public.x25519, chain_id=CHAIN
    )
    assert again is worker
    sealed = client.keys.seal(b"hello", request_id=b"\x05" * 32, direction="request")
    assert worker.open(sealed, request_id=b"\x05" * 32, direction="request") == b"hello"


def test_forgetting_an_epoch_drops_its_memoised_keys_and_sessions() -> None:
    ring = _ring()
    ephemeral, client = _client_session(ring)
    assert ring.query_session(
        CLUSTER, CONTRACT, 1, client.envelope, ephemeral.public.x25519, chain_id=CHAIN
    )
    ring.forget_cluster_epoch(CLUSTER, 1)
    assert ring.contract_key(CLUSTER, CONTRACT, 1) is None
    assert (
        ring.query_session(
            CLUSTER, CONTRACT, 1, client.envelope, ephemeral.public.x25519, chain_id=CHAIN
        )
        is None
    )
