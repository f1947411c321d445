"""Endorsements expire with the collateral they were judged under: a member whose endorsement
lapses is keyed out; one that re-attests in time keeps serving; a refused re-attestation ends
the endorsement."""

from __future__ import annotations

import pytest

from veilnet.protocol import events as ev
from veilnet.protocol import limits
from veilnet.protocol.errors import NotReady
from veilnet.tee.constants import DEV_COLLATERAL_VALIDITY_S
from veilnet.testing import Network, cluster_id_of, query_core
from veilnet.testing.network import TEST_TIME

from .conftest import ALICE, counted

C1 = cluster_id_of("c1")
VALID_UNTIL = TEST_TIME - 3600 + DEV_COLLATERAL_VALIDITY_S
"""When the test network's dev collateral (issued an hour before genesis) expires."""


@pytest.fixture
def net(network: Network) -> Network:
    return network


def _warp_to(net: Network, when: int) -> None:
    """Move chain time so that the next block is at ``when`` (or just after)."""
    net.ledger.warp(max(0, when - net.ledger.now()))


def _endorsements(net: Network, worker: bytes) -> list[ev.WorkerEndorsed]:
    return [
        e
        for b in net.ledger.blocks
        for e in b.events
        if isinstance(e, ev.WorkerEndorsed) and e.worker == worker
    ]


def _reattest(net: Network, name: str, *, quote: bytes | None = None) -> None:
    """What a worker host does when its core says ``reattest_due``: the core signs
    ``reattest_worker`` with a fresh quote and fresh collateral; the chain takes it."""
    core = net.cores[name]
    request, _ = core.registration_transaction(
        b"\x0b" * 20,
        nonce=0,
        gas=1_000_000,
        max_fee_per_gas=1,
        max_priority_fee_per_gas=1,
        reattest=True,
    )
    net.ledger.reattest_worker(
        core.address, quote or request.quote, request.collateral_hash, request.attested_block
    )
    net.settle()


def test_every_endorsement_carries_the_collateral_expiry(net: Network) -> None:
    w1 = net.cores["w1"].address
    (endorsed,) = _endorsements(net, w1)
    assert endorsed.valid_until == VALID_UNTIL
    assert net.ledger.endorsed_until[w1] == VALID_UNTIL
    assert net.cores["gk"].workers[w1].valid_until == VALID_UNTIL


def test_a_lapsed_endorsement_keys_the_member_out(net: Network) -> None:
    """Nobody re-attests: at the first block past the expiry every core sees w1 (and w2)
    unendorsed, the gatekeeper keys the cluster at a new epoch wrapped to nobody unendorsed,
    and the workers stop serving; the chain refuses them as members too."""
    contract = counted(net)
    epoch = net.cores["w1"].clusters[C1].current_epoch
    _warp_to(net, VALID_UNTIL - 10)
    net.step()
    assert query_core(net, ALICE, contract, {})["result"]["count"] == 1  # still endorsed
    _warp_to(net, VALID_UNTIL)
    net.settle()
    for name in ("w1", "w2"):
        assert not net.cores["gk"]._core.endorsed(net.cores[name].address)
        assert (C1, epoch + 1) not in net.cores[name].keys.cluster_keys
        with pytest.raises(NotReady):
            query_core(net, ALICE, contract, {}, worker=name)
    assert net.cores["gk"].clusters[C1].current_epoch == epoch + 1
    assert not net.ledger.endorsed(net.cores["w1"].address)


def test_a_reattestation_in_time_extends_the_endorsement_and_keeps_the_epoch(
    net: Network,
) -> None:
    contract = counted(net)
    epoch = net.cores["w1"].clusters[C1].current_epoch
    _warp_to(net, VALID_UNTIL - limits.REATTEST_MARGIN_S - 100)
    net.step()
    assert not net.cores["w1"].reattest_due
    _warp_to(net, VALID_UNTIL - limits.REATTEST_MARGIN_S + 100)
    net.step()
    assert net.cores["w1"].reattest_due
    renewed = net.ledger.now() // 3600 * 3600
    net.platforms["w1"].collateral_at = renewed  # the collateral a host fetches now
    _reattest(net, "w1")
    w1 = net.cores["w1"].address
    latest = _endorsements(net, w1)[-1]
    assert latest.valid_until == renewed + DEV_COLLATERAL_VALIDITY_S > VALID_UNTIL
    assert not net.cores["w1"].reattest_due
    assert net.cores["gk"].clusters[C1].current_epoch == epoch  # no re-key: never unendorsed
    _warp_to(net, VALID_UNTIL + 100)
    net.settle()
    assert query_core(net, ALICE, contract, {}, worker="w1")["result"]["count"] == 1
    assert net.cores["gk"].workers[w1].valid_until == latest.valid_until


def test_a_refused_reattestation_ends_the_endorsement(net: Network) -> None:
    """The fresh quote does not verify (here: not a quote at all): the gatekeeper answers with
    confidence 0 rather than letting the old endorsement run on, and the member is keyed out."""
    contract = counted(net)
    epoch = net.cores["w1"].clusters[C1].current_epoch
    _reattest(net, "w1", quote=b"not a quote")
    w1 = net.cores["w1"].address
    latest = _endorsements(net, w1)[-1]
    assert (latest.confidence, latest.valid_until) == (0, 0)
    assert net.cores["gk"].clusters[C1].current_epoch == epoch + 1
    with pytest.raises(NotReady):
        query_core(net, ALICE, contract, {}, worker="w1")
    assert query_core(net, ALICE, contract, {}, worker="w2")["result"]["count"] == 1


def test_a_quote_is_judged_against_the_block_the_chain_recorded(net: Network) -> None:
    """A registration quote binds the hash of the core's head; the Registry records the hash
    of the block the transaction names. A host that names another block (to pass off a quote
    made long ago as recent) gets a registration no gatekeeper endorses."""
    import dataclasses

    core = net.add_core("w3")
    net.ledger.set_measurement(core.platform.measurement)
    request = core.registration(b"\x0b" * 20)
    assert request.attested_block == core.head.number
    net.step()
    net.ledger.register_worker(
        dataclasses.replace(request, attested_block=request.attested_block + 1)
    )
    net.settle()
    assert _endorsements(net, core.address) == []
    net.ledger.register_worker(core.registration(b"\x0b" * 20))
    net.settle()
    (endorsed,) = _endorsements(net, core.address)
    assert endorsed.confidence >= 1
