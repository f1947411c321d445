"""``veil bench query``: latency and throughput of encrypted, signed, verified queries on loopback.
Baseline in the same run: the same agent function over plain HTTP (JSON in, JSON out, no crypto).

Also measures ``devnet_first_query_s``: from ``Devnet.start()`` (embedded chain) to the first
verified query answer of a freshly deployed agent. Everything runs in this process.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from veilnet.bench import benchmark

_AGENT = "counter.js"


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _plain_app(host: Any, contract_id: bytes, caller: bytes) -> Any:
    """A starlette app calling the agent's ``query`` on the worker's committed state, in the
    clear: what a query costs without envelopes, certificates, signatures and checks."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from veilnet.runtime.core import PreparedQuery

    async def plain(request: Request) -> Response:
        msg = json.loads(await request.body())
        with host.lock:  # the same snapshot the encrypted path takes, minus every check
            core = host.core
            snapshot = core._snapshot(core.contracts[contract_id].cluster)
            prepared = PreparedQuery(
                contract_id=contract_id,
                wallet=caller,
                ephemeral_key=b"",
                request_id=b"",
                msg=msg,
                answer=None,
                head=core.head,
                commitment=b"",
                snapshot=snapshot,
            )
        outcome = core._invoke_query(prepared, io=None)
        body = {k: v for k, v in outcome.items() if k != "sender"}
        return Response(json.dumps(body, sort_keys=True), media_type="application/json")

    return Starlette(routes=[Route("/plain", plain, methods=["POST"])])


@benchmark("query")
def _bench(quick: bool) -> dict[str, Any]:
    from veilnet.devnet import Devnet, DevnetOptions
    from veilnet.devnet._demo import examples_dir
    from veilnet.inference import serve_in_thread
    from veilnet.sdk import Client

    calls = 40 if quick else 600
    block_time = 0.25 if quick else 0.5
    with tempfile.TemporaryDirectory(prefix="veil-bench-query-") as tmp:
        options = DevnetOptions(
            workers=1,
            chain="embedded",
            block_time=block_time,
            data_dir=Path(tmp),
            gateway=False,
            rate_per_s=1e9,
            rate_burst=10**9,
        )
        began = time.monotonic()
        devnet = Devnet(options)
        try:
            devnet.start()
            client = Client.connect(devnet.network)
            try:
                agent = client.deploy(examples_dir() / _AGENT, init={"start": 1})
                first = agent.query({})
                first_query_s = time.monotonic() - began
                if first.value["count"] != 1:
                    raise RuntimeError("the first query gave a wrong answer")
                for _ in range(5):
                    agent.query({})
                samples = []
                started = time.perf_counter()
                for _ in range(calls):
                    t0 = time.perf_counter()
                    agent.query({})
                    samples.append(time.perf_counter() - t0)
                total = time.perf_counter() - started
                host = devnet.workers[0]
                app = _plain_app(host, agent.contract_id, client.wallet.address.raw)
                import httpx

                plain: list[float] = []
                with serve_in_thread(app) as url, httpx.Client() as http:
                    for _ in range(5):
                        http.post(url + "/plain", content=b"{}")
                    for _ in range(calls):
                        t0 = time.perf_counter()
                        reply = http.post(url + "/plain", content=b"{}")
                        reply.json()
                        plain.append(time.perf_counter() - t0)
            finally:
                client.close()
        finally:
            devnet.stop()
    p50 = statistics.median(samples) * 1000
    plain_p50 = statistics.median(plain) * 1000
    return {
        "figures": {
            "query_p50_ms": round(p50, 3),
            "query_p99_ms": round(_percentile(samples, 0.99) * 1000, 3),
            "queries_per_s": round(calls / total, 1),
            "plain_p50_ms": round(plain_p50, 3),
            "overhead_x": round(p50 / plain_p50, 2) if plain_p50 else None,
            "devnet_first_query_s": round(first_query_s, 3),
        },
        "params": {
            "calls": calls,
            "agent": _AGENT,
            "chain": "embedded",
            "block_time_s": block_time,
            "workers": 1,
            "client": "veilnet.Client (sync, httpx), worker verification cached",
            "query_includes": "certificate reuse, HPKE seal/open, EIP-712 signature check, "
            "block-hash and head lookup on the client's RPC",
        },
    }
