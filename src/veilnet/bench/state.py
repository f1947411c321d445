"""``veil bench state``: how a worker's costs grow with an agent's state, up to 1,000,000 entries.
At each size: one block's apply time, a verified query's latency, checkpoint size and time, restore.

A JS agent writes ``WRITES_PER_COMMAND`` entries per command (below the host-call limit) into
one cluster of one worker; after each size is reached the figures are taken on the live core,
so each row is the same core a little fuller. The baseline in the same run is the smallest size.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

from veilnet.bench._registry import benchmark
from veilnet.crypto import SecretKey
from veilnet.runtime import EnclaveCore
from veilnet.sandbox import AgentRuntime
from veilnet.testing import Network, query_core

WRITES_PER_COMMAND = 200
COMMANDS_PER_BLOCK = 20
QUERIES = 50
FIRST_QUERIES = 5
_AGENT = b"""
export function handle(cmd) {
  for (let i = 0; i < cmd.n; i++) { state.set("k" + (cmd.from + i), "v" + (cmd.from + i)); }
  return cmd.from + cmd.n;
}
export function query(q) { return state.get("k" + q.key); }
"""


def _sizes(quick: bool) -> list[int]:
    if quick:
        return [2_000, 8_000]
    raw = os.environ.get("VEIL_BENCH_STATE_SIZES", "10000,100000,1000000")
    return [int(x) for x in raw.split(",") if x]


def _label(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 and n >= 1000 else str(n)


def rss_mib() -> float:
    try:
        for line in open("/proc/self/status").read().splitlines():  # noqa: SIM115
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def slowest_step_ms(net: Network) -> float:
    """Milliseconds of the slowest of the steps until the block just mined is applied."""
    steps = []
    for _ in range(net.finality + 2):
        started = time.perf_counter()
        net.step()
        steps.append(time.perf_counter() - started)
    return round(max(steps) * 1000, 2)


def checkpoint_and_restore(
    net: Network, name: str, engine: AgentRuntime, figures: dict[str, float], label: str
) -> EnclaveCore:
    """Checkpoint core ``name`` and restore a copy from it: ``checkpoint_s``,
    ``checkpoint_mib`` and ``restore_s`` figures; the copy (its root is checked)."""
    core = net.cores[name]
    assert net.config is not None
    began = time.perf_counter()
    checkpoint = core.checkpoint()
    figures[f"checkpoint_s_{label}"] = round(time.perf_counter() - began, 3)
    figures[f"checkpoint_mib_{label}"] = round(len(checkpoint) / 2**20, 2)
    began = time.perf_counter()
    restored = EnclaveCore.restore(
        checkpoint,
        config=net.config,
        platform=net.platforms[name],
        engine=engine,
        verifier=core.verifier,
    )
    figures[f"restore_s_{label}"] = round(time.perf_counter() - began, 3)
    if restored.state_root() != core.state_root():
        raise RuntimeError("the restored core differs from the live one")
    return restored


@benchmark("state")
def _bench(quick: bool) -> dict[str, Any]:
    owner = SecretKey.derive(b"\x42" * 32, "bench-state-owner")
    figures: dict[str, Any] = {}
    with AgentRuntime() as engine:
        net = Network(engine=engine)
        net.bootstrap(workers=("w1",), clusters={"c1": ["w1"]})
        contract = net.deploy(owner, "js", _AGENT)
        core = net.cores["w1"]
        assert net.config is not None
        written = nonce = 0
        rss_before = rss_mib()
        for size in _sizes(quick):
            while written < size:
                for _ in range(COMMANDS_PER_BLOCK):
                    if written >= size:
                        break
                    nonce += 1
                    net.command(owner, contract, {"n": WRITES_PER_COMMAND, "from": written},
                                nonce=nonce)  # fmt: skip
                    written += WRITES_PER_COMMAND
                net.settle()
            label = _label(size)
            entries = len(core.runtimes[contract].state.values)
            if entries < size:
                raise RuntimeError(f"the agent holds {entries} entries, not {size}")
            # one more block of COMMANDS_PER_BLOCK commands, applied on the full core
            for _ in range(COMMANDS_PER_BLOCK):
                nonce += 1
                net.command(owner, contract, {"n": 1, "from": 0}, nonce=nonce)
            # the first step mines the block of those commands, the slowest applies it
            figures[f"block_apply_ms_{label}"] = slowest_step_ms(net)
            net.settle()
            latencies = []
            for index in range(QUERIES):
                began = time.perf_counter()
                answer = query_core(net, owner, contract, {"key": index * 7 % size})
                latencies.append(time.perf_counter() - began)
                if answer.get("ok") is not True:
                    raise RuntimeError(f"a query failed: {answer}")
            figures[f"query_p50_ms_{label}"] = round(statistics.median(latencies) * 1000, 3)
            firsts = []  # the first query after a block takes the block's snapshot
            for index in range(FIRST_QUERIES):
                net.step()
                began = time.perf_counter()
                query_core(net, owner, contract, {"key": index})
                firsts.append(time.perf_counter() - began)
            figures[f"first_query_ms_{label}"] = round(statistics.median(firsts) * 1000, 3)
            restored = checkpoint_and_restore(net, "w1", engine, figures, label)
            figures[f"rss_growth_mib_{label}"] = round(rss_mib() - rss_before, 1)
            del restored
    return {
        "figures": figures,
        "params": {
            "sizes": _sizes(quick),
            "writes_per_command": WRITES_PER_COMMAND,
            "commands_per_block": COMMANDS_PER_BLOCK,
            "entries": "k<i> = v<i>, about 12 bytes each, in one JS agent of one cluster",
            "block_apply": f"one block of {COMMANDS_PER_BLOCK} commands applied on the full core",
            "query": "query_core: certificate, session, sealed request, the agent reads one key, "
            "sealed and signed answer opened and checked (client and core in one process)",
            "first_query": f"median of {FIRST_QUERIES} queries, each the first after a new "
            "block (it takes the block's snapshot of the cluster)",
            "restore": "EnclaveCore.restore from that checkpoint (no blocks to replay)",
            "rss_growth": "this process's resident memory above what it held before the agent "
            "had state (the live core, its ledger model and the restored copy)",
        },
    }
