"""Egress relay: batching, duplicates as success, restart without double submission."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from veilnet.chain import EgressRelay, RelayJournal, egress_domain, sign_egress
from veilnet.chain.egress import topic
from veilnet.chain.follower import Follower
from veilnet.chain.relay import relay_key
from veilnet.chain.rpc import to_hex

from .conftest import Net, key, register

STATE = topic("veil/egress/collateral")  # a topic the Bus logs and does not route


def _messages(net: Net, n: int) -> list:
    worker = key("relay-worker")
    register(net, worker, poster=True)
    domain = egress_domain(net.deployment.addresses.chain_id, net.deployment.addresses.bus)
    return [sign_egress(worker, domain, seq=i, topic=STATE, payload=b"m%d" % i) for i in range(n)]


def test_relay_posts_in_order_and_counts_duplicates_as_success(net: Net, tmp_path: Path) -> None:
    messages = _messages(net, 5)
    relay = EgressRelay(net.network, net.relayer, journal=RelayJournal(tmp_path / "j"))
    outcomes = relay.submit(list(reversed(messages)))
    assert {o.status for o in outcomes} == {"landed"}
    assert net.network.next_seq(messages[0].origin) == 5
    again = EgressRelay(net.network, net.user).submit(messages[:2])
    assert [o.status for o in again] == ["already_used", "already_used"]


def test_an_unendorsed_identity_is_never_blocked_only_unheard(net: Net) -> None:
    """The Bus hears nothing but collateral from a worker identity nobody endorses, yet takes
    each of its messages' sequence numbers: the relay settles them all, and the chain logs
    them as rejected, without their payloads."""
    worker = key("unheard-worker")
    register(net, worker)
    domain = egress_domain(net.deployment.addresses.chain_id, net.deployment.addresses.bus)
    messages = [
        sign_egress(worker, domain, seq=0, topic=STATE, payload=b"collateral"),
        sign_egress(worker, domain, seq=1, topic=topic("veil/test/plain"), payload=b"dropped"),
    ]
    outcomes = EgressRelay(net.network, net.relayer).submit(messages)
    assert [o.status for o in outcomes] == ["landed", "landed"]
    assert net.network.next_seq(worker.address) == 2
    net.backend.mine(2)
    follower = Follower(net.network.client, net.deployment.addresses, start_block=0)
    events = [e for b in follower.poll() for e in b.events if getattr(e, "origin", None)]
    heard = [(type(e).__name__, e.seq) for e in events if e.origin == worker.address]
    assert heard == [("Egress", 0), ("EgressRejected", 1)]


def test_relay_restart_rebroadcasts_the_same_transaction(net: Net, tmp_path: Path) -> None:
    messages = _messages(net, 2)
    path = tmp_path / "journal"
    # First life: sign and journal, then "crash" before broadcasting.
    first = EgressRelay(net.network, net.relayer, journal=RelayJournal(path))
    entries = first._signed([(relay_key(m), m) for m in messages], fresh=False)
    nonce_before = net.network.client.call(
        "eth_getTransactionCount", net.relayer.address.hex, "latest"
    )
    # Second life: a new relay with a fresh sender reuses the journaled transactions.
    sender = net.network.sender(net.backend.dev_accounts[2][1])
    outcomes = EgressRelay(net.network, sender, journal=RelayJournal(path)).submit(messages)
    assert [o.tx_hash for o in outcomes] == [bytes.fromhex(e["tx_hash"][2:]) for e in entries]
    nonce_after = net.network.client.call(
        "eth_getTransactionCount", net.relayer.address.hex, "latest"
    )
    assert int(nonce_after, 16) - int(nonce_before, 16) == 2
    # Third life: everything is done; nothing is sent.
    third = EgressRelay(net.network, sender, journal=RelayJournal(path)).submit(messages)
    assert [o.status for o in third] == ["already_used", "already_used"]
    assert to_hex(outcomes[0].tx_hash or b"") == entries[0]["tx_hash"]


def test_relay_refuses_a_message_the_bus_could_never_take(net: Net, tmp_path: Path) -> None:
    (message,) = _messages(net, 1)
    journal = RelayJournal(tmp_path / "journal")
    unpostable = dataclasses.replace(message, topic=b"\x01" * 31)
    with pytest.raises(ValueError, match="topic"):
        EgressRelay(net.network, net.relayer, journal=journal).submit([message, unpostable])
    assert not journal.path.exists() and net.network.next_seq(message.origin) == 0
