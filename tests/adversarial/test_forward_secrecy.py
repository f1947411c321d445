"""Forward secrecy against a host that keeps everything and later learns a worker's identity key:
checkpoints it stored and key shares it saw on chain stay closed to it."""

from __future__ import annotations

import pytest

from veilnet.codec import decode
from veilnet.crypto import EnvelopeInvalid, SecretKey, UnsupportedVersion, open_key_envelope
from veilnet.protocol import topics
from veilnet.runtime import EnclaveCore
from veilnet.runtime.checkpoints import restore_into, seal_identity, split_checkpoint
from veilnet.runtime.clusters import cluster_binding
from veilnet.runtime.errors import CheckpointInvalid
from veilnet.sandbox import AgentRuntime
from veilnet.tee.dev import DevEnclave
from veilnet.testing import Network
from veilnet.testing.network import NETWORK_SEED, TEST_TIME, SeededPlatform, cluster_id_of

C1 = cluster_id_of("c1")


@pytest.fixture
def net(network: Network) -> Network:
    return network


def _thief_core(net: Network, victim: EnclaveCore, identity: SecretKey) -> EnclaveCore:
    """A core the thief boots on a machine of its own, with the identity it learned."""
    enclave = DevEnclave(
        NETWORK_SEED + b"-thief", allow_insecure_dev_tee=True, collateral_issued_at=TEST_TIME
    )
    platform = SeededPlatform(enclave, seed=b"thief")
    return EnclaveCore.boot(
        config=victim.config,
        platform=platform,
        engine=victim.engine,
        verifier=victim.verifier,
        sealed_identity=seal_identity(identity, platform, victim.config),
    )


def test_a_leaked_identity_opens_no_checkpoint_the_host_kept(net: Network) -> None:
    """The host stored w1's checkpoints, then learned w1's identity key. The thief's own core,
    holding that identity, cannot open them: each checkpoint is sealed under a key drawn for
    it alone and sealed to w1's platform, nothing derived from the identity."""
    victim = net.cores["w1"]
    kept = victim.checkpoint()
    thief = _thief_core(net, victim, victim.keys.identity)
    assert thief.address == victim.address  # the identity really is w1's
    _, key, body = split_checkpoint(kept)
    with pytest.raises(CheckpointInvalid):
        restore_into(thief._core, key, body)
    # w1's own platform still opens it: the refusal is about who holds the key
    restored = EnclaveCore.restore(
        kept,
        config=victim.config,
        platform=victim.platform,
        engine=victim.engine,
        verifier=victim.verifier,
    )
    assert restored.state_root() == victim.state_root()


def test_checkpoint_keys_rotate(net: Network) -> None:
    """Two checkpoints of one state are sealed under two keys: neither key opens the other."""
    core = net.cores["w1"]
    _, key1, body1 = split_checkpoint(core.checkpoint())
    _, key2, body2 = split_checkpoint(core.checkpoint())
    assert key1 != key2 and body1 != body2
    fresh = EnclaveCore.boot(
        config=core.config,
        platform=core.platform,
        engine=core.engine,
        verifier=core.verifier,
        sealed_identity=core.sealed_identity(),
    )
    with pytest.raises(CheckpointInvalid):
        restore_into(fresh._core, key2, body1)


def _shares_to(net: Network, member: bytes) -> list[tuple[int, int, bytes]]:
    """(epoch, key number, envelope) of every cluster-key share posted to ``member``."""
    out = []
    for message in net.posted:
        if message.topic == topics.TOPIC_CLUSTER_KEY_SHARE:
            _, target, shares, *_ = decode(message.payload)  # type: ignore[misc]
            if target == member:
                out += [(int(e), int(i), w) for e, i, w in shares]  # type: ignore[attr-defined]
    return out


def _opens(key: SecretKey, envelope: bytes, core: EnclaveCore, epoch: int) -> bool:
    binding = cluster_binding(core._core, core.address, C1, epoch)
    try:
        open_key_envelope(key, envelope, binding=binding)
    except (EnvelopeInvalid, UnsupportedVersion):
        return False
    return True


def test_a_leaked_worker_opens_no_share_whose_window_passed(net: Network) -> None:
    """The host recorded every cluster-key share posted to w1; two epochs later, past the key
    window, it learns everything w1's core holds (identity and every key). No share of the
    first two epochs opens under any of it: shares go to per-epoch encryption keys, never to
    the identity, and each is destroyed a window after its successor lands."""
    w1 = net.cores["w1"]
    for _ in range(2):  # two new epochs (a master-key rotation re-keys every cluster)
        net.ledger.lock_rotation()
        net.settle()
    shares = _shares_to(net, w1.address)
    # one key per epoch: epoch e is wrapped to key e, and key 4 waits for the next epoch
    assert [(e, i) for e, i, _ in shares] == [(1, 1), (2, 2), (3, 3)]
    assert w1.workers[w1.address].encryption_index == 4
    # right after, each share opens under the key w1 holds: w1 really is the recipient
    assert _opens(w1.keys.encryption[3], shares[-1][2], w1, 3)
    for _ in range(net.key_window_blocks + 2):
        net.step()
    assert sorted(w1.keys.encryption) == [4]  # the earlier ones exist nowhere
    everything = [w1.keys.identity, *w1.keys.encryption.values()]
    for epoch, _, envelope in shares:
        assert not any(_opens(key, envelope, w1, epoch) for key in everything)


def test_no_key_is_wrapped_before_a_worker_publishes_an_encryption_key(
    engine: AgentRuntime,
) -> None:
    """A host that withholds its worker's encryption-key publication gets its worker no key:
    the share posted at its joining is empty. Once the key lands, the share follows, wrapped
    to it; nothing is ever wrapped to the identity key the worker registered with."""
    net = Network(engine=engine)
    net.bootstrap(workers=("w1",), clusters={"c1": ["w1"]})
    w2 = net.register("w2")
    net.withhold = lambda m: m.origin == w2.address and m.topic == topics.TOPIC_WORKER_KEY
    net.settle()
    withheld = net.withheld
    assert withheld and net.ledger.endorsed(w2.address)
    net.ledger.add_cluster_worker(C1, w2.address)
    net.settle()
    assert _shares_to(net, w2.address) == []
    assert w2.keys.cluster_key(C1, 1) is None
    net.withhold = None
    assert net._post(withheld[0])
    net.settle()
    shares = _shares_to(net, w2.address)
    assert [(e, i) for e, i, _ in shares] == [(1, 1)]
    assert not _opens(w2.keys.identity, shares[0][2], w2, 1)
    assert w2.keys.cluster_key(C1, 1) is not None


def test_a_late_joiner_gets_no_epoch_from_before_its_join(engine: AgentRuntime) -> None:
    """A worker joins a cluster with history after two rotations, its encryption key held
    back by its host until after the join (so the gatekeeper then owes it "every epoch"). It
    gets the epoch keyed for its join and later ones, never one that protected what was sent
    before it joined: the state comes by snapshot instead."""
    net = Network(engine=engine, commitment_interval=4)
    net.bootstrap()
    contract = net.deploy(
        SecretKey.derive(b"\x77" * 32, "owner"), "py", b"def handle(c):\n    return 1\n"
    )
    net.settle()
    for _ in range(2):
        net.ledger.lock_rotation()
        net.settle()
    before = net.cores["w1"].clusters[C1].current_epoch
    assert before == 3 and contract in net.cores["w1"].runtimes
    w3 = net.register("w3")
    net.withhold = lambda m: m.origin == w3.address and m.topic == topics.TOPIC_WORKER_KEY
    net.settle()
    net.ledger.add_cluster_worker(C1, w3.address)
    net.settle()
    net.withhold = None
    for message in net.withheld:
        assert net._post(message)
    net.settle()
    assert sorted({e for e, _, _ in _shares_to(net, w3.address)}) == [before + 1]
    assert {e for c, e in w3.keys.cluster_keys if c == C1} == {before + 1}
    for _ in range(12):
        net.step()
    assert w3.snapshot_due is None and contract in w3.runtimes


def test_a_gatekeeper_holds_no_past_master_once_its_window_passed(net: Network) -> None:
    """Two rotations, then the key window: a thief who then learns everything the gatekeeper's
    core holds (identity, masters, proposals, cluster keys) derives no key of the epochs made
    under the past masters. Right after a rotation the old master is still kept (its epochs
    may still be used within the window)."""
    gk = net.cores["gk"]
    net.ledger.lock_rotation()
    net.settle()
    assert sorted(gk.keys.masters) == [0, 1]  # within the window
    net.ledger.lock_rotation()
    net.settle()
    for _ in range(net.key_window_blocks + 2):
        net.step()
    assert sorted(gk.keys.masters) == [2]
    epochs = gk.clusters[C1].epochs
    past = {e: info.key_address for e, info in epochs.items() if e < max(epochs)}
    assert past
    held = [*gk.keys.masters.values(), *gk.keys.proposals.values(), gk.keys.identity]
    for epoch, address in past.items():
        derived = {k.child("cluster", C1, epoch).address.raw for k in held}
        assert address not in derived
        assert all(key.address.raw != address for key in gk.keys.cluster_keys.values())
