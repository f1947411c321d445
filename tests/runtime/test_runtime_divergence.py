"""Replicas compared on chain: members post keyed state commitments for the same heights, the
Registry's majority verdict names a replica whose state differs, and that replica gets no key."""

from __future__ import annotations

import pytest

from veilnet.protocol import envelopes as proto
from veilnet.protocol import events as ev
from veilnet.protocol.errors import StateDiverged
from veilnet.sandbox import AgentRuntime
from veilnet.testing import Network, cluster_id_of, query_core

from .conftest import ALICE, counted

C1 = cluster_id_of("c1")
INTERVAL = 4


@pytest.fixture
def net(engine: AgentRuntime) -> Network:
    network = Network(engine=engine, commitment_interval=INTERVAL)
    network.bootstrap(workers=("w1", "w2", "w3"))
    return network


def _verdicts(net: Network) -> list[ev.ReplicaDiverged]:
    """``ReplicaDiverged`` events with a majority behind them (a report of a split is not)."""
    return [
        event
        for block in net.ledger.blocks
        for event in block.events
        if isinstance(event, ev.ReplicaDiverged) and any(event.majority)
    ]


def test_honest_replicas_agree_at_every_height(net: Network) -> None:
    counted(net)
    for _ in range(3 * INTERVAL):
        net.step()
    reported = [e for b in net.ledger.blocks for e in b.events if isinstance(e, ev.ReplicaDiverged)]
    assert reported == []
    verdicts = {height for (cluster, height) in net.ledger.verdicts if cluster == C1}
    assert len(verdicts) >= 3 and all(height % INTERVAL == 0 for height in verdicts)
    # each verdict had all three members behind it
    for (cluster, height), posted in net.ledger.commitments.items():
        if cluster == C1 and height in verdicts:
            assert len(set(posted.values())) == 1


def test_a_diverged_replica_is_named_de_endorsed_and_keyed_out(net: Network) -> None:
    """w2's state is changed behind its cluster's back (a bug, a bit flip, a tampered core):
    its next commitment differs, the two others make the verdict, and the Registry names w2.
    Every core de-endorses it, the cluster moves to an epoch w2 is not given, and w2 refuses
    queries with a typed error."""
    contract = counted(net)
    w2 = net.cores["w2"]
    w2._core.state.runtimes[contract].state.apply({"count": b"41"})  # only w2's copy
    epoch = net.cores["w1"].clusters[C1].current_epoch
    for _ in range(2 * INTERVAL):
        net.step()
    net.settle()
    (verdict,) = _verdicts(net)
    assert verdict.worker == w2.address and verdict.cluster_id == C1
    assert verdict.height % INTERVAL == 0 and any(verdict.majority)
    assert verdict.commitment != verdict.majority
    assert net.ledger.workers[w2.address].confidence == 0
    for name in ("w1", "w3", "gk"):
        assert net.cores[name].workers[w2.address].confidence == 0
    assert net.cores["w1"].clusters[C1].current_epoch == epoch + 1
    assert (C1, epoch + 1) not in w2.keys.cluster_keys
    assert w2.diverged_at == verdict.height
    with pytest.raises(StateDiverged) as info:
        query_core(net, ALICE, contract, {}, worker="w2")
    assert info.value.details == {"height": verdict.height}
    # the others go on, at the new epoch, and agree from then on
    assert query_core(net, ALICE, contract, {}, worker="w1")["result"]["count"] == 1
    net.command(ALICE, contract, {"by": 2}, nonce=2)
    for _ in range(2 * INTERVAL):
        net.step()
    assert len(_verdicts(net)) == 1


def test_a_query_answer_carries_the_commitment_its_members_post(net: Network) -> None:
    """The state commitment in a signed answer is the cluster commitment the worker posts for
    that height, so a client can compare it with the Registry's verdict."""
    contract = counted(net)
    while net.cores["w1"].head.number % INTERVAL != 0:
        net.step()
    answer_raw = _raw_answer(net, contract)
    response = proto.QueryResponse.from_bytes(answer_raw)
    assert response.state_commitment == net.cores["w1"].cluster_commitment(C1)
    for _ in range(2):
        net.step()
    assert net.ledger.verdicts[(C1, response.block_number)] == response.state_commitment


def _raw_answer(net: Network, contract: bytes) -> bytes:
    from veilnet.crypto import SecretKey
    from veilnet.testing.network import certified_query

    request, _ = certified_query(
        net,
        ALICE,
        contract,
        ephemeral=SecretKey.derive(b"\x61" * 32, "e"),
        request_id=b"\x03" * 32,
        kind="call",
        body=b"{}",
    )
    return net.cores["w1"].query(request)
