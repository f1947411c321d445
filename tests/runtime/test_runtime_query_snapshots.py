"""The snapshot queries read, made once per block and cluster: a contract whose record, state,
secrets and key did not change keeps its snapshot from the block before; any change gives it a
fresh one, so a query never reads stale state."""

from __future__ import annotations

from veilnet.runtime import queries
from veilnet.sandbox import AgentRuntime
from veilnet.testing import Network, query_core

from .conftest import ALICE, EXAMPLES, OWNER


def test_only_a_changed_contract_gets_a_new_snapshot(engine: AgentRuntime) -> None:
    net = Network(engine=engine)
    net.bootstrap(workers=("w1",), clusters={"c1": ["w1"]})
    code = (EXAMPLES / "counter.js").read_bytes()
    busy = net.deploy(OWNER, "js", code, init={"start": 1}, salt=b"\x0a" * 32)
    idle = net.deploy(OWNER, "js", code, init={"start": 5}, salt=b"\x0b" * 32)
    net.settle()
    core = net.cores["w1"]._core
    cluster = core.state.contracts[busy].cluster
    assert query_core(net, ALICE, busy, {})["result"]["count"] == 1
    before = queries.served_cluster(core, cluster).contracts

    net.command(ALICE, busy, {"by": 2}, nonce=1)
    net.settle()
    after = queries.served_cluster(core, cluster).contracts
    assert after[idle] is before[idle]  # nothing of it changed: the same snapshot
    assert after[busy] is not before[busy]
    assert query_core(net, ALICE, busy, {})["result"]["count"] == 3
    assert query_core(net, ALICE, idle, {})["result"]["count"] == 5

    # a secret changes nothing in the key-value state, and still makes a new snapshot
    core.state.runtimes[idle].set_secret("api_key", "k")
    core.query_snapshots.clear()  # as the next block does
    fresh = queries.served_cluster(core, cluster).contracts
    assert fresh[idle] is not after[idle] and fresh[idle].secrets == {"api_key": "k"}
    assert fresh[busy] is after[busy]
