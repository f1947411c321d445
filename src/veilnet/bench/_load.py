"""Concurrent load for ``veil bench query``: client processes of asyncio clients that run a fixed
number of verified (or plain) queries each on the parent's word and report every latency."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

WARMUP_QUERIES = 2
"""Per client and kind, before the clock starts: worker verification, key and chain view cached."""

PHASES = ("verified", "plain")
INTERLEAVED = "interleaved"
"""A phase of its own: each client alternates a verified query and a plain call (which goes
first alternates too), so drift in the machine's speed hits both kinds alike."""

STOP = "stop"
_READY_TIMEOUT_S = 120.0
_PHASE_TIMEOUT_S = 120.0
_STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class LoadRun:
    """One phase of the load: every client's queries, the wall time from the start signal to
    the last report, and the CPU the network process spent meanwhile."""

    latencies: list[float]
    wall_s: float
    cpu_s: float
    client_cpu_s: float = 0.0
    """CPU the client processes spent in the phase (user + system), all of them together."""

    @property
    def queries(self) -> int:
        return len(self.latencies)


def run_load(
    context: Any,
    *,
    network: str,
    contract: str,
    plain_url: str,
    worker: str,
    processes: int,
    clients: int,
    queries: int,
    cpu_seconds: Callable[[], float],
    interleave: bool = False,
) -> dict[str, LoadRun]:
    """Start ``processes`` client processes of ``clients`` clients each, wait until all have
    warmed up, then run each phase of ``PHASES`` with all of them at once; with ``interleave``
    then an ``INTERLEAVED`` phase too, whose latencies come back as ``verified_interleaved``
    and ``plain_interleaved`` (their CPU figures are the phase's, both kinds together).

    Args:
        context: a multiprocessing context (spawn: no state inherited from the bench process).
        worker: the address of the one worker every verified query goes to.
        queries: per client and phase; the load stops when every client has sent them.
        cpu_seconds: reads the network process's CPU time (user + system) so far.

    Raises:
        RuntimeError: a client process failed or did not answer in time.
    """
    workers = []
    try:
        for index in range(processes):
            parent, child = context.Pipe()
            process = context.Process(
                target=serve_clients,
                args=(network, contract, plain_url, worker, clients, queries, child),
                name=f"veil-bench-clients-{index}",
            )
            process.start()
            workers.append((process, parent))
        for _, conn in workers:
            receive_report(conn, _READY_TIMEOUT_S)
        runs = {}
        for phase in (*PHASES, INTERLEAVED) if interleave else PHASES:
            cpu_before = cpu_seconds()
            started = time.perf_counter()
            for _, conn in workers:
                conn.send(phase)
            # an interleaved phase makes twice the calls
            timeout = _PHASE_TIMEOUT_S * (2 if phase == INTERLEAVED else 1)
            reports = [receive_report(conn, timeout) for _, conn in workers]
            wall_s = time.perf_counter() - started
            cpu_s = cpu_seconds() - cpu_before
            kinds = (
                (("verified_" + INTERLEAVED, "latencies"), ("plain_" + INTERLEAVED, "plain"))
                if phase == INTERLEAVED
                else ((phase, "latencies"),)
            )
            for name, key in kinds:
                runs[name] = LoadRun(
                    latencies=[x for report in reports for x in report.get(key, [])],
                    wall_s=wall_s,
                    cpu_s=cpu_s,
                    client_cpu_s=sum(float(report.get("cpu_s", 0.0)) for report in reports),
                )
        return runs
    finally:
        for _, conn in workers:
            with contextlib.suppress(OSError):
                conn.send(STOP)
        for process, _ in workers:
            process.join(_STOP_TIMEOUT_S)
            if process.is_alive():
                process.kill()
                process.join()


def receive_report(conn: Any, timeout: float) -> dict[str, Any]:
    """The next message of a bench client process; raises RuntimeError for its error or for
    silence past ``timeout``."""
    if not conn.poll(timeout):
        raise RuntimeError("a bench client process did not answer in time")
    message: dict[str, Any] = conn.recv()
    if "error" in message:
        raise RuntimeError(f"a bench client process failed: {message['error']}")
    return message


def serve_clients(
    network: str,
    contract: str,
    plain_url: str,
    worker: str,
    clients: int,
    queries: int,
    conn: Any,
) -> None:
    """Child process: ``clients`` verified-query clients and as many plain ones, each with its
    own connections; runs the phase the parent names each time, until it says stop."""
    try:
        asyncio.run(_serve(network, contract, plain_url, worker, clients, queries, conn))
    except BaseException as exc:
        conn.send({"error": f"{type(exc).__name__}: {exc}"})
        raise


async def _serve(
    network: str,
    contract: str,
    plain_url: str,
    worker: str,
    clients: int,
    queries: int,
    conn: Any,
) -> None:
    import httpx

    from veilnet.crypto import Address
    from veilnet.sdk import AsyncClient

    target = Address.parse(worker)

    async with contextlib.AsyncExitStack() as stack:
        agents = []
        plains = []
        for _ in range(clients):
            client = await stack.enter_async_context(
                AsyncClient.connect(network, allow_insecure_dev_tee=True)  # the bench's devnet
            )
            agents.append(client.agent(contract))
            plains.append(await stack.enter_async_context(httpx.AsyncClient()))

        async def verified(index: int) -> None:
            await agents[index].query({}, worker=target)

        async def plain(index: int) -> None:
            reply = await plains[index].post(plain_url, content=b"{}")
            reply.raise_for_status()
            reply.json()

        calls: dict[str, Callable[[int], Awaitable[None]]] = {
            "verified": verified,
            "plain": plain,
        }
        for call in calls.values():
            await asyncio.gather(*(_timed(call, i, WARMUP_QUERIES) for i in range(clients)))
        conn.send({"ready": True})
        # The pipe is read off the event loop so the clients' connections stay on this one loop.
        while (phase := await asyncio.to_thread(conn.recv)) != STOP:
            began = time.process_time()
            report: dict[str, Any]
            if phase == INTERLEAVED:
                pairs = await asyncio.gather(
                    *(_interleaved(verified, plain, i, queries) for i in range(clients))
                )
                report = {
                    "latencies": [x for samples, _ in pairs for x in samples],
                    "plain": [x for _, samples in pairs for x in samples],
                }
            else:
                per_client = await asyncio.gather(
                    *(_timed(calls[phase], i, queries) for i in range(clients))
                )
                report = {"latencies": [x for samples in per_client for x in samples]}
            report["cpu_s"] = time.process_time() - began
            conn.send(report)


async def _interleaved(
    first: Callable[[int], Awaitable[None]],
    second: Callable[[int], Awaitable[None]],
    index: int,
    count: int,
) -> tuple[list[float], list[float]]:
    """``count`` calls of each, alternating, and which of the two goes first alternates too:
    the latencies of ``first``'s calls and of ``second``'s."""
    samples: tuple[list[float], list[float]] = ([], [])
    for round_ in range(count):
        for which in (0, 1) if round_ % 2 == 0 else (1, 0):
            started = time.perf_counter()
            await (first, second)[which](index)
            samples[which].append(time.perf_counter() - started)
    return samples


async def _timed(call: Callable[[int], Awaitable[None]], index: int, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        await call(index)
        samples.append(time.perf_counter() - started)
    return samples
