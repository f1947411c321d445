"""Keys only where they belong: gatekeepers wrap keys only to members endorsed at that block;
a removed, re-registered or revoked member moves its cluster to a new epoch and stops serving."""

from __future__ import annotations

import dataclasses

import pytest

from veilnet.codec import decode
from veilnet.crypto import Binding, SecretKey
from veilnet.protocol import envelopes as proto
from veilnet.protocol import events as ev
from veilnet.protocol import topics
from veilnet.protocol.egress import EgressMessage
from veilnet.protocol.errors import NotReady
from veilnet.sandbox import AgentRuntime
from veilnet.testing import Network, cluster_id_of, query_core

from .conftest import ALICE, OWNER, counted

C1 = cluster_id_of("c1")


@pytest.fixture
def net(network: Network) -> Network:
    return network


def _epoch(net: Network) -> int:
    return net.cores["w1"].clusters[C1].current_epoch


def _shares_to(net: Network, member: bytes, since: int) -> list[list[object]]:
    """The cluster-key shares the master origin posted to ``member`` from message ``since``."""
    out = []
    for message in net.posted[since:]:
        if message.topic == topics.TOPIC_CLUSTER_KEY_SHARE:
            _, target, shares, *_ = decode(message.payload)  # type: ignore[misc]
            if target == member:
                out.append(shares)
    return out


def _stopped(net: Network, name: str, contract: bytes) -> None:
    """``name`` holds no key of c1 up to its current epoch, no state, and answers no query."""
    core = net.cores[name]
    assert not [e for c, e in core.keys.cluster_keys if c == C1]
    assert contract not in core.runtimes
    with pytest.raises(NotReady):
        query_core(net, ALICE, contract, {}, worker=name)


def test_a_removed_member_moves_the_cluster_to_a_new_epoch_and_stops_serving(
    net: Network,
) -> None:
    contract = counted(net)
    before, mark = _epoch(net), len(net.posted)
    w2 = net.cores["w2"].address
    net.ledger.remove_cluster_worker(C1, w2)
    net.settle()
    assert _epoch(net) == before + 1
    assert net.cores["w1"].keys.cluster_key(C1, before + 1) is not None
    assert net.cores["w2"].keys.cluster_key(C1, before + 1) is None
    assert _shares_to(net, w2, mark) == []  # not even an empty message: not a member
    _stopped(net, "w2", contract)
    net.command(ALICE, contract, {"by": 2}, nonce=2)  # the cluster goes on without it
    net.settle()
    assert query_core(net, ALICE, contract, {})["result"]["count"] == 3


def test_a_reregistration_cannot_capture_the_next_cluster_key(net: Network) -> None:
    """The identity re-registers with a key of the attacker's: it leaves its cluster on chain,
    the cluster is re-keyed without it, and nothing is ever wrapped to the new key."""
    contract = counted(net)
    before, mark = _epoch(net), len(net.posted)
    w2 = net.cores["w2"]
    honest = w2.registration(operator=b"\x0b" * 20)
    attacker_key = b"\x66" * 32
    net.ledger.register_worker(dataclasses.replace(honest, hpke_key=attacker_key))
    net.settle()
    assert w2.address not in net.ledger.clusters[C1].members
    assert _epoch(net) == before + 1
    assert _shares_to(net, w2.address, mark) == []
    _stopped(net, "w2", contract)
    # a rotation re-keys every cluster again: still nothing for the re-registered identity
    mark = len(net.posted)
    net.ledger.lock_rotation()
    net.settle()
    assert _epoch(net) == before + 2
    assert _shares_to(net, w2.address, mark) == []


def test_a_revoked_measurement_re_keys_without_its_members(net: Network) -> None:
    """Every member runs the one dev measurement here: revoking it leaves no endorsed member,
    so the new epoch is wrapped to nobody and every member stops serving."""
    contract = counted(net)
    before, mark = _epoch(net), len(net.posted)
    measurement = net.cores["w1"].platform.measurement
    net.ledger.set_measurement(measurement, False)
    net.settle()
    assert _epoch(net) == before + 1
    for name in ("w1", "w2"):
        assert all(shares == [] for shares in _shares_to(net, net.cores[name].address, mark))
        assert net.cores[name].keys.cluster_key(C1, before + 1) is None
        _stopped(net, name, contract)


def test_a_flagged_member_is_re_keyed_out_at_once(net: Network) -> None:
    contract = counted(net)
    before = _epoch(net)
    w2 = net.cores["w2"].address
    net.ledger.pending.append(ev.WorkerFlagged(worker=w2, reason=1))
    net.ledger.flagged[w2] = 1
    net.settle()
    assert _epoch(net) == before + 1
    assert net.cores["w1"].keys.cluster_key(C1, before + 1) is not None
    assert net.cores["w2"].keys.cluster_key(C1, before + 1) is None
    assert contract not in net.cores["w2"].runtimes


def test_an_unendorsed_gatekeeper_gets_the_master_history_only_once_endorsed(
    net: Network,
) -> None:
    """The Registry refuses an unendorsed gatekeeper (but the genesis one); the core does not
    lean on that: a gatekeeper that got in unendorsed (an older Registry, say) gets nothing."""
    from veilnet.testing.ledger import Revert

    gk2 = net.add_core("gk2")
    net.ledger.register_worker(gk2.registration(operator=b"\x0b" * 20))
    with pytest.raises(Revert, match="gatekeeper not endorsed"):
        net.ledger.add_gatekeeper(gk2.address)
    net.ledger.gatekeepers.add(gk2.address)  # let in anyway, as a laxer contract would
    net.ledger.pending.append(ev.GatekeeperAdded(gatekeeper=gk2.address))
    mark = len(net.posted)
    net.step()
    assert gk2.address in net.cores["gk"].state.gatekeepers
    assert not net.cores["gk"].is_endorsed(gk2.address)
    assert not [m for m in net.posted[mark:] if m.topic == topics.TOPIC_MASTER_KEY_SHARE]
    net.settle()  # its collateral lands, the gatekeeper endorses it, the history follows
    assert net.cores["gk"].is_endorsed(gk2.address)
    assert set(gk2.keys.masters) == set(net.cores["gk"].keys.masters)


RANDOM_AGENT = b"""
def init(args):
    state.set("x", 1)


def handle(cmd):
    return random()


def query(req):
    return random()
"""


def test_query_randomness_is_distinct_per_query_and_command_randomness_per_replica(
    net: Network,
) -> None:
    contract = net.deploy(OWNER, "py", RANDOM_AGENT, salt=b"\x05" * 32)
    first = query_core(net, ALICE, contract, {"n": 1})["result"]
    second = query_core(net, ALICE, contract, {"n": 2})["result"]
    assert first != second  # same block, same contract: another request, another draw
    seq = net.command(ALICE, contract, {}, nonce=1)
    net.settle()
    drawn = {net.cores[w].runtimes[contract].outcomes[seq].result for w in ("w1", "w2")}
    assert len(drawn) == 1  # commands: every replica draws the same


def test_a_paused_contract_answers_no_query(net: Network) -> None:
    from veilnet.protocol.errors import ContractPaused

    contract = counted(net)
    net.ledger.set_paused(contract, True, sender=OWNER.address.raw)
    net.settle()
    with pytest.raises(ContractPaused):
        query_core(net, ALICE, contract, {})
    net.ledger.set_paused(contract, False, sender=OWNER.address.raw)
    net.settle()
    assert query_core(net, ALICE, contract, {})["result"]["count"] == 1


def test_a_late_joiner_waits_for_its_snapshot_and_serves_nothing_until_then(
    net: Network,
) -> None:
    """No member's snapshot reaches it (its host hands over none): it answers no query,
    posts no commitment and builds no state of its own for the contracts that have history.
    It holds only the epoch keyed for its join, none from before."""
    net.ferry_snapshots = False
    contract = counted(net)
    before = _epoch(net)
    w3 = net.register("w3")
    net.settle()
    net.ledger.add_cluster_worker(C1, w3.address)
    net.settle()
    assert w3.snapshot_due == C1
    assert _epoch(net) == before + 1  # the join moved the cluster to a new epoch
    assert {e for c, e in w3.keys.cluster_keys if c == C1} == {before + 1}
    net.command(ALICE, contract, {"by": 1}, nonce=2)
    net.settle()
    assert contract not in w3.runtimes  # no fresh state built beside the cluster's
    with pytest.raises(NotReady) as info:
        query_core(net, ALICE, contract, {}, worker="w3")
    assert "snapshot" in info.value.message
    assert not any(
        m.origin == w3.address and m.topic == topics.TOPIC_STATE_COMMITMENT for m in net.posted
    )


def _forged_egress(net: Network, key: SecretKey, topic: bytes, payload: bytes) -> None:
    """Post a message its origin really signed (a faulty, not a forged, gatekeeper)."""
    from veilnet.crypto import Address, Domain, sign_typed
    from veilnet.protocol.egress import EGRESS_TYPE

    origin = key.address.raw
    seq = net.ledger.next_seq.get(origin, 0)
    domain = Domain(chain_id=net.ledger.chain_id, verifying_contract=Address(net.ledger.bus))
    values = {"origin": Address(origin), "seq": seq, "topic": topic, "payload": payload}
    signature = sign_typed(key, domain, EGRESS_TYPE, values)
    message = EgressMessage(
        origin=origin, seq=seq, topic=topic, payload=payload, signature=signature
    )
    assert net.ledger.post(message)
    # every core numbers its own egress alike: move theirs past the message posted here
    for core in net.cores.values():
        core.state.counters[origin] = seq + 1


def test_a_master_history_key_not_recorded_on_chain_is_refused(net: Network) -> None:
    """A faulty gatekeeper wraps a key of its own as the history of rotation 0: the new
    gatekeeper keeps only what the Registry recorded, so no late joiner is poisoned."""
    from veilnet.codec import encode
    from veilnet.crypto import seal_key_for
    from veilnet.runtime.gatekeeper import master_binding

    gk, gk2 = net.cores["gk"], net.register("gk2")
    net.settle()
    net.ledger.add_gatekeeper(gk2.address)
    net.settle()
    assert gk2.keys.masters[0].address.raw == net.ledger.master
    gk2.keys.masters.pop(0)  # as before the real history lands: the first to land would stick
    bogus = SecretKey.derive(b"\x66" * 32, "not the master")
    binding = master_binding(gk._core, gk2.address, 0)
    mine = gk2.workers[gk2.address]
    wrapped = seal_key_for(mine.encryption_key, bogus, binding=binding)
    payload = encode(["history", gk2.address, 0, mine.encryption_index, wrapped])
    _forged_egress(net, gk.keys.identity, topics.TOPIC_MASTER_KEY_SHARE, payload)
    net.settle()
    assert 0 not in gk2.keys.masters
    assert any("master history" in d for d in gk2.diverged)


def test_a_cluster_key_share_not_recorded_on_chain_is_refused(net: Network) -> None:
    """The master origin wraps a key that is not the epoch's recorded one: not stored."""
    from veilnet.codec import encode
    from veilnet.crypto import seal_key_for
    from veilnet.runtime.clusters import cluster_binding

    gk, w1 = net.cores["gk"], net.cores["w1"]
    epoch = _epoch(net)
    real = w1.keys.cluster_key(C1, epoch)
    assert real is not None
    w1.keys.forget_cluster_epoch(C1, epoch)  # as a late joiner: it still needs this epoch
    bogus = SecretKey.derive(b"\x66" * 32, "not the cluster key")
    binding = cluster_binding(w1._core, w1.address, C1, epoch)
    mine = w1.workers[w1.address]
    wrapped = seal_key_for(mine.encryption_key, bogus, binding=binding)
    master = gk.keys.masters[0]
    shares = [[epoch, mine.encryption_index, wrapped]]
    _forged_egress(
        net, master, topics.TOPIC_CLUSTER_KEY_SHARE, encode([C1, w1.address, shares, 0, 1])
    )
    net.settle()
    assert w1.keys.cluster_key(C1, epoch) is None
    assert any("cluster key share" in d for d in w1.diverged)


def test_master_keys_and_proposals_come_from_tee_entropy_not_the_identity(net: Network) -> None:
    """A leaked gatekeeper identity gives away no master key it made or proposed: they are
    drawn from TEE entropy, and sealed under the platform as well as the identity."""
    from veilnet.runtime.keyring import KeyRing

    gk = net.cores["gk"]
    identity = gk.keys.identity  # what an attacker who extracted the identity key holds
    anchor_hash = net.ledger.blocks[0].header.hash
    candidates = {
        identity.child("master", block.header.hash).address.raw for block in net.ledger.blocks
    } | {identity.child("master", anchor_hash).address.raw}
    assert net.ledger.master not in candidates
    net.ledger.lock_rotation()
    net.settle()
    assert net.ledger.rotation_counter == 1
    derived = {
        identity.child("rotation", 1, block.header.hash).address.raw for block in net.ledger.blocks
    }
    assert net.ledger.master not in derived and net.ledger.master not in candidates
    # the sealed keys its host stores do not open with the identity alone
    sealed = net.sealed_keys["gk"]
    with pytest.raises(Exception):
        KeyRing(identity).import_(sealed)


def test_a_gatekeeper_replaying_from_genesis_reuses_its_sealed_keys(net: Network) -> None:
    """Keys are not re-derived on replay: a gatekeeper restarted without a checkpoint gets its
    sealed keys back from its host and replays to the same master key, with no divergence."""
    net.ledger.lock_rotation()
    net.settle()
    gk = net.cores["gk"]
    restarted = net.add_core(
        "gk", sealed_identity=gk.sealed_identity(), sealed_keys=net.sealed_keys["gk"]
    )
    assert restarted.keys.masters[1].address.raw == net.ledger.master
    assert set(restarted.keys.masters) == {0, 1}
    assert restarted.diverged == []
    assert restarted.state_root() == gk.state_root()
    # without them it draws other keys, and the chain's master key is not among them
    from veilnet.runtime import EnclaveCore

    assert net.config is not None
    forgetful = EnclaveCore.boot(
        config=net.config,
        platform=net.platforms["gk"],
        engine=net.engine,
        verifier=gk.verifier,
        sealed_identity=gk.sealed_identity(),
    )
    for block in net.ledger.raw_blocks:
        forgetful.apply_block(block)  # its egress would only be refused: nothing is posted
    assert any("master key landed from another gatekeeper" in d for d in forgetful.diverged)
    assert net.ledger.master not in {k.address.raw for k in forgetful.keys.masters.values()}


def test_a_query_keeps_the_key_it_was_prepared_with(net: Network) -> None:
    """The host prepares a query under its lock and runs it outside; a block applied in
    between may destroy the epoch's keys. The query still answers with the key it opened."""
    import json as json_module

    from veilnet.protocol import envelopes as proto
    from veilnet.testing.network import certified_query

    contract = net.deploy(OWNER, "py", RANDOM_AGENT, salt=b"\x06" * 32)
    w1 = net.cores["w1"]
    ephemeral = SecretKey.derive(b"\x44" * 32, "ephemeral")
    request, session = certified_query(
        net, ALICE, contract, ephemeral=ephemeral, request_id=b"\x01" * 32, kind="call", body=b"{}"
    )
    prepared = w1.prepare_query(request)
    w1.keys.forget_cluster_epoch(C1, w1.contracts[contract].epoch)  # the window just closed
    raw = w1.run_query(prepared)
    assert net.config is not None
    answer = json_module.loads(
        proto.open_response(
            proto.QueryResponse.from_bytes(raw),
            domain=net.config.response_domain,
            session=session.keys,
            expected_request_id=b"\x01" * 32,
        )
    )
    assert answer["ok"] is True and isinstance(answer["result"], float)


def test_the_replay_cache_is_bounded_by_time_with_no_scan_per_query() -> None:
    from veilnet.runtime.queries import ReplayCache

    cache = ReplayCache()
    for i in range(1000):
        cache.remember_query(i.to_bytes(4, "big"), expires=100 + i % 10, now=50)
    assert len(cache.seen) == 1000
    cache.remember_query(b"late", expires=300, now=104)  # blocks 100..103 have expired
    assert len(cache.seen) == 601 and b"late" in cache.seen
    assert (5).to_bytes(4, "big") in cache.seen and (3).to_bytes(4, "big") not in cache.seen
    cache.forget_expired(400)
    assert cache.seen == {}


def test_a_query_answered_by_one_worker_cannot_be_replayed_at_another(net: Network) -> None:
    """The client names the worker inside the sealed query; the others of the cluster refuse
    it, so a captured query is answered once, by the worker it was sent to."""
    from veilnet.protocol.errors import QueryRejected
    from veilnet.testing.network import certified_query

    contract = counted(net)
    request, _ = certified_query(
        net,
        ALICE,
        contract,
        ephemeral=SecretKey.derive(b"\x45" * 32, "ephemeral"),
        request_id=b"\x02" * 32,
        kind="call",
        body=b"{}",
    )
    net.cores["w1"].query(request)
    with pytest.raises(QueryRejected, match="already used"):
        net.cores["w1"].query(request)
    with pytest.raises(QueryRejected, match="another worker"):
        net.cores["w2"].query(request)


def test_a_verdict_sent_from_the_old_master_is_judged_again_under_the_new_one(
    net: Network,
) -> None:
    """A registration is judged just before a rotation and its endorsement, sent from the old
    master key, lands after it: the Registry refuses it (a rotated-out key endorses nothing),
    and every core judges the quote again under the new key, so the worker is still endorsed."""
    old_master = net.ledger.master
    net.withhold = lambda m: m.origin == old_master and m.topic == topics.TOPIC_ENDORSE
    w3 = net.register("w3")
    net.settle()
    (late,) = net.withheld
    assert not net.ledger.endorsed(w3.address)
    net.withhold = None
    net.ledger.lock_rotation()
    net.settle()
    assert net.ledger.master != old_master
    assert net.ledger.endorsed(w3.address)  # judged again, endorsed by the new master
    assert w3.workers[w3.address].standing.value == "endorsed"
    rejected = len(net.ledger.rejected)
    assert net._post(late)  # the old master's verdict finally lands: refused, changes nothing
    assert net.ledger.rejected[rejected:] == [(old_master, late.seq, "old master key")]
    net.settle()
    assert net.ledger.endorsed(w3.address)


def test_share_messages_stay_under_the_egress_limit_for_either_key_type() -> None:
    """The most shares one message carries, with real envelopes of each suite, fits the
    largest payload a core emits (and so every Bus, ``Bus.MIN_MAX_PAYLOAD``)."""
    from veilnet.codec import encode
    from veilnet.crypto import seal_key_for
    from veilnet.protocol.limits import MAX_EGRESS_PAYLOAD
    from veilnet.runtime.clusters import SHARES_PER_MESSAGE

    key, member = SecretKey.derive(b"\x01" * 32, "cluster"), SecretKey.derive(b"\x02" * 32, "m")
    for recipient in (member.public.x25519, member.public.mlkem768_x25519):
        count = SHARES_PER_MESSAGE[len(recipient)]
        binding = cluster_binding_for(member.address.raw, epoch=2**31)
        shares = [
            [2**63, 2**63, seal_key_for(recipient, key, binding=binding)] for _ in range(count)
        ]
        payload = encode([C1, member.address.raw, shares, 2**31, 2**31])
        assert len(payload) <= MAX_EGRESS_PAYLOAD
        shares.append(shares[0])  # one more would not fit (the figure is not needlessly low)
        assert len(encode([C1, member.address.raw, shares, 0, 1])) > MAX_EGRESS_PAYLOAD - 512


def cluster_binding_for(member: bytes, *, epoch: int) -> Binding:
    return Binding(chain_id=1, target=member + C1, epoch=epoch, purpose=proto.PURPOSE_CLUSTER_KEY)


def test_a_late_joiner_takes_the_cluster_state_by_snapshot_not_by_old_keys(
    engine: AgentRuntime,
) -> None:
    """After two rotations a worker joins: it gets only the epoch keyed for its join, takes the
    cluster's state from a member once a majority's commitment for a height after its join is
    on chain, applies what it held back, and from then on commits and answers like the
    others."""
    net = Network(engine=engine, commitment_interval=4)
    net.bootstrap()
    contract = counted(net)
    for _ in range(2):
        net.ledger.lock_rotation()
        net.settle()
    assert _epoch(net) == 3
    w3 = net.register("w3")
    net.settle()
    net.ledger.add_cluster_worker(C1, w3.address)
    net.step()
    assert w3.snapshot_due == C1
    net.command(ALICE, contract, {"by": 5}, nonce=2)  # held back by w3 until its snapshot
    for _ in range(12):
        net.step()
    assert w3.snapshot_due is None and [j for j, _, _ in net.syncs] == ["w3"]
    assert {e for c, e in w3.keys.cluster_keys if c == C1} == {4}
    w1 = net.cores["w1"]
    assert w3.runtimes[contract].state.values == w1.runtimes[contract].state.values
    net.command(ALICE, contract, {"by": 1}, nonce=3)
    net.settle()
    assert query_core(net, ALICE, contract, {}, worker="w3")["result"]["count"] == 7
    assert w3.cluster_commitment(C1) == w1.cluster_commitment(C1) is not None
    assert w3.state_root() == w1.state_root()
    assert w3.address not in w1.state.syncing  # its first commitment landed


def test_a_member_judged_0_leaves_its_cluster_on_chain_for_one_new_epoch(net: Network) -> None:
    """A verdict of 0 ends a member's endorsement and the Registry evicts it at once
    (``ClusterWorkerRemoved`` right behind ``WorkerEndorsed``): every core keys the cluster out
    of its reach once, not once per event."""
    from veilnet.codec import abi_encode
    from veilnet.crypto import Address

    w2 = net.cores["w2"]
    before = _epoch(net)
    registration = net.ledger.workers[w2.address].registration
    payload = abi_encode(
        ["address", "uint8", "bytes32", "uint64"], [Address(w2.address).hex, 0, registration, 0]
    )
    _forged_egress(net, net.cores["gk"].keys.masters[0], topics.TOPIC_ENDORSE, payload)
    net.settle()
    assert w2.address not in net.ledger.clusters[C1].members
    assert net.cores["w1"].clusters[C1].members == (net.cores["w1"].address,)
    assert _epoch(net) == before + 1
    assert w2.keys.cluster_key(C1, _epoch(net)) is None
