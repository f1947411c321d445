"""Master-key rotation and cluster key epochs while commands keep flowing."""

from __future__ import annotations

from veilnet.sandbox import AgentRuntime
from veilnet.testing import Network, cluster_id_of

from .conftest import ALICE, EXAMPLES, OWNER, outcomes


def _rotate_under_load(net: Network, contract: bytes, start_nonce: int) -> tuple[int, int]:
    """Lock a rotation and send a command every block until the contract is on a new epoch."""
    nonce = start_nonce
    lock_block = net.ledger.head.number + 1
    net.ledger.lock_rotation()
    start_epoch = net.contract_key_info(contract)[1]
    for _ in range(20):
        net.command(ALICE, contract, {"by": 1}, nonce=nonce)
        nonce += 1
        net.step()
        if net.contract_key_info(contract)[1] > start_epoch:
            break
    net.settle()
    keyed = max(
        b.header.number
        for b in net.ledger.blocks
        for e in b.events
        if type(e).__name__ == "ClusterKeySet"
    )
    return keyed - lock_block + 1, nonce


def test_rotation_with_zero_failed_commands(engine: AgentRuntime) -> None:
    net = Network(engine=engine, key_window_blocks=20)
    net.bootstrap(workers=("w1", "w2", "w3"), clusters={"c1": ["w1", "w2"], "c2": ["w3"]})
    a = net.deploy(
        OWNER, "py", (EXAMPLES / "counter.py").read_bytes(), cluster="c1", salt=b"\x01" * 32
    )
    b = net.deploy(
        OWNER, "py", (EXAMPLES / "counter.py").read_bytes(), cluster="c2", salt=b"\x02" * 32
    )
    blocks, nonce = _rotate_under_load(net, a, 1)
    gk, w1, w2, w3 = (net.cores[n] for n in ("gk", "w1", "w2", "w3"))
    assert gk.state.master is not None and gk.state.master.rotation == 1
    assert blocks <= 4
    for core, cluster in ((w1, "c1"), (w2, "c1"), (w3, "c2")):
        assert core.clusters[cluster_id_of(cluster)].current_epoch == 2
    assert net.contract_key_info(a)[1] == net.contract_key_info(b)[1] == 2
    assert all(o.ok for o in outcomes(net, a).values())
    count = int(w1.runtimes[a].state.values["count"])
    assert count == nonce - 1
    assert w1.state_root() == w2.state_root()
    assert not any(c.diverged for c in net.cores.values()) and net.ledger.rejected == []


def test_old_epoch_accepted_in_window_then_rejected(engine: AgentRuntime) -> None:
    net = Network(engine=engine, key_window_blocks=10)
    net.bootstrap()
    contract = net.deploy(OWNER, "py", (EXAMPLES / "counter.py").read_bytes())
    old_public, old_epoch = net.contract_key_info(contract)
    _, nonce = _rotate_under_load(net, contract, 1)
    seq = net.command(ALICE, contract, {"by": 1}, nonce=nonce, epoch=old_epoch, public=old_public)
    net.settle()
    assert outcomes(net, contract)[seq].ok
    for _ in range(12):
        net.step()
    seq = net.command(
        ALICE, contract, {"by": 1}, nonce=nonce + 1, epoch=old_epoch, public=old_public
    )
    net.settle()
    assert outcomes(net, contract)[seq].error.code == "runtime_key_epoch_expired"
    # the old key is destroyed, not merely refused
    assert (cluster_id_of("c1"), old_epoch) not in net.cores["w1"].keys.cluster_keys
    seq = net.command(ALICE, contract, {"by": 1}, nonce=nonce + 2)
    net.settle()
    assert outcomes(net, contract)[seq].ok


def test_two_rotations_in_a_row(engine: AgentRuntime) -> None:
    net = Network(engine=engine)
    net.bootstrap()
    contract = net.deploy(OWNER, "js", (EXAMPLES / "counter.js").read_bytes())
    _, nonce = _rotate_under_load(net, contract, 1)
    _, nonce = _rotate_under_load(net, contract, nonce)
    assert net.contract_key_info(contract)[1] == 3
    assert net.cores["gk"].state.master.rotation == 2  # type: ignore[union-attr]
    assert all(o.ok for o in outcomes(net, contract).values())


def test_second_gatekeeper_gets_history_and_joins_rotation(engine: AgentRuntime) -> None:
    net = Network(engine=engine)
    net.bootstrap()
    contract = net.deploy(OWNER, "py", (EXAMPLES / "counter.py").read_bytes())
    gk2 = net.register("gk2")
    net.settle()
    net.ledger.add_gatekeeper(gk2.address)
    net.settle()
    gk = net.cores["gk"]
    assert gk2.keys.masters[0].address == gk.keys.masters[0].address
    _rotate_under_load(net, contract, 1)
    assert (
        gk.state.master == gk2.state.master
        and gk.state.master is not None
        and gk.state.master.rotation == 1
    )
    assert gk2.keys.masters[1].address.raw == gk.state.master.key_address
    assert (
        len(
            [
                e
                for b in net.ledger.blocks
                for e in b.events
                if type(e).__name__ == "RotationConfirmed"
            ]
        )
        == 2
    )
    assert all(o.ok for o in outcomes(net, contract).values())
