"""``veil bench query``: latency and throughput of encrypted, signed, verified queries on loopback.
Baseline in the same run: the same agent function over plain HTTP (JSON in, JSON out, no crypto).

Two baselines, interleaved call by call with the encrypted query: ``plain`` is served like the
worker's ``/v1/query`` (same server, rate limiter, error mapping, query thread pool and metric),
so the ratio isolates what confidentiality costs; ``bare`` runs the agent on the event loop of
a minimal app, the cheapest any server could be.

The network has two workers in one cluster: w1 runs its core in an enclave process behind the
bytes-only interface (as every worker does by default) and answers the headline figures; w2
serves the same interface in its own process, so ``boundary_ratio`` (w1's p50 over w2's) is
the cost of the process boundary, and the plain baselines run the agent on w2's core.

Then the same two kinds of call under load: 32 clients in separate client processes at once
against w1 (``*_concurrent``), with the CPU the network and w1's enclave spend per call.

Also measures ``devnet_first_query_s``: from ``Devnet.start()`` to the first verified query
answer of a freshly deployed agent. The chain is what ``veil devnet`` picks (anvil when
installed, else the embedded one); the network runs in a child process, the client here.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from veilnet._gc import freeze_loaded
from veilnet.bench import benchmark
from veilnet.bench._load import LoadRun, run_load
from veilnet.crypto import Address

_AGENT = "counter.js"
_START_TIMEOUT_S = 120.0
_STOP_TIMEOUT_S = 30.0
_CPU_TIMEOUT_S = 10.0
# 4 x 8 = 32 concurrent clients, in processes apart from the network's and the bench's.
_LOAD_PROCESSES = 4
_LOAD_CLIENTS_PER_PROCESS = 8


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _plain_call(host: Any, contract_id: bytes, caller: bytes) -> Any:
    """The agent's ``query`` on the worker's committed state, JSON in and out: what a query
    costs without envelopes, certificates, signatures and checks."""
    from veilnet.crypto import QuerySession, SecretKey
    from veilnet.protocol import envelopes as proto
    from veilnet.runtime import queries
    from veilnet.runtime.queries import PreparedQuery

    # A prepared query carries a session; the plain path never seals with it.
    unused = SecretKey.derive(b"\x00" * 32, "bench-plain")
    session = QuerySession.agree(
        unused,
        unused.public.x25519,
        binding=proto.session_binding(0, contract_id, 0),
        secret=bytes(32),
    )

    def call(body: bytes) -> bytes:
        msg = json.loads(body)
        with host.lock:  # the same snapshot the encrypted path takes, minus every check
            # The bench reaches into a local-mode worker's core on purpose: the baseline is
            # the agent call alone, which no interface of the enclave offers (nor should it).
            core = host.enclave.link.service.core
            context = core._core
            snapshot = queries.served_cluster(
                context, core.contracts[contract_id].cluster
            ).contracts
            prepared = PreparedQuery(
                contract_id=contract_id,
                wallet=caller,
                session=session,
                request_id=b"",
                msg=msg,
                answer=None,
                head=core.head,
                commitment=b"",
                snapshot=snapshot,
            )
        answer = queries.run_agent(context, prepared, io=None).to_public()
        return json.dumps(answer, sort_keys=True).encode()

    return call


def _plain_apps(host: Any, call: Any, pool: Any) -> tuple[Any, Any]:
    """Two plain endpoints for ``call``: one served like the worker's ``/v1/query`` (a bare
    ASGI route with the rate limit, error mapping and metrics; the agent off the event loop on
    the query pool, as an in-process core must), one bare (the agent on the event loop)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route
    from starlette.types import Receive, Scope, Send

    from veilnet.worker.api import TokenBuckets, guard

    buckets = TokenBuckets(rate=host.config.rate_per_s, burst=host.config.rate_burst)
    observe = host.metrics.query_seconds.observe

    async def served(request: Request) -> Response:
        started = time.perf_counter()
        body = await request.body()
        # off the event loop, as an in-process core's agent call must be
        answer = await asyncio.get_running_loop().run_in_executor(pool, call, body)
        observe(time.perf_counter() - started)
        return Response(answer, media_type="application/json")

    guarded = guard(host, buckets, served)

    async def wired(scope: Scope, receive: Receive, send: Send) -> None:
        response = await guarded(Request(scope, receive))
        await response(scope, receive, send)

    async def bare(request: Request) -> Response:
        return Response(call(await request.body()), media_type="application/json")

    return wired, Starlette(routes=[Route("/plain", bare, methods=["POST"])])


def _serve_network(tmp: str, block_time: float, conn: Any) -> None:
    """Child process: a two-worker devnet (w1 split, w2 in-process) with the agent deployed and
    the two plain endpoints, until the parent says stop. Sends the parent what it needs."""
    from veilnet.devnet import Devnet, DevnetOptions
    from veilnet.devnet._demo import examples_dir
    from veilnet.sdk import Client
    from veilnet.worker.api import APIServer

    options = DevnetOptions(
        workers=2,
        local_enclaves=1,
        chain="auto",
        block_time=block_time,
        data_dir=Path(tmp),
        gateway=False,
        rate_per_s=1e9,
        rate_burst=10**9,
    )
    began = time.monotonic()
    devnet = Devnet(options)
    servers: list[Any] = []
    pool: ThreadPoolExecutor | None = None
    try:
        devnet.start()
        freeze_loaded()  # as veil devnet does
        with Client.connect(devnet.network, allow_insecure_dev_tee=True) as client:
            agent = client.deploy(examples_dir() / _AGENT, init={"start": 1})
            first = agent.query({})
            first_query_s = time.monotonic() - began
            if first.value["count"] != 1:
                raise RuntimeError("the first query gave a wrong answer")
            split, local = devnet.workers  # w1: enclave process; w2: the same core in-process
            host = local
            call = _plain_call(host, bytes.fromhex(agent.id[2:]), client.wallet.address.raw)
            pool = ThreadPoolExecutor(host.config.query_threads, thread_name_prefix="veil-plain")
            servers = [APIServer(app) for app in _plain_apps(host, call, pool)]
            for server in servers:
                server.start()
            conn.send(
                {
                    "chain": devnet.network["chain"],
                    "network": str(devnet.network_file),
                    "contract": agent.id[2:],
                    "wired": servers[0].url + "/plain",
                    "bare": servers[1].url + "/plain",
                    "first_query_s": first_query_s,
                    "split": split.address,
                    "local": local.address,
                }
            )
            enclave_pid = split.enclave.link.pid
            # every other process of the network: the other enclave processes, the chain's node
            others = [
                pid
                for pid in (
                    *(getattr(getattr(h.enclave, "link", None), "pid", None) for h in devnet.hosts),
                    getattr(getattr(devnet.chain, "process", None), "pid", None),
                )
                if isinstance(pid, int) and pid != enclave_pid
            ]
            # Until told to stop, report on request the CPU time of this process (all its
            # threads) and of the split worker's enclave process ("cpu"), with every other
            # process of the network too ("all_cpu"), or their resident memory ("rss").
            while (ask := conn.recv()) in ("cpu", "all_cpu", "rss"):
                if ask == "rss":
                    conn.send(_rss_bytes(os.getpid()) + _rss_bytes(enclave_pid))
                    continue
                spent = time.process_time() + _process_cpu_seconds(enclave_pid)
                if ask == "all_cpu":
                    spent += sum(_process_cpu_seconds(pid) for pid in others)
                conn.send(spent)
    except BaseException as exc:
        conn.send({"error": f"{type(exc).__name__}: {exc}"})
        raise
    finally:
        for server in servers:
            server.stop()
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        devnet.stop()


@contextlib.contextmanager
def bench_network(context: Any, block_time: float) -> Iterator[tuple[dict[str, Any], Any]]:
    """The bench network (``_serve_network``) in a child process: yields what it reports once
    up, and the pipe that asks it for CPU time or memory; stops it on exit."""
    with tempfile.TemporaryDirectory(prefix="veil-bench-network-") as tmp:
        parent, child = context.Pipe()
        process = context.Process(
            target=_serve_network, args=(tmp, block_time, child), name="veil-bench-network"
        )
        process.start()
        try:
            if not parent.poll(_START_TIMEOUT_S):
                raise RuntimeError("the bench network did not start in time")
            info: dict[str, Any] = parent.recv()
            if "error" in info:
                raise RuntimeError(f"the bench network failed: {info['error']}")
            yield info, parent
        finally:
            parent.send("stop")
            process.join(_STOP_TIMEOUT_S)
            if process.is_alive():
                process.kill()
                process.join()


def _process_cpu_seconds(pid: int) -> float:
    """User + system CPU of another process so far (Linux ``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")


def _rss_bytes(pid: int) -> int:
    """Resident memory of a process (Linux ``/proc``; 0 elsewhere)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _network_cpu_seconds(conn: Any, ask: str = "cpu") -> float:
    conn.send(ask)
    if not conn.poll(_CPU_TIMEOUT_S):
        raise RuntimeError("the bench network did not report its CPU time")
    return float(conn.recv())


def _per_s(run: LoadRun) -> float:
    return round(run.queries / run.wall_s, 1)


def _p50_ms(run: LoadRun) -> float:
    return round(statistics.median(run.latencies) * 1000, 3)


def _cpu_ms_per_call(run: LoadRun) -> float:
    return round(run.cpu_s * 1000 / run.queries, 3)


@benchmark("query")
def _bench(quick: bool) -> dict[str, Any]:
    """The network (devnet, worker, plain endpoints) runs in a child process and the client in
    this one, as on two machines: neither waits for the other's interpreter lock."""
    import multiprocessing

    import httpx

    from veilnet.sdk import Client

    calls = 40 if quick else 600
    load_queries = 5 if quick else 50  # per concurrent client and kind of call
    block_time = 0.25 if quick else 0.5
    samples: list[float] = []
    in_process: list[float] = []
    plain: list[float] = []
    bare: list[float] = []
    context = multiprocessing.get_context("spawn")
    with bench_network(context, block_time) as (info, parent):
        with (
            Client.connect(info["network"], allow_insecure_dev_tee=True) as client,
            httpx.Client() as http,
        ):
            agent = client.agent(info["contract"])
            wired_url, bare_url = info["wired"], info["bare"]
            split = Address.parse(info["split"])
            local = Address.parse(info["local"])
            for _ in range(5):
                agent.query({}, worker=split)
                agent.query({}, worker=local)
                http.post(wired_url, content=b"{}")
                http.post(bare_url, content=b"{}")
            # Interleaved, so drift in the machine's load hits all four alike.
            for _ in range(calls):
                t0 = time.perf_counter()
                agent.query({}, worker=split)
                t1 = time.perf_counter()
                agent.query({}, worker=local)
                t2 = time.perf_counter()
                http.post(wired_url, content=b"{}").json()
                t3 = time.perf_counter()
                http.post(bare_url, content=b"{}").json()
                t4 = time.perf_counter()
                samples.append(t1 - t0)
                in_process.append(t2 - t1)
                plain.append(t3 - t2)
                bare.append(t4 - t3)

        load = run_load(
            context,
            network=info["network"],
            contract=info["contract"],
            plain_url=wired_url,
            worker=info["split"],
            processes=_LOAD_PROCESSES,
            clients=_LOAD_CLIENTS_PER_PROCESS,
            queries=load_queries,
            cpu_seconds=functools.partial(_network_cpu_seconds, parent),
        )
    first_query_s = float(info["first_query_s"])
    p50 = statistics.median(samples) * 1000
    in_process_p50 = statistics.median(in_process) * 1000
    plain_p50 = statistics.median(plain) * 1000
    bare_p50 = statistics.median(bare) * 1000
    return {
        "figures": {
            "query_p50_ms": round(p50, 3),
            "query_p99_ms": round(_percentile(samples, 0.99) * 1000, 3),
            "queries_per_s": round(calls / sum(samples), 1),
            "plain_p50_ms": round(plain_p50, 3),
            "plain_p99_ms": round(_percentile(plain, 0.99) * 1000, 3),
            "overhead_x": round(p50 / plain_p50, 2) if plain_p50 else None,
            "query_p50_ms_in_process": round(in_process_p50, 3),
            "overhead_in_process_x": round(in_process_p50 / plain_p50, 2) if plain_p50 else None,
            "boundary_ratio": round(p50 / in_process_p50, 3) if in_process_p50 else None,
            "bare_plain_p50_ms": round(bare_p50, 3),
            "overhead_vs_bare_x": round(p50 / bare_p50, 2) if bare_p50 else None,
            "devnet_first_query_s": round(first_query_s, 3),
            "queries_per_s_concurrent": _per_s(load["verified"]),
            "query_p50_ms_concurrent": _p50_ms(load["verified"]),
            "plain_per_s_concurrent": _per_s(load["plain"]),
            "plain_p50_ms_concurrent": _p50_ms(load["plain"]),
            "worker_cpu_ms_per_query": _cpu_ms_per_call(load["verified"]),
            "plain_cpu_ms_per_query": _cpu_ms_per_call(load["plain"]),
        },
        "params": {
            "calls": calls,
            "agent": _AGENT,
            "chain": info["chain"],
            "block_time_s": block_time,
            "workers": 2,
            "enclaves": "query_p50_ms and the concurrent load: w1, its core in an enclave "
            "process behind the bytes-only interface (the default); query_p50_ms_in_process: "
            "w2, the same interface served in the worker's process; boundary_ratio: their "
            "quotient; plain: the agent call on w2's core",
            "concurrent_clients": _LOAD_PROCESSES * _LOAD_CLIENTS_PER_PROCESS,
            "concurrent_processes": _LOAD_PROCESSES,
            "concurrent_calls_per_client": load_queries,
            "concurrent": "verified queries (veilnet.AsyncClient), then plain calls (httpx), each "
            "client one call at a time; calls/s over the wall time of the whole run",
            "worker_cpu": "user + system CPU of the network process (workers, gatekeeper, chain "
            "follower; the embedded chain, not anvil) and of w1's enclave process during the "
            "concurrent run, per call",
            "processes": "client in the bench process; devnet and worker in a child process; "
            "concurrent clients in their own processes",
            "client": "veilnet.Client (sync, httpx), worker verification cached",
            "query_includes": "certificate and session reuse, request and response sealing, "
            "EIP-712 response signature and its check, block-hash and head checks against the "
            "client's cached chain view",
            "plain": "same agent call, JSON over HTTP, served like /v1/query (rate limiter, "
            "error mapping, query thread pool, metric); bare: agent on the event loop",
        },
    }
