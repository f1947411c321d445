"""A whole network in-process: registration, endorsement, cluster keys, commands, replicas agree."""

from __future__ import annotations

import pytest

from veilnet.crypto import SecretKey
from veilnet.protocol import events as ev
from veilnet.sandbox import AgentRuntime
from veilnet.testing import Network, cluster_id_of

from .conftest import ALICE, EXAMPLES, OWNER, outcomes


def test_bootstrap_endorses_and_keys_everyone(network: Network) -> None:
    gk = network.cores["gk"]
    assert gk.state.master is not None
    for name in ("gk", "w1", "w2"):
        assert network.ledger.workers[network.cores[name].address].confidence == 1
    for name in ("w1", "w2"):
        core = network.cores[name]
        assert (cluster_id_of("c1"), 1) in core.keys.cluster_keys
    assert network.ledger.rejected == []


def test_two_clusters_three_workers_identical_replicas(engine: AgentRuntime) -> None:
    net = Network(engine=engine)
    net.bootstrap(workers=("w1", "w2", "w3"), clusters={"c1": ["w1", "w2"], "c2": ["w3"]})
    py_counter = (EXAMPLES / "counter.py").read_bytes()
    js_counter = (EXAMPLES / "counter.js").read_bytes()
    a = net.deploy(OWNER, "py", py_counter, cluster="c1", salt=b"\x01" * 32, init={"start": 10})
    b = net.deploy(OWNER, "js", js_counter, cluster="c2", salt=b"\x02" * 32, init={"start": 0})
    for nonce in range(1, 6):
        net.command(ALICE, a, {"by": nonce}, nonce=nonce)
        net.command(ALICE, b, {"by": 1}, nonce=nonce)
    net.settle()
    w1, w2, w3 = (net.cores[n] for n in ("w1", "w2", "w3"))
    assert w1.runtimes[a].state.values["count"] == b"25"
    assert w3.runtimes[b].state.values["count"] == b"5"
    assert b not in w1.runtimes and a not in w3.runtimes  # each cluster keeps only its own state
    assert w1.cluster_commitment(cluster_id_of("c1")) == w2.cluster_commitment(cluster_id_of("c1"))
    assert w1.state_root() == w2.state_root()
    assert not any(core.diverged for core in net.cores.values())


def test_command_events_and_results_recorded_for_sender(network: Network, counter: bytes) -> None:
    seq = network.command(ALICE, counter, {"by": 3}, nonce=1)
    network.settle()
    outcome = outcomes(network, counter)[seq]
    assert outcome.ok and outcome.result == 3
    assert outcome.events[0]["type"] == "counted"
    assert outcome.sender == ALICE.address.raw


def test_state_commitments_posted_and_equal(engine: AgentRuntime) -> None:
    net = Network(engine=engine, commitment_interval=5)
    net.bootstrap()
    contract = net.deploy(OWNER, "py", (EXAMPLES / "counter.py").read_bytes())
    net.command(ALICE, contract, {"by": 1}, nonce=1)
    for _ in range(6):
        net.step()
    from veilnet.protocol import topics

    posted = [m for m in net.posted if m.topic == topics.TOPIC_STATE_COMMITMENT]
    by_block: dict[bytes, set[bytes]] = {}
    for message in posted:
        by_block.setdefault(message.payload[32:64], set()).add(message.payload[64:96])
    assert posted and all(len(values) == 1 for values in by_block.values())


@pytest.mark.parametrize("language", ["py", "js"])
def test_agent_to_agent_call_is_all_or_nothing(engine: AgentRuntime, language: str) -> None:
    net = Network(engine=engine)
    net.bootstrap()
    ext = "py" if language == "py" else "js"
    source = (EXAMPLES / f"counter.{ext}").read_bytes()
    callee = net.deploy(OWNER, language, source, salt=b"\x05" * 32)
    caller_src = _caller_source(language, callee)
    caller = net.deploy(OWNER, language, caller_src, salt=b"\x06" * 32)
    net.command(ALICE, caller, {"by": 4}, nonce=1)
    net.command(ALICE, caller, {"by": 4, "fail": True}, nonce=2)
    net.settle()
    w1 = net.cores["w1"]
    assert w1.runtimes[callee].state.values["count"] == b"4"
    results = outcomes(net, caller)
    assert results[0].ok and not results[1].ok


def _caller_source(language: str, callee: bytes) -> bytes:
    target = "0x" + callee.hex()
    if language == "py":
        return (
            f'TARGET = "{target}"\n'
            "def init(args):\n    pass\n"
            "def handle(cmd):\n"
            '    value = call(TARGET, {"by": cmd["by"]})\n'
            '    state.set("last", value)\n'
            '    if cmd.get("fail"):\n        raise ValueError("caller fails after the call")\n'
            "    return value\n"
            'def query(req):\n    return state.get("last")\n'
        ).encode()
    return (
        f'const TARGET = "{target}";\n'
        "export function init(args) {}\n"
        "export function handle(cmd) {\n"
        "  const value = call(TARGET, { by: cmd.by });\n"
        '  state.set("last", value);\n'
        '  if (cmd.fail) { throw new Error("caller fails after the call"); }\n'
        "  return value;\n}\n"
        'export function query(req) { return state.get("last"); }\n'
    ).encode()


def test_registered_workers_post_heartbeats(engine: AgentRuntime) -> None:
    from veilnet.codec import abi_decode
    from veilnet.protocol import topics

    net = Network(engine=engine, heartbeat_interval=5)
    net.bootstrap()
    for _ in range(10):
        net.step()
    beats = [m for m in net.posted if m.topic == topics.TOPIC_HEARTBEAT]
    senders = {m.origin for m in beats}
    assert senders == {net.cores[n].address for n in ("gk", "w1", "w2")}
    boots = {}
    for message in beats:
        number, block_hash, sealed, boot = abi_decode(
            ["uint64", "bytes32", "uint64", "bytes32"], message.payload
        )
        assert net.ledger.blocks[number - 1].header.hash == block_hash
        assert sealed == 0  # nothing checkpointed yet
        boots.setdefault(message.origin, set()).add(boot)
    assert all(len(b) == 1 for b in boots.values())  # one boot id per run of a core
    recorded = [
        e for b in net.ledger.blocks for e in b.events if isinstance(e, ev.HeartbeatRecorded)
    ]
    assert {e.worker for e in recorded} == senders
    assert not net.ledger.flagged


def test_a_prepared_query_reads_its_snapshot_while_blocks_apply(network: Network) -> None:
    """Queries run outside the host's lock on the state committed when they were prepared."""
    from veilnet.protocol import envelopes as proto
    from veilnet.testing.network import certified_query, query_core

    contract = network.deploy(
        OWNER, "py", (EXAMPLES / "counter.py").read_bytes(), init={"start": 1}
    )
    request, query_session = certified_query(
        network,
        ALICE,
        contract,
        ephemeral=SecretKey.derive(b"\x61" * 32, "e"),
        request_id=b"\x01" * 32,
        kind="call",
        body=b"{}",
        expires_in=50,
    )
    core = network.cores["w1"]
    prepared = core.prepare_query(request)
    network.command(ALICE, contract, {"by": 5}, nonce=1)
    network.settle()
    assert core.runtimes[contract].state.values["count"] == b"6"
    assert network.config is not None
    answer = proto.open_response(
        proto.QueryResponse.from_bytes(core.run_query(prepared)),
        domain=network.config.response_domain,
        session=query_session.keys,
        expected_request_id=b"\x01" * 32,
    )
    import json

    assert json.loads(answer)["result"]["count"] == 1
    # queries within one block share a snapshot; the next block's queries read the new state
    assert query_core(network, ALICE, contract, {})["result"]["count"] == 6
    assert query_core(network, ALICE, contract, {"n": 1})["result"]["count"] == 6
    network.command(ALICE, contract, {"by": 1}, nonce=2)
    network.settle()
    assert query_core(network, ALICE, contract, {"n": 2})["result"]["count"] == 7


def test_js_agent_calls_js_agent_then_keeps_using_host_calls(engine: AgentRuntime) -> None:
    """A nested JS invocation must hand the host back to the outer one (a former bug)."""
    net = Network(engine=engine)
    net.bootstrap()
    callee = net.deploy(OWNER, "js", (EXAMPLES / "counter.js").read_bytes(), salt=b"\x05" * 32)
    source = (
        f'const TARGET = "0x{callee.hex()}";\n'
        "export function init(args) {}\n"
        "export function handle(cmd) {\n"
        "  const value = call(TARGET, { by: cmd.by });\n"
        '  const untouched = state.get("never-written");\n'  # a real host call after the nested one
        '  state.set("after", value);\n'
        '  emit({ type: "after", value: state.get("after"), untouched: untouched });\n'
        "  return value;\n}\n"
        'export function query(req) { return state.get("after"); }\n'
    ).encode()
    caller = net.deploy(OWNER, "js", source, salt=b"\x06" * 32)
    seq = net.command(ALICE, caller, {"by": 2}, nonce=1)
    net.settle()
    outcome = outcomes(net, caller)[seq]
    assert outcome.ok, outcome
    assert outcome.result == 2
    assert outcome.events[0] == {"type": "after", "value": 2, "untouched": None}
