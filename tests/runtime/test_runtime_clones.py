"""One worker identity run twice: both copies post heartbeats, the Registry flags the identity,
and from then on no copy answers queries and no gatekeeper wraps it a key."""

from __future__ import annotations

import pytest

from veilnet.protocol import events as ev
from veilnet.protocol.errors import IdentityFlagged
from veilnet.sandbox import AgentRuntime
from veilnet.testing import Network, cluster_id_of


def test_two_live_copies_of_one_identity_are_flagged_and_cut_off(engine: AgentRuntime) -> None:
    net = Network(engine=engine, heartbeat_interval=3)
    net.bootstrap()
    original = net.cores["w1"]
    clone = net.add_core("w1-copy", sealed_identity=original.sealed_identity())
    assert clone.address == original.address and clone.boot_id != original.boot_id
    for _ in range(12):
        net.step()
    flagged = [e for b in net.ledger.blocks for e in b.events if isinstance(e, ev.WorkerFlagged)]
    assert [e.worker for e in flagged] == [original.address]
    assert net.ledger.flagged == {original.address: 1}
    for core in net.cores.values():  # every replica knows
        assert original.address in core.state.flagged
    for core in (original, clone):
        with pytest.raises(IdentityFlagged):
            core.query(b"\x01" * 64)
    # a rotation re-keys the cluster: the other member gets the new epoch, the flagged one not
    c1 = cluster_id_of("c1")
    epoch = net.cores["w2"].state.clusters[c1].current_epoch
    net.ledger.lock_rotation()
    net.settle()
    assert net.cores["w2"].state.clusters[c1].current_epoch == epoch + 1
    assert net.cores["w2"].keys.cluster_key(c1, epoch + 1) is not None
    assert original.keys.cluster_key(c1, epoch + 1) is None
    assert clone.keys.cluster_key(c1, epoch + 1) is None


def test_a_restart_with_a_new_boot_id_is_not_a_clone(engine: AgentRuntime) -> None:
    net = Network(engine=engine, heartbeat_interval=3)
    net.bootstrap()
    for _ in range(6):
        net.step()
    old = net.cores.pop("w1")
    net.add_core("w1", sealed_identity=old.sealed_identity())  # the old process is gone
    for _ in range(12):
        net.step()
    assert net.ledger.flagged == {}
    boots = {
        e.boot_id
        for b in net.ledger.blocks
        for e in b.events
        if isinstance(e, ev.HeartbeatRecorded) and e.worker == old.address
    }
    assert boots == {old.boot_id, net.cores["w1"].boot_id}
