"""``veil bench load``: one worker under 1, 8, 32 and 128 concurrent clients in their own processes,
verified queries beside the plain-HTTP baseline served by the same worker, then commands end to end.

For each level: verified queries/s, p50 and p99, and the worker's CPU per query (the network
process and the worker's enclave process, user + system), and the same for the plain baseline
(the agent call served like ``/v1/query`` without the cryptography), in the same run. Then
sustained commands: wallets submit batches of commands through the chain (``Agent.commands``)
and wait for their outcomes, verified by queries; commands/s over the wall time. Last, the RSS of the network and
enclave processes. The network is the two-worker devnet of ``veil bench query``.
"""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import statistics
import time
from typing import Any

from veilnet.bench import benchmark
from veilnet.bench._load import LoadRun, run_load
from veilnet.bench.query import _network_cpu_seconds, _percentile, bench_network

LEVELS = ((1, 1, 1), (8, 2, 4), (32, 4, 8), (128, 4, 32))
"""(concurrent clients, client processes, clients per process)."""
_COMMAND_WALLETS = 8
_REPLY_TIMEOUT_S = 10.0


_IDLE_S = 3.0
"""How long the idle network's CPU is read before the load (its chain followers' baseline)."""


def _figures(run: LoadRun, idle: float) -> dict[str, float]:
    return {
        "per_s": round(run.queries / run.wall_s, 1),
        "p50_ms": round(statistics.median(run.latencies) * 1000, 3),
        "p99_ms": round(_percentile(run.latencies, 0.99) * 1000, 3),
        "cpu_ms": round(run.cpu_s * 1000 / run.queries, 3),
        "cpu_ms_net": round(max(0.0, run.cpu_s - idle * run.wall_s) * 1000 / run.queries, 3),
        "client_cpu_ms": round(run.client_cpu_s * 1000 / run.queries, 3),
    }


def _idle_fraction(cpu: Any) -> float:
    """The share of a core the bench network spends with no load (its workers following the
    chain), read over ``_IDLE_S`` seconds."""
    before, started = cpu(), time.perf_counter()
    time.sleep(_IDLE_S)  # a measurement window, not a wait for something to happen
    return float((cpu() - before) / (time.perf_counter() - started))


async def _commands(
    network: str, contract: str, keys: list[str], per_wallet: int
) -> tuple[float, float]:
    """Every wallet sends ``per_wallet`` commands at once (``Agent.commands``: consecutive
    nonces, one JSON-RPC batch) and waits for their outcomes (verified queries, up to 256
    outcomes each). Returns the commands per second over the whole run, and over the
    submission alone (signed, sent and mined)."""
    from veilnet.sdk import AsyncClient

    async with AsyncClient.connect(network, allow_insecure_dev_tee=True) as client:
        agent = client.agent(contract)
        await agent.command({"by": 1}, wallet=keys[0])  # warm: keys, certificates, verification
        started = time.perf_counter()
        sent = await asyncio.gather(
            *(agent.commands([{"by": 1}] * per_wallet, wallet=key, wait=False) for key in keys)
        )
        submitted = time.perf_counter() - started
        done = await asyncio.gather(
            *(agent.outcomes(batch, wallet=key) for batch, key in zip(sent, keys, strict=True))
        )
        wall = time.perf_counter() - started
    results = [result for batch in done for result in batch]
    if not all(result.applied and result.ok for result in results):
        raise RuntimeError("a command of the load was not applied")
    return len(results) / wall, len(results) / submitted


@benchmark("load")
def _bench(quick: bool) -> dict[str, Any]:
    import json
    from pathlib import Path

    total = 40 if quick else 400  # queries per level and kind, spread over its clients
    per_wallet = 25 if quick else 250
    block_time = 0.25 if quick else 0.5
    levels = LEVELS[:3] if quick else LEVELS
    context = multiprocessing.get_context("spawn")
    figures: dict[str, Any] = {}
    with bench_network(context, block_time) as (info, parent):
        cpu = functools.partial(_network_cpu_seconds, parent)
        idle = _idle_fraction(cpu)
        figures["network_idle_cpu_fraction"] = round(idle, 3)
        for concurrency, processes, clients in levels:
            runs = run_load(
                context,
                network=info["network"],
                contract=info["contract"],
                plain_url=info["wired"],
                worker=info["split"],
                processes=processes,
                clients=clients,
                queries=max(2, total // concurrency),
                cpu_seconds=cpu,
            )
            for kind, run in (("verified", runs["verified"]), ("plain", runs["plain"])):
                for name, value in _figures(run, idle).items():
                    figures[f"{kind}_{name}_c{concurrency}"] = value
        accounts = json.loads(Path(info["network"]).read_text())["dev_accounts"]
        keys = list(accounts.values())[1 : 1 + _COMMAND_WALLETS]
        end_to_end, submitted = asyncio.run(
            _commands(info["network"], info["contract"], keys, per_wallet)
        )
        figures["commands_per_s"] = round(end_to_end, 1)
        figures["commands_submitted_per_s"] = round(submitted, 1)
        parent.send("rss")
        if not parent.poll(_REPLY_TIMEOUT_S):
            raise RuntimeError("the bench network did not report its memory")
        figures["worker_rss_mib"] = round(float(parent.recv()) / 2**20, 1)
    for concurrency, *_ in levels:
        plain = figures[f"plain_p50_ms_c{concurrency}"]
        figures[f"overhead_x_c{concurrency}"] = (
            round(figures[f"verified_p50_ms_c{concurrency}"] / plain, 2) if plain else None
        )
    return {
        "figures": figures,
        "params": {
            "agent": "counter.js",
            "chain": info["chain"],
            "block_time_s": block_time,
            "levels": [level[0] for level in levels],
            "layout": "concurrent clients: 1 process of 1, 2 of 4, 4 of 8, 4 of 32; each client "
            "one call at a time; queries/s over the wall time of the level",
            "queries_per_level": total,
            "worker": "w1: its core in an enclave process (the default); plain: the agent call "
            "on w2's core, served like /v1/query (rate limiter, error mapping, query pool)",
            "client_cpu": "client_cpu_ms: user + system CPU of the client processes per call "
            "(the SDK's sealing, checks and HTTP for verified queries; HTTP and JSON for plain)",
            "cpu": "user + system CPU of the network process (both workers, the gatekeeper, "
            "the chain follower) and of w1's enclave process, per call; cpu_ms_net: less what "
            "the idle network spends meanwhile (network_idle_cpu_fraction, read over "
            f"{_IDLE_S:.0f} s before the load)",
            "commands": f"{_COMMAND_WALLETS} wallets x {per_wallet} commands, each wallet's sent "
            "at once (Agent.commands: consecutive nonces, one JSON-RPC batch); every one applied "
            "by both replicas of the cluster and its outcome verified (queries of up to 256 "
            "outcomes); commands/s over the wall time, and over the submission alone",
            "rss": "resident memory of the network process and w1's enclave process at the end",
        },
    }
