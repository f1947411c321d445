"""``veil bench load``: one worker under 1, 8, 32 and 128 concurrent clients in their own processes,
verified queries beside the plain-HTTP baseline served by the same worker, then commands end to end.

For each level: verified queries/s, p50 and p99, and the worker's CPU per query (the network
process and the worker's enclave process, user + system), and the same for the plain baseline
(the agent call served like ``/v1/query`` without the cryptography), in the same run; at 1
client the two kinds' latencies come from calls interleaved one by one. Then the
worker's capacity: both kinds again from one lean client on 32 connections
(``bench._capacity``), every verified answer checked after the window. Then sustained
commands: a stream of batches from several wallets, one round per block, each command applied
by both replicas and its outcome verified by a query; commands/s once the stream runs,
latency, CPU per command. Last, the RSS of the network and enclave processes. The network is
the two-worker devnet of ``veil bench query``.
"""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from veilnet.bench import benchmark
from veilnet.bench._capacity import run_capacity
from veilnet.bench._load import LoadRun, run_load
from veilnet.bench.query import _network_cpu_seconds, _percentile, bench_network

LEVELS = ((1, 1, 1), (8, 2, 4), (32, 4, 8), (128, 4, 32))
"""(concurrent clients, client processes, clients per process)."""
CAPACITY_CONNECTIONS = 32
"""Connections of the capacity load (``bench._capacity``), one query in flight on each."""
_COMMAND_WALLETS = 8
_STREAM = (80, 16)
"""Commands per wallet and round, and rounds, of the command stream: 8 x 80 per 0.5 s block is
1,280 commands/s offered, over 8 s (above the 1,000/s goal, so the rate shows the margin)."""
_STREAM_LEAD_S = 0.2
"""Between the stream's setup and its first round."""
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


@dataclass(frozen=True, slots=True)
class CommandStream:
    """What a command stream did: for each batch, its round and when its outcomes were all
    verified (seconds after the stream's start), and the CPU the network and client spent."""

    wallets: int
    batch: int
    rounds: int
    interval_s: float
    done: list[tuple[int, float]]
    cpu_s: float
    client_cpu_s: float

    @property
    def commands(self) -> int:
        return self.wallets * self.batch * self.rounds

    def figures(self) -> dict[str, float]:
        """Commands/s: the slope of a least-squares line through the count of verified
        commands against time (the rate the network keeps, not diluted by the first round's
        latency); offered commands/s; latency (a round's send time to a batch's verified
        outcomes) p50 and p99, and p50 over the first and the last quarter of the rounds (a
        rate the network cannot keep shows as latency that grows); CPU per command."""
        done = sorted(self.done, key=lambda item: item[1])
        counted = [self.batch * (i + 1) for i in range(len(done))]
        slope = statistics.linear_regression([t for _, t in done], counted).slope
        latency = sorted(t - r * self.interval_s for r, t in done)
        quarter = max(1, self.rounds // 4)

        def p50_ms(rounds: range) -> float:
            return round(
                statistics.median(t - r * self.interval_s for r, t in done if r in rounds) * 1000,
                1,
            )

        return {
            "commands_per_s": round(slope, 1),
            "commands_offered_per_s": round(self.wallets * self.batch / self.interval_s, 1),
            "command_p50_ms": round(statistics.median(latency) * 1000, 1),
            "command_p99_ms": round(_percentile(latency, 0.99) * 1000, 1),
            "command_p50_ms_first_rounds": p50_ms(range(quarter)),
            "command_p50_ms_last_rounds": p50_ms(range(self.rounds - quarter, self.rounds)),
            "command_cpu_ms": round(self.cpu_s * 1000 / self.commands, 3),
            "command_client_cpu_ms": round(self.client_cpu_s * 1000 / self.commands, 3),
        }


async def _stream(
    network: str,
    contract: str,
    keys: list[str],
    *,
    batch: int,
    rounds: int,
    interval: float,
    cpu: Callable[[], float],
) -> CommandStream:
    """An open-loop command stream: every ``interval`` each wallet sends ``batch`` commands
    (``Agent.commands``: ``push_commands`` transactions) without waiting for the earlier ones,
    and a task per batch waits for their outcomes (verified queries). Every command must be
    applied."""
    from veilnet.sdk import AsyncClient

    async with AsyncClient.connect(network, allow_insecure_dev_tee=True) as client:
        agent = client.agent(contract)
        await agent.command({"by": 1}, wallet=keys[0])  # warm: keys, certificates, verification
        loop = asyncio.get_running_loop()
        cpu_before, client_before = cpu(), time.process_time()
        start = loop.time() + _STREAM_LEAD_S
        done: list[tuple[int, float]] = []
        waits: list[asyncio.Task[None]] = []

        async def wait(round_: int, sent: list[Any], key: str) -> None:
            results = await agent.outcomes(sent, wallet=key)
            if len(results) != batch or not all(r.applied and r.ok for r in results):
                raise RuntimeError("a command of the stream was not applied")
            done.append((round_, loop.time() - start))

        async def send(key: str) -> None:
            for round_ in range(rounds):
                # pacing an open-loop load: the round's send time, not a wait for an event
                await asyncio.sleep(max(0.0, start + round_ * interval - loop.time()))
                sent = await agent.commands([{"by": 1}] * batch, wallet=key, wait=False)
                waits.append(asyncio.create_task(wait(round_, sent, key)))

        await asyncio.gather(*(send(key) for key in keys))
        await asyncio.gather(*waits)
        return CommandStream(
            wallets=len(keys),
            batch=batch,
            rounds=rounds,
            interval_s=interval,
            done=done,
            cpu_s=cpu() - cpu_before,
            client_cpu_s=time.process_time() - client_before,
        )


def _fixed_names(figures: dict[str, Any], levels: tuple[tuple[int, int, int], ...]) -> None:
    """The figure names ``INTERFACES.md`` fixes for ``load``, beside this bench's own."""
    for concurrency, *_ in levels:
        figures[f"queries_per_s_{concurrency}"] = figures[f"verified_per_s_c{concurrency}"]
    figures["query_p50_ms"] = figures["verified_p50_ms_c1"]
    figures["plain_p50_ms"] = figures["plain_p50_ms_c1"]
    figures["query_p99_ms_32"] = figures["verified_p99_ms_c32"]
    figures["worker_cpu_ms_per_query"] = figures["verified_cpu_ms_c32"]
    figures["worker_rss_mb"] = figures["worker_rss_mib"]


@benchmark("load")
def _bench(quick: bool) -> dict[str, Any]:
    import json
    from pathlib import Path

    total = 40 if quick else 400  # queries per level and kind, spread over its clients
    capacity_queries = 320 if quick else 6000
    batch, rounds = (8, 4) if quick else _STREAM
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
                interleave=concurrency == 1,
            )
            for kind, run in (("verified", runs["verified"]), ("plain", runs["plain"])):
                for name, value in _figures(run, idle).items():
                    figures[f"{kind}_{name}_c{concurrency}"] = value
            if concurrency == 1:
                # latency at low load from the calls interleaved one by one (the phases run
                # one after the other: a second of drift in the machine moved their ratio by
                # a tenth); the phases' own figures stay beside them
                for kind in ("verified", "plain"):
                    interleaved = _figures(runs[f"{kind}_interleaved"], idle)
                    for name in ("p50_ms", "p99_ms"):
                        figures[f"{kind}_{name}_c1_phased"] = figures[f"{kind}_{name}_c1"]
                        figures[f"{kind}_{name}_c1"] = interleaved[name]
        capacity = run_capacity(
            context,
            network=info["network"],
            contract=info["contract"],
            plain_url=info["wired"],
            worker=info["split"],
            connections=CAPACITY_CONNECTIONS,
            queries=capacity_queries,
            cpu_seconds=cpu,
        )
        for kind, run in capacity.items():
            for name, value in _figures(run, idle).items():
                figures[f"capacity_{kind}_{name}_c{CAPACITY_CONNECTIONS}"] = value
        accounts = json.loads(Path(info["network"]).read_text())["dev_accounts"]
        keys = list(accounts.values())[1 : 1 + _COMMAND_WALLETS]
        stream = asyncio.run(
            _stream(
                info["network"],
                info["contract"],
                keys,
                batch=batch,
                rounds=rounds,
                interval=block_time,
                cpu=functools.partial(_network_cpu_seconds, parent, "all_cpu"),
            )
        )
        figures.update(stream.figures())
        parent.send("rss")
        if not parent.poll(_REPLY_TIMEOUT_S):
            raise RuntimeError("the bench network did not report its memory")
        figures["worker_rss_mib"] = round(float(parent.recv()) / 2**20, 1)
    _fixed_names(figures, levels)
    for concurrency, *_ in levels:
        plain = figures[f"plain_p50_ms_c{concurrency}"]
        figures[f"overhead_x_c{concurrency}"] = (
            round(figures[f"verified_p50_ms_c{concurrency}"] / plain, 2) if plain else None
        )
    phased = figures["plain_p50_ms_c1_phased"]
    figures["overhead_x_c1_phased"] = (
        round(figures["verified_p50_ms_c1_phased"] / phased, 2) if phased else None
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
            "commands": f"a stream of {rounds} rounds, one per block time: each round, "
            f"{_COMMAND_WALLETS} wallets send {batch} commands each (Agent.commands: "
            "push_commands transactions) without waiting for earlier rounds; every command "
            "applied by both replicas of the cluster and its outcome verified (queries of up to "
            "256 outcomes). commands_per_s: the slope of a least-squares line through the count "
            "of verified commands against time; latency from a round's send time to its "
            "batch's verified outcomes (finality included); command_cpu_ms: every "
            "process of the network (anvil, both enclave processes, the network process) per "
            "command; command_client_cpu_ms: the SDK client's",
            "latency_c1": "verified_p50_ms_c1, plain_p50_ms_c1 (their p99s, overhead_x_c1): "
            "one client alternating a verified query and a plain call, which goes first "
            "alternating too, so drift in the machine's speed hits both alike; "
            "*_p50_ms_c1_phased, *_p99_ms_c1_phased: the same from the two phases run one "
            "after the other (where per_s and cpu figures come from)",
            "fixed_names": "queries_per_s_N = verified_per_s_cN; query_p50_ms / plain_p50_ms "
            "at 1 client; query_p99_ms_32 = verified_p99_ms_c32; worker_cpu_ms_per_query = "
            "verified_cpu_ms_c32; worker_rss_mb = worker_rss_mib (MiB)",
            "rss": "resident memory of the network process and w1's enclave process at the end",
            "capacity": f"capacity_*_c{CAPACITY_CONNECTIONS}: {capacity_queries} queries of "
            f"each kind on {CAPACITY_CONNECTIONS} keep-alive connections, one in flight each, "
            "from one client process that costs a few microseconds a request: verified "
            "queries sealed by the SDK just before the window (each its own request id, as "
            "Agent.query seals it) and every answer given all of Agent.query's checks "
            "(AsyncClient.check) after the window, which fails the bench if one does not "
            "pass; the worker's rate and CPU when it, not the clients, is the bottleneck",
        },
    }
