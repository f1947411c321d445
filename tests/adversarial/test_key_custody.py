"""Keys only where they belong, against real enclave processes reached over their byte interface:
a re-registered, removed or revoked member never receives the cluster's next key."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from veilnet.codec import decode
from veilnet.protocol import topics
from veilnet.testing.adversary import EnclaveNetwork

pytestmark = pytest.mark.slow  # the module starts enclave processes


@pytest.fixture
def net() -> Iterator[EnclaveNetwork]:
    with EnclaveNetwork() as network:
        network.bootstrap(workers=("w1", "w2"))
        yield network


def _epoch(net: EnclaveNetwork) -> int:
    return net.ledger.clusters[b"c1".ljust(32, b"\x00")].key_epoch


def _keyed_shares(net: EnclaveNetwork, member: bytes, since: int) -> list[int]:
    """Epochs of every cluster key wrapped to ``member`` in the egress from ``since`` on."""
    epochs = []
    for message in net.egress[since:]:
        if message.topic == topics.TOPIC_CLUSTER_KEY_SHARE:
            _, target, shares, *_ = decode(message.payload)  # type: ignore[misc]
            if target == member:
                epochs += [epoch for epoch, *_ in shares]  # type: ignore[attr-defined]
    return epochs


def _serves(net: EnclaveNetwork, name: str) -> bool:
    (cluster,) = net.hosts[name].enclave.status().clusters
    return cluster.state_commitment is not None


def test_a_reregistration_with_the_attackers_key_captures_nothing(net: EnclaveNetwork) -> None:
    """The review's key capture: an identity re-registers with a key its host chose (a
    registration made outside its core). On chain it leaves the cluster; every core re-keys
    the cluster without it; nothing is wrapped to the new key, now or at a rotation."""
    before, mark = _epoch(net), len(net.egress)
    w2 = net.addresses["w2"]
    honest = net.hosts["w2"].enclave.registration(b"\x0b" * 20)
    net.ledger.register_worker(dataclasses.replace(honest, hpke_key=b"\x66" * 32))
    net.settle()
    assert _epoch(net) == before + 1
    net.ledger.lock_rotation()
    net.settle()
    assert _epoch(net) == before + 2
    assert _keyed_shares(net, w2, mark) == []
    assert _keyed_shares(net, net.addresses["w1"], mark) == [before + 1, before + 2]
    assert not _serves(net, "w2") and _serves(net, "w1")


def test_a_removed_member_is_re_keyed_out_and_stops_serving(net: EnclaveNetwork) -> None:
    before, mark = _epoch(net), len(net.egress)
    net.ledger.remove_cluster_worker(b"c1".ljust(32, b"\x00"), net.addresses["w2"])
    net.settle()
    assert _epoch(net) == before + 1
    assert _keyed_shares(net, net.addresses["w2"], mark) == []
    assert _keyed_shares(net, net.addresses["w1"], mark) == [before + 1]
    assert not _serves(net, "w2") and _serves(net, "w1")


def test_a_revoked_measurement_gets_no_key(net: EnclaveNetwork) -> None:
    """Every enclave here runs the one dev measurement: once it is revoked, the cluster's next
    epoch is wrapped to nobody and no member serves."""
    before, mark = _epoch(net), len(net.egress)
    measurement = net.hosts["w1"].enclave.registration(b"\x0b" * 20).measurement
    net.ledger.set_measurement(measurement, False)
    net.settle()
    assert _epoch(net) == before + 1
    for name in ("w1", "w2"):
        assert _keyed_shares(net, net.addresses[name], mark) == []
        assert not _serves(net, name)


def test_a_lapsed_endorsement_gets_no_key(net: EnclaveNetwork) -> None:
    """Endorsements hold until the collateral they were judged under expires, by block time
    (which the host cannot set: blocks are the sequencer's). Past it, with nobody re-attesting,
    the cluster's next epoch is wrapped to nobody and no member serves; one block earlier the
    members still serve."""
    from veilnet.tee.constants import DEV_COLLATERAL_VALIDITY_S

    before, mark = _epoch(net), len(net.egress)
    w1 = net.addresses["w1"]
    expiry = net.ledger.endorsed_until[w1]
    assert expiry >= net.ledger.genesis_time - 3660 + DEV_COLLATERAL_VALIDITY_S  # issued this hour
    net.ledger.warp(expiry - 1 - net.ledger.now())
    net.step()
    assert _epoch(net) == before and _serves(net, "w1")
    net.settle()
    assert _epoch(net) == before + 1
    for name in ("w1", "w2"):
        assert _keyed_shares(net, net.addresses[name], mark) == []
        assert not _serves(net, name)


def test_a_registration_naming_another_block_than_its_quote_gets_no_endorsement(
    net: EnclaveNetwork,
) -> None:
    """The quote binds the hash of its core's head; a host that registers it under another
    recent block (to pass a quote made earlier off as fresh) gets a registration that the
    gatekeeper's core refuses to endorse. The same quote under its own block is endorsed."""
    from veilnet.protocol import events as ev

    address = net.start("w3", register=False)
    host = net.hosts["w3"]
    request = host.enclave.registration(b"\x0b" * 20)
    assert request.attested_block == net.ledger.head.number
    net.step()
    net.ledger.register_worker(
        dataclasses.replace(request, attested_block=request.attested_block + 1)
    )
    net.settle()

    def endorsements() -> list[ev.WorkerEndorsed]:
        return [
            e
            for b in net.ledger.blocks
            for e in b.events
            if isinstance(e, ev.WorkerEndorsed) and e.worker == address
        ]

    assert endorsements() == []
    net.ledger.register_worker(host.enclave.registration(b"\x0b" * 20))
    net.settle()
    (endorsed,) = endorsements()
    assert endorsed.confidence >= 1


def test_a_worker_whose_host_withholds_its_encryption_key_gets_no_key(
    net: EnclaveNetwork,
) -> None:
    """Real enclave processes. w3's host keeps back the encryption key its core publishes, and
    w3 joins c1: its share message carries no key, and nothing is ever wrapped to the identity
    key it registered with. Once the key lands, the share follows, wrapped to that key, and
    w3 serves."""
    mark = len(net.egress)
    net.start("w3")
    w3 = net.addresses["w3"]
    net.withhold = lambda m: m.origin == w3 and m.topic == topics.TOPIC_WORKER_KEY
    net.settle()
    assert net.withheld and net.ledger.endorsed(w3)
    net.ledger.add_cluster_worker(b"c1".ljust(32, b"\x00"), w3)
    net.settle()
    assert _keyed_shares(net, w3, mark) == []
    net.withhold = None
    for message in net.withheld:
        net.ledger.post(message)
    net.settle()
    assert _keyed_shares(net, w3, mark) == [_epoch(net)]
    assert _serves(net, "w3")


def test_a_registration_with_an_unreadable_api_url_halts_no_core(net: EnclaveNetwork) -> None:
    """Vyper stores a ``String`` without checking UTF-8, so anyone can register an API URL of
    invalid bytes. Every core still applies that block (it reads the URL leniently), stays on
    chain and keeps serving: a strict decode here would halt every worker of the network."""
    import types

    w2 = net.hosts["w2"].enclave.registration(b"\x0b" * 20)
    forged = types.SimpleNamespace(
        **{field.name: getattr(w2, field.name) for field in dataclasses.fields(w2)}
    )
    forged.api_url = b"http://\xff\xfe.example/"
    head = net.hosts["w1"].enclave.status().head
    assert head is not None
    net.ledger.register_worker(forged)
    net.settle()
    for name in ("w1", "w2"):
        after = net.hosts[name].enclave.status().head
        assert after is not None and after.number > head.number
    assert _serves(net, "w1")
