"""``veil bench agents``: how a worker's costs grow with the number of agents in one cluster.
At 10, 100 and 1,000 agents: block apply, the cluster commitment, first query, checkpoint, memory.

One worker serves one cluster; ``counter.js`` agents are deployed until each count is reached,
and the figures are taken on the live core, so each row is the same core with more agents. A
block's commands go to agents in turn, so past ``MAX_LOADED_AGENTS`` they load agents again.
The baseline in the same run is the smallest count.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

from veilnet._gc import freeze_loaded
from veilnet.bench._registry import benchmark
from veilnet.bench.state import checkpoint_and_restore, rss_mib, slowest_step_ms
from veilnet.crypto import SecretKey
from veilnet.runtime import constants
from veilnet.sandbox import AgentRuntime
from veilnet.testing import Network, cluster_id_of, sealed_query

COMMANDS_PER_BLOCK = 20
COMMITMENTS = 20
FIRST_QUERIES = 5
_COUNTER = b"""
export function init(args) { state.set("count", String(args.start || 0)); }
export function handle(cmd) {
  const n = Number(state.get("count") || "0") + (cmd.by || 1);
  state.set("count", String(n));
  return n;
}
export function query(q) { return Number(state.get("count") || "0"); }
"""


def _counts(quick: bool) -> list[int]:
    if quick:
        return [5, 20]
    raw = os.environ.get("VEIL_BENCH_AGENTS", "10,100,1000")
    return [int(x) for x in raw.split(",") if x]


@benchmark("agents")
def _bench(quick: bool) -> dict[str, Any]:
    freeze_loaded()  # as the enclave process does: the imports are out of full collections
    owner = SecretKey.derive(b"\x43" * 32, "bench-agents-owner")
    figures: dict[str, float] = {}
    engine = AgentRuntime()
    cluster = cluster_id_of("c1")
    try:
        net = Network(engine=engine)
        net.bootstrap(workers=("w1",), clusters={"c1": ["w1"]})
        core = net.cores["w1"]
        assert net.config is not None
        agents: list[bytes] = []
        nonces: dict[bytes, int] = {}
        turn = 0
        rss_before = rss_mib()
        for count in _counts(quick):
            began = time.perf_counter()
            added = count - len(agents)
            while len(agents) < count:
                salt = len(agents).to_bytes(32, "big")
                agents.append(net.deploy(owner, "js", _COUNTER, init={"start": 0}, salt=salt))
            if added:
                figures[f"deploy_ms_per_agent_{count}"] = round(
                    (time.perf_counter() - began) * 1000 / added, 2
                )
            for _ in range(COMMANDS_PER_BLOCK):
                agent = agents[turn % len(agents)]
                turn += 1
                nonces[agent] = nonces.get(agent, 0) + 1
                net.command(owner, agent, {"by": 1}, nonce=nonces[agent])
            figures[f"block_apply_ms_{count}"] = slowest_step_ms(net)
            net.settle()
            kept = []
            for _ in range(COMMITMENTS):
                started = time.perf_counter()
                core.cluster_commitment(cluster)
                kept.append(time.perf_counter() - started)
            figures[f"commitment_ms_{count}"] = round(statistics.median(kept) * 1000, 3)
            firsts = []
            for index in range(FIRST_QUERIES):
                net.step()
                request, opened = sealed_query(net, owner, agents[index % len(agents)], {})
                started = time.perf_counter()  # the core's part: the client's is not timed
                raw = core.query(request)
                firsts.append(time.perf_counter() - started)
                answer = opened(raw)
                if answer.get("ok") is not True:
                    raise RuntimeError(f"a query failed: {answer}")
            figures[f"first_query_ms_{count}"] = round(statistics.median(firsts) * 1000, 3)
            checkpoint_and_restore(net, "w1", engine, figures, str(count))  # the copy is dropped
            figures[f"rss_growth_mib_{count}"] = round(rss_mib() - rss_before, 1)
    finally:
        engine.close()
    return {
        "figures": figures,
        "params": {
            "counts": _counts(quick),
            "agent": "a JS counter (one state entry), as examples/agents/counter.js",
            "commands_per_block": COMMANDS_PER_BLOCK,
            "block_apply": f"one block of {COMMANDS_PER_BLOCK} commands, to agents in turn",
            "commitment": f"median of {COMMITMENTS} cluster commitments on the same block "
            "(per-contract digests kept between blocks)",
            "first_query": f"median of {FIRST_QUERIES} queries, each the first after a block "
            "and under a new certificate: the core's EnclaveCore.query (sealing the request "
            "and checking the answer are the client's, not timed)",
            "loaded_agents_bound": constants.MAX_LOADED_AGENTS,
            "rss_growth": "this process's resident memory above what it held before the "
            "first agent (the live core, the gatekeeper's, the ledger model)",
        },
    }
