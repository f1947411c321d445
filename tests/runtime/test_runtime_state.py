"""The one replicated-state object: each field's scope decides, by itself, whether it is in the
state root, in checkpoints, or only rolled back with a failed block."""

from __future__ import annotations

from veilnet.runtime import EnclaveCore
from veilnet.runtime.replicated import LOCAL, REPLICATED, TRANSIENT, fields_in
from veilnet.testing import Network


def _restore(network: Network, core: EnclaveCore) -> EnclaveCore:
    assert network.config is not None
    return EnclaveCore.restore(
        core.checkpoint(),
        config=network.config,
        platform=network.platforms["w1"],
        engine=network.engine,
        verifier=network.verifier(),
    )


def test_every_field_has_exactly_one_scope() -> None:
    replicated = {f.name for f in fields_in(REPLICATED)}
    local = {f.name for f in fields_in(LOCAL)}
    transient = {f.name for f in fields_in(TRANSIENT)}
    assert not (replicated & local or replicated & transient or local & transient)
    assert {"head", "workers", "clusters", "contracts", "runtimes"} <= replicated
    assert {"buffered", "snapshot_due"} <= local
    assert {"diverged", "snapshots"} <= transient


def test_replicated_fields_move_the_root_local_and_transient_ones_do_not(
    network: Network,
) -> None:
    core = network.cores["w1"]
    root = core.state_root()
    core.state.snapshot_due[b"c" * 32] = 7  # LOCAL
    core.state.diverged.append("seen")  # TRANSIENT
    assert core.state_root() == root
    core.state.measurements.add(b"\x42" * 32)  # REPLICATED
    assert core.state_root() != root


def test_checkpoints_keep_local_fields_and_drop_transient_ones(network: Network) -> None:
    core = network.cores["w1"]
    core.state.snapshot_due[b"c" * 32] = 7
    core.state.diverged.append("seen")
    restored = _restore(network, core)
    assert restored.state_root() == core.state_root()
    assert restored.state.snapshot_due == {b"c" * 32: 7}
    assert restored.state.diverged == []
    assert restored.state.workers == core.state.workers
    assert restored.state.clusters == core.state.clusters
    assert restored.state.rotation == core.state.rotation


def test_the_commitment_kept_between_blocks_equals_one_computed_afresh(network: Network) -> None:
    """Cluster commitments reuse per-contract digests between blocks; after every kind of
    change (a deploy, commands, a rolled-back block's worth of writes) they equal a commitment
    computed from nothing, and they change whenever the state does."""
    from pathlib import Path

    from veilnet.crypto import SecretKey
    from veilnet.testing import cluster_id_of

    c1 = cluster_id_of("c1")
    core = network.cores["w1"]
    owner = SecretKey.derive(b"\x77" * 32, "owner")
    counter = Path(__file__).resolve().parents[2] / "examples" / "agents" / "counter.py"

    def fresh() -> bytes | None:
        core._core.record_digests.clear()
        for runtime in core.runtimes.values():
            runtime._meta = None
        return core.cluster_commitment(c1)

    seen = [core.cluster_commitment(c1)]
    contract = network.deploy(owner, "py", counter.read_bytes(), init={"start": 0})
    network.settle()
    for step in range(3):
        kept = core.cluster_commitment(c1)
        assert kept == fresh() and kept not in seen
        seen.append(kept)
        network.command(owner, contract, {"by": step + 1}, nonce=step + 1)
        network.settle()
