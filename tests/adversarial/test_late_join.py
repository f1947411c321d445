"""Late join by snapshot against real cores, driven as a malicious host or faulty member would:
no answer before a checked snapshot, and every snapshot that is not the cluster's is refused."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from veilnet.crypto import SecretKey
from veilnet.protocol import envelopes as proto
from veilnet.protocol.errors import NotReady, SnapshotRefused
from veilnet.sandbox import AgentRuntime
from veilnet.testing import Network, cluster_id_of, query_core
from veilnet.testing.adversary import EnclaveNetwork, dev_enclave_config

C1 = cluster_id_of("c1")
INTERVAL = 4
COUNTER = Path(__file__).resolve().parents[2] / "examples" / "agents" / "counter.py"
OWNER = SecretKey.derive(b"\x77" * 32, "owner")
ALICE = SecretKey.derive(b"\x77" * 32, "alice")


def counted(net: Network) -> bytes:
    """A counter agent in c1, at count 1 after one command of ALICE (nonce 1)."""
    contract = net.deploy(OWNER, "py", COUNTER.read_bytes(), init={"start": 0})
    net.command(ALICE, contract, {"by": 1}, nonce=1)
    net.settle()
    return contract


def _history(net: EnclaveNetwork) -> None:
    owner = b"\x0a" * 20
    contract = net.ledger.deploy_contract(
        sender=owner,
        salt=b"\x01" * 32,
        cluster_id=C1,
        code=proto.pack_code("py", b"def handle(c):\n    return 1\n"),
    )
    net.settle()
    net.ledger.push_command(contract, b"\x00" * 64, sender=owner)  # the cluster has history now
    net.settle()


@pytest.fixture
def processes() -> Iterator[EnclaveNetwork]:
    with EnclaveNetwork(dev_enclave_config(commitment_interval=INTERVAL)) as network:
        network.bootstrap(workers=("w1", "w2"))
        _history(network)
        yield network


def _commitment(net: EnclaveNetwork, name: str) -> bytes | None:
    (cluster,) = net.hosts[name].enclave.status().clusters
    return cluster.state_commitment


@pytest.mark.slow
def test_a_host_that_withholds_the_snapshot_gets_nothing_signed_until_one_arrives(
    processes: EnclaveNetwork,
) -> None:
    """The joiner's host never fetches a snapshot: its core answers no query (before even
    reading it) and commits to nothing. Handed a member's snapshot, it takes it and from then
    on commits to what the members commit to."""
    net = processes
    net.start("w3")
    net.settle()
    net.ledger.add_cluster_worker(C1, net.addresses["w3"])
    for _ in range(3 * INTERVAL):
        net.step()
    joiner = net.hosts["w3"].enclave
    with pytest.raises(NotReady, match="snapshot"):
        joiner.query(b"\x01" * 64)
    assert _commitment(net, "w3") is None
    synced = joiner.sync(net.hosts["w1"].enclave.snapshot(net.addresses["w3"]))
    assert synced.height % INTERVAL == 0
    net.settle()
    assert _commitment(net, "w3") == _commitment(net, "w1") is not None


@pytest.mark.slow
def test_a_snapshot_sealed_to_another_joiner_is_refused(processes: EnclaveNetwork) -> None:
    """Two workers join; the host of one hands it the snapshot a member sealed to the other.
    It does not open there; the worker still waits, and its own snapshot is then taken."""
    net = processes
    for name in ("w3", "w4"):
        net.start(name)
    net.settle()
    for name in ("w3", "w4"):
        net.ledger.add_cluster_worker(C1, net.addresses[name])
    for _ in range(3 * INTERVAL):
        net.step()
    member = net.hosts["w1"].enclave
    with pytest.raises(SnapshotRefused) as refused:
        net.hosts["w3"].enclave.sync(member.snapshot(net.addresses["w4"]))
    assert refused.value.details["reason"] == "sealed"
    assert net.hosts["w3"].enclave.status().clusters[0].state_commitment is None
    net.hosts["w3"].enclave.sync(member.snapshot(net.addresses["w3"]))


# ---- the checks one by one, on in-process cores --------------------------------------------


@pytest.fixture
def net(engine: AgentRuntime) -> Network:
    network = Network(engine=engine, commitment_interval=INTERVAL, ferry_snapshots=False)
    network.bootstrap()
    return network


def _join(net: Network, name: str) -> Any:
    joiner = net.register(name)
    net.settle()
    net.ledger.add_cluster_worker(C1, joiner.address)
    net.step()
    assert joiner.snapshot_due == C1
    return joiner


def _step_until(net: Network, done: Callable[[], bool], limit: int = 40) -> None:
    for _ in range(limit):
        if done():
            return
        net.step()
    raise AssertionError("never happened")


def _verdict_for_capture(net: Network, joiner: Any) -> int:
    """Step until w1 captured a height the joiner holds a verdict for; that height."""
    w1 = net.cores["w1"]

    def ready() -> bool:
        captured = w1.state.snapshots.get(C1)
        return captured is not None and (C1, captured[0]) in joiner.state.verdicts

    _step_until(net, ready)
    height: int = w1.state.snapshots[C1][0]
    return height


def _refused(joiner: Any, blob: bytes) -> str:
    with pytest.raises(SnapshotRefused) as refused:
        joiner.import_snapshot(blob)
    assert joiner.snapshot_due == C1  # nothing changed
    reason: str = refused.value.details["reason"]
    return reason


def test_a_snapshot_unlike_the_verdict_is_refused_and_changes_nothing(net: Network) -> None:
    """A faulty member's core captured a state that differs from its cluster's (one entry of
    the counter). Sealed to the joiner it opens, but its commitment is not the majority's:
    refused, nothing taken. The other member's snapshot is then taken."""
    contract = counted(net)
    w3 = _join(net, "w3")
    height = _verdict_for_capture(net, w3)
    w1 = net.cores["w1"]
    _, plain = w1.state.snapshots[C1]
    kv = plain["runtimes"][0][1]["kv"]
    forged = {**plain, "runtimes": [[contract, {**plain["runtimes"][0][1], "kv": [*kv]}]]}
    forged["runtimes"][0][1]["kv"][0] = (kv[0][0], b"999")
    w1.state.snapshots[C1] = (height, forged)
    root = w3.state_root()
    assert _refused(w3, w1.export_snapshot(w3.address)) == "verdict"
    assert contract not in w3.runtimes and w3.state_root() == root
    assert w3.import_snapshot(net.cores["w2"].export_snapshot(w3.address))[0] == height
    assert w3.runtimes[contract].state.values == net.cores["w2"].runtimes[contract].state.values


def test_a_snapshot_of_a_height_without_a_verdict_is_refused(net: Network) -> None:
    """Members capture at a commitment height before their commitments land: a snapshot of
    that height has nothing on chain to be checked against yet."""
    counted(net)
    w3 = _join(net, "w3")
    w1 = net.cores["w1"]
    _step_until(net, lambda: C1 in w1.state.snapshots)
    height = w1.state.snapshots[C1][0]
    assert (C1, height) not in w3.state.verdicts
    assert _refused(w3, w1.export_snapshot(w3.address)) == "no_verdict"


def test_a_snapshot_from_before_the_join_is_refused(net: Network) -> None:
    """w3 syncs slowly; w4 joins after a height already captured and judged. A member still
    holding that capture seals it to w4: its state is from before w4's join (w4 applied
    events of the cluster since that the snapshot does not hold), so w4 refuses it."""
    counted(net)
    w4 = net.register("w4")
    w3 = _join(net, "w3")
    height = _verdict_for_capture(net, w3)
    net.ledger.add_cluster_worker(C1, w4.address)
    net.step()
    assert w4.state.snapshot_due[C1] > height
    assert net.cores["w1"].state.snapshots[C1][0] == height
    assert _refused(w4, net.cores["w1"].export_snapshot(w4.address)) == "height"


def test_bytes_that_are_no_snapshot_are_refused(net: Network) -> None:
    counted(net)
    w3 = _join(net, "w3")
    for junk in (b"", b"\x01" * 64, bytes(200)):
        assert _refused(w3, junk) == "malformed"


def test_a_worker_that_waits_for_no_snapshot_refuses_one(net: Network) -> None:
    """A member (not syncing) handed another joiner's snapshot takes nothing."""
    counted(net)
    w3 = _join(net, "w3")
    _verdict_for_capture(net, w3)
    blob = net.cores["w1"].export_snapshot(w3.address)
    with pytest.raises(SnapshotRefused) as refused:
        net.cores["w2"].import_snapshot(blob)
    assert refused.value.details["reason"] == "not_due"


def test_after_the_snapshot_the_joiner_answers_like_the_members(net: Network) -> None:
    contract = counted(net)
    w3 = _join(net, "w3")
    net.command(ALICE, contract, {"by": 2}, nonce=2)  # held back by w3
    _verdict_for_capture(net, w3)
    net.ferry_snapshots = True
    net.settle()
    assert w3.snapshot_due is None
    assert query_core(net, ALICE, contract, {}, worker="w3")["result"]["count"] == 3


def test_commitments_from_outside_the_cluster_count_in_no_verdict(net: Network) -> None:
    """Two endorsed workers that are not members of the cluster post the same made-up
    commitment for a height before its members do (their hosts held the members' posts back).
    Every core counts only members: the verdict is the members' value, and the joiner takes
    an honest snapshot (counting the outsiders, it would refuse every honest one)."""
    from veilnet.codec import abi_decode, abi_encode
    from veilnet.crypto import Address, Domain, sign_typed
    from veilnet.protocol import topics
    from veilnet.protocol.egress import EGRESS_TYPE, EgressMessage

    counted(net)
    outsiders = [net.register(name) for name in ("w3", "w4")]
    net.settle()
    w1, w2 = net.cores["w1"], net.cores["w2"]
    members = {w1.address, w2.address}
    joiner = _join(net, "w5")
    net.withhold = lambda m: m.topic == topics.TOPIC_STATE_COMMITMENT and m.origin in members
    _step_until(net, lambda: bool(net.withheld))  # the members' posts for one height, held
    height = w1.state.snapshots[C1][0]
    domain = Domain(chain_id=net.ledger.chain_id, verifying_contract=Address(net.ledger.bus))
    payload = abi_encode(["bytes32", "uint64", "bytes32"], [C1, height, b"\x66" * 32])
    for outsider in outsiders:
        seq = net.ledger.next_seq.get(outsider.address, 0)
        values = {
            "origin": Address(outsider.address),
            "seq": seq,
            "topic": topics.TOPIC_STATE_COMMITMENT,
            "payload": payload,
        }
        signature = sign_typed(outsider.keys.identity, domain, EGRESS_TYPE, values)
        assert net._post(
            EgressMessage(
                origin=outsider.address,
                seq=seq,
                topic=topics.TOPIC_STATE_COMMITMENT,
                payload=payload,
                signature=signature,
            )
        )
    net.step()  # the outsiders' posts land first
    net.withhold = None
    for message in net.withheld:
        net._post(message)
    _step_until(net, lambda: (C1, height) in joiner.state.verdicts)
    honest = {
        abi_decode(["bytes32", "uint64", "bytes32"], m.payload)[2]
        for m in net.withheld
        if abi_decode(["bytes32", "uint64", "bytes32"], m.payload)[1] == height
    }
    assert joiner.state.verdicts[(C1, height)] in honest
    assert joiner.import_snapshot(w1.export_snapshot(joiner.address))[0] == height
