"""The one replicated-state object: each field's scope decides, by itself, whether it is in the
state root, in checkpoints, or only rolled back with a failed block."""

from __future__ import annotations

import pytest

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
        core._core.commitment_rows.clear()
        for runtime in core.runtimes.values():
            runtime._meta = None
        return core.cluster_commitment(c1)

    def documented() -> bytes:
        """docs/protocol.md's formula, encoded in one piece (commitments splice kept rows)."""
        from veilnet.codec import encode
        from veilnet.codec.constants import BULK_MAX_ITEMS
        from veilnet.runtime import sync
        from veilnet.runtime.replicated import plain_digest

        plain = sync.cluster_plain(core._core, c1)
        runtimes = dict(plain["runtimes"])
        rows = []
        for cid, info in plain["contracts"]:
            data = runtimes.get(cid)
            kv = b"" if data is None else data["digest"]
            meta = b"" if data is None else plain_digest({k: data[k] for k in sync._META_KEYS})
            rows.append([cid, plain_digest(info), kv, meta])
        records = plain_digest({k: plain[k] for k in sync._RECORD_KEYS})
        assert core.state.head is not None
        key = core._core.keys.cluster_key(c1, core.state.clusters[c1].current_epoch)
        assert key is not None
        body = encode([c1, core.state.head.number, rows, records], max_items=BULK_MAX_ITEMS)
        return key.symmetric("commitment").mac(body)

    seen = [core.cluster_commitment(c1)]
    contract = network.deploy(owner, "py", counter.read_bytes(), init={"start": 0})
    network.settle()
    for step in range(3):
        kept = core.cluster_commitment(c1)
        assert kept == documented()
        assert kept == fresh() and kept not in seen
        seen.append(kept)
        network.command(owner, contract, {"by": step + 1}, nonce=step + 1)
        network.settle()


def test_a_state_view_reads_the_state_as_it_was_when_taken() -> None:
    """Queries read a copy-on-write view: taking it copies nothing, and the writes of later
    blocks (updates, inserts, deletes, a rolled-back block) never show through it."""
    from veilnet.crypto import SymmetricKey
    from veilnet.runtime.state import ContractState, Journal

    journal = Journal()
    state = ContractState(b"c" * 32, SymmetricKey.generate(b"\x01" * 32), journal=journal)
    state.apply({"a/1": b"one", "a/2": b"two", "b/1": b"bee"})
    view = state.view()
    before = dict(state.values)
    journal.begin()
    state.apply({"a/1": b"ONE", "a/2": None, "a/3": b"three"})
    journal.commit()
    journal.begin()
    state.apply({"a/1": b"uno", "b/1": None})
    journal.rollback()  # a failed block: the live state is back, the view unchanged
    state.apply({"a/4": b"four", "a/3": None})
    assert {name: view.get(name) for name in before} == before
    assert view.get("a/3") is None and view.get("a/4") is None
    assert view.keys("a/") == ["a/1", "a/2"] and view.keys("") == sorted(before)
    assert state.values == {"a/1": b"ONE", "b/1": b"bee", "a/4": b"four"}
    fresh = state.view()
    assert fresh.keys("a/") == ["a/1", "a/4"] and fresh.get("a/1") == b"ONE"


def test_views_with_no_write_between_them_are_one_and_a_write_starts_another() -> None:
    """Many idle agents cost no new view per block; any write, a rolled-back block's too, makes
    the next reader take a new view, and an old one still reads its own time."""
    from veilnet.crypto import SymmetricKey
    from veilnet.runtime.state import ContractState, Journal

    journal = Journal()
    state = ContractState(b"c" * 32, SymmetricKey.generate(b"\x01" * 32), journal=journal)
    state.apply({"a": b"1"})
    first = state.view()
    assert state.view() is first
    state.apply({})  # a block that wrote nothing here
    assert state.view() is first
    journal.begin()
    state.apply({"a": b"2"})
    journal.rollback()
    second = state.view()
    assert second is not first and second.get("a") == b"1" and first.get("a") == b"1"
    state.apply({"a": b"3"})
    third = state.view()
    assert (first.get("a"), second.get("a"), third.get("a")) == (b"1", b"1", b"3")
    loaded = ContractState(b"d" * 32, SymmetricKey.generate(b"\x01" * 32))
    empty = loaded.view()
    loaded.load([["k", b"v"]], bytes(32))
    assert empty.get("k") is None and loaded.view().get("k") == b"v"


def test_a_state_view_stays_whole_while_another_thread_writes() -> None:
    """A query thread reads a view while the block thread writes (bounded, no sleeps): every
    read returns the value of when the view was taken, and listing never trips over a map
    that changes size."""
    import threading

    from veilnet.crypto import SymmetricKey
    from veilnet.runtime.state import ContractState

    state = ContractState(b"c" * 32, SymmetricKey.generate(b"\x02" * 32))
    state.apply({f"k/{i}": b"%d" % i for i in range(500)})
    view = state.view()
    done = threading.Event()
    wrong: list[str] = []

    def read() -> None:
        while not done.is_set():
            for i in range(0, 500, 7):
                if view.get(f"k/{i}") != b"%d" % i:
                    wrong.append(f"k/{i}")
            if len(view.keys("k/")) != 500:
                wrong.append("keys")

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for round_ in range(200):
            state.apply({f"k/{i}": None for i in range(round_ % 5, 500, 5)})
            state.apply({f"n/{round_}": b"x", **{f"k/{i}": b"new" for i in range(0, 500, 3)}})
    finally:
        done.set()
        reader.join()
    assert wrong == []


def test_a_core_keeps_a_bounded_number_of_agents_loaded(
    network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With room for three loaded agents, one of them warm, four agents used in turn are loaded
    (and instantiated) again as needed: the cache never holds more than three, never more than
    one keeps an instance, and every count is what a replica that never evicts computes (an
    invocation always starts from the agent's clean image)."""
    from pathlib import Path

    from veilnet.crypto import SecretKey
    from veilnet.runtime import constants

    owner = SecretKey.derive(b"\x77" * 32, "owner")
    counter = (
        Path(__file__).resolve().parents[2] / "examples" / "agents" / "counter.js"
    ).read_bytes()
    agents = [
        network.deploy(owner, "js", counter, init={"start": 0}, salt=bytes([i]) * 32)
        for i in range(4)
    ]
    monkeypatch.setattr(constants, "MAX_LOADED_AGENTS", 3)
    monkeypatch.setattr(constants, "MAX_WARM_AGENTS", 1)
    for round_ in range(3):
        for index, agent in enumerate(agents):
            network.command(owner, agent, {"by": index + 1}, nonce=round_ + 1)
        network.settle()
        cached = network.cores["w1"]._core.agents
        assert len(cached) <= 3
        assert sum(loaded._compiled.warm is not None for loaded in cached.values()) <= 1
    w1, w2 = network.cores["w1"], network.cores["w2"]
    for index, agent in enumerate(agents):
        assert w1.runtimes[agent].state.values["count"] == str(3 * (index + 1)).encode()
    assert w1.state_root() == w2.state_root()


def test_an_agent_left_warm_while_it_ran_is_parked_by_a_later_use(
    network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A park skips an agent that is running at that moment; the next use past the warm ones
    parks it, so the warm set does not stay above ``MAX_WARM_AGENTS``."""
    from pathlib import Path

    from veilnet.crypto import SecretKey
    from veilnet.runtime import constants
    from veilnet.runtime.agents import load_agent

    owner = SecretKey.derive(b"\x77" * 32, "owner")
    counter = (
        Path(__file__).resolve().parents[2] / "examples" / "agents" / "counter.js"
    ).read_bytes()
    agents = [
        network.deploy(owner, "js", counter, init={"start": 0}, salt=bytes([i + 20]) * 32)
        for i in range(4)
    ]
    network.settle()
    monkeypatch.setattr(constants, "MAX_WARM_AGENTS", 1)
    core = network.cores["w1"]._core
    core.agents.clear()

    def warm() -> list[bytes]:
        return [cid for cid, loaded in core.agents.items() if loaded._compiled.warm is not None]

    for cid in agents[:2]:
        load_agent(core, cid)  # a compile leaves the agent with an instance
    assert warm() == [agents[1]]
    busy = core.agents[agents[1]]._compiled
    with busy.lock:  # agents[1] runs on another thread: pushing it out cannot park it
        load_agent(core, agents[2])
    assert warm() == [agents[1], agents[2]]  # one over, for now
    load_agent(core, agents[3])
    assert warm() == [agents[3]]  # the one pushed out and the one left before are parked


def test_loaded_agents_are_bounded_by_the_bytes_of_their_images(
    network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A count alone would let agents with large images hold gigabytes: with room for two
    images' bytes, four agents used in turn keep at most two loaded, and every count is right."""
    from pathlib import Path

    from veilnet.crypto import SecretKey
    from veilnet.runtime import constants
    from veilnet.sandbox import Language

    owner = SecretKey.derive(b"\x77" * 32, "owner")
    counter = (
        Path(__file__).resolve().parents[2] / "examples" / "agents" / "counter.js"
    ).read_bytes()
    core = network.cores["w1"]._core
    image = core.engine.footprint(core.engine.load(Language.JS, counter))
    monkeypatch.setattr(constants, "MAX_LOADED_AGENT_BYTES", 2 * image + image // 2)
    agents = [
        network.deploy(owner, "js", counter, init={"start": 0}, salt=bytes([i + 9]) * 32)
        for i in range(4)
    ]
    for round_ in range(2):
        for index, agent in enumerate(agents):
            network.command(owner, agent, {"by": index + 1}, nonce=round_ + 1)
        network.settle()
        assert len(core.agents) <= 2
    w1, w2 = network.cores["w1"], network.cores["w2"]
    for index, agent in enumerate(agents):
        assert w1.runtimes[agent].state.values["count"] == str(2 * (index + 1)).encode()
    assert w1.state_root() == w2.state_root()


def test_the_kept_meta_digest_equals_the_digest_of_the_meta(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``meta_digest`` splices each outcome's kept piece: after new outcomes, one replaced at
    its seq, the oldest dropped past the cap, nonces, secrets and a rolled-back block, it is
    the digest of ``meta_plain`` encoded in one piece (what commitments are documented as)."""
    from veilnet.protocol.outcomes import OutcomeRecord
    from veilnet.runtime import constants
    from veilnet.runtime.replicated import ContractRuntime, plain_digest
    from veilnet.runtime.state import ContractState, Journal

    monkeypatch.setattr(constants, "MAX_OUTCOMES_PER_CONTRACT", 40)
    journal = Journal()
    runtime = ContractRuntime(ContractState(b"\x01" * 32, b"\x02" * 32), journal)
    seen = []

    def check() -> None:
        digest = runtime.meta_digest()
        assert digest == plain_digest(runtime.meta_plain())
        assert digest not in seen
        seen.append(digest)

    def outcome(i: int) -> OutcomeRecord:
        return OutcomeRecord.success(sender=bytes([i % 7]) * 20, result=i, events=[i], fuel=i)

    check()
    for seq in range(30):
        runtime.record_outcome(seq, outcome(seq))
    check()
    runtime.record_outcome(29, outcome(1000))  # the same seq, another record
    runtime.use_nonce(b"\xaa" * 20, 5)
    runtime.set_secret("api", "k")
    check()
    for seq in range(30, 60):  # past the cap: the oldest go
        runtime.record_outcome(seq, outcome(seq))
    assert len(runtime.outcomes) == 40
    check()
    journal.begin()
    runtime.record_outcome(60, outcome(60))
    runtime.use_nonce(b"\xbb" * 20, 9)
    check()
    journal.rollback()
    assert runtime.meta_digest() == seen[-2] == plain_digest(runtime.meta_plain())


def test_the_park_walk_goes_past_python_agents(
    network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Python agent holds no instance, so the walk that parks the agents pushed out of the
    warm ones does not stop at it: a JS agent left warm behind it is parked by the next use."""
    from pathlib import Path

    from veilnet.crypto import SecretKey
    from veilnet.runtime import constants
    from veilnet.runtime.agents import load_agent

    owner = SecretKey.derive(b"\x77" * 32, "owner")
    examples = Path(__file__).resolve().parents[2] / "examples" / "agents"
    js = [
        network.deploy(
            owner, "js", (examples / "counter.js").read_bytes(), salt=bytes([i + 40]) * 32
        )
        for i in range(3)
    ]
    py = network.deploy(owner, "py", (examples / "counter.py").read_bytes(), salt=b"\x50" * 32)
    network.settle()
    monkeypatch.setattr(constants, "MAX_WARM_AGENTS", 1)
    core = network.cores["w1"]._core
    core.agents.clear()

    def warm() -> list[bytes]:
        return [
            cid
            for cid, loaded in core.agents.items()
            if core.engine.holds_instance(loaded) and loaded._compiled.warm is not None
        ]

    load_agent(core, js[0])
    busy = core.agents[js[0]]._compiled
    with busy.lock:  # js[0] runs on another thread: pushing it out cannot park it
        load_agent(core, py)
    assert warm() == [js[0]]  # one over the bound, behind the Python agent
    load_agent(core, js[1])  # the walk passes the Python agent and parks js[0]
    assert warm() == [js[1]]
    load_agent(core, js[2])
    assert warm() == [js[2]]
    assert not core.engine.holds_instance(core.agents[py])


def test_the_nonce_window_matches_its_plain_definition(monkeypatch: pytest.MonkeyPatch) -> None:
    """``nonce_used`` and ``use_nonce`` search and trim a sorted list by bisection; over rising,
    repeated, late and far-jumping nonces of two wallets, they decide and keep exactly what
    the definition says: refused at or below the floor, a window or more below the highest,
    or used already; the oldest dropped past the cap or out of the window."""
    import random

    from veilnet.runtime import constants
    from veilnet.runtime.replicated import ContractRuntime
    from veilnet.runtime.state import ContractState, Journal

    monkeypatch.setattr(constants, "MAX_RECENT_NONCES", 16)
    monkeypatch.setattr(constants, "COMMAND_NONCE_WINDOW", 50)
    runtime = ContractRuntime(ContractState(b"\x01" * 32, b"\x02" * 32), Journal())
    floors: dict[bytes, int] = {}
    lists: dict[bytes, list[int]] = {}
    rng = random.Random(7)
    refused = 0
    for step in range(4000):
        sender = bytes([step % 2]) * 20
        floor, used = floors.get(sender, -1), lists.setdefault(sender, [])
        highest = used[-1] if used else floor
        nonce = max(0, highest + rng.choice((-70, -30, -3, -1, 0, 1, 1, 2, 5, 90)))
        expected = nonce <= max(floor, highest - 50) or nonce in used
        assert runtime.nonce_used(sender, nonce) is expected
        if expected:
            refused += 1
            continue
        runtime.use_nonce(sender, nonce)
        used.append(nonce)
        used.sort()
        while len(used) > 16 or used[0] <= used[-1] - 50:
            floors[sender] = used.pop(0)
        assert runtime.recent[sender] == tuple(used)
        assert runtime.nonces[sender] == floors.get(sender, -1)
    assert 500 < refused < 3500  # both branches were taken often
