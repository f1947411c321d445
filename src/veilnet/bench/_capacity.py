"""The worker's capacity for ``veil bench load``: queries the SDK sealed ahead, sent on many
keep-alive connections by a client that costs a few microseconds a request, every answer
verified by the SDK once the round's clock has stopped.

The SDK clients of the other levels spend two to three times the worker's CPU on each query;
on a small machine they, not the worker, use up the cores, and a worker that idles between
queries spends more on each (its caches go cold). This load leaves the machine to the worker:
it measures what one worker serves when it is the bottleneck. Nothing is skipped: every query
is sealed for its own request id exactly as ``Agent.query`` seals it, and every answer gets
every check ``Agent.query`` makes (``AsyncClient.check``), after the window. Rounds of
``ROUND`` queries: sealed, then sent (the clock and the worker's CPU run only now), then
checked. The sealing and the checks stay out of the figures; the answers are checked seconds
after the block they name.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from typing import Any
from urllib.parse import urlsplit

import httptools

from veilnet.bench._load import STOP, LoadRun, receive_report

_READY_TIMEOUT_S = 120.0
_PHASE_TIMEOUT_S = 300.0
ROUND = 1500
"""Queries sealed, sent and checked at a time: the answers are checked seconds after their
block even on a slow machine (the SDK refuses an answer more than 32 blocks behind)."""
_GO = "go"


def run_capacity(
    context: Any,
    *,
    network: str,
    contract: str,
    plain_url: str,
    worker: str,
    connections: int,
    queries: int,
    cpu_seconds: Any,
) -> dict[str, LoadRun]:
    """``queries`` verified queries to ``worker`` and as many plain calls, each kind on
    ``connections`` connections at once from one client process, in rounds; the network's
    CPU is read around each round's window only.

    Raises:
        RuntimeError: the client process failed, an answer was not 200, or one failed a check.
    """
    parent, child = context.Pipe()
    process = context.Process(
        target=serve_capacity,
        args=(network, contract, plain_url, worker, connections, queries, child),
        name="veil-bench-capacity",
    )
    process.start()
    try:
        receive_report(parent, _READY_TIMEOUT_S)
        runs: dict[str, LoadRun] = {}
        for phase in ("verified", "plain"):
            latencies: list[float] = []
            wall_s = cpu_s = client_cpu_s = 0.0
            parent.send(phase)
            while "sealed" in receive_report(parent, _PHASE_TIMEOUT_S):
                cpu_before = cpu_seconds()  # the window only: not the sealing, not the checks
                parent.send(_GO)
                window = receive_report(parent, _PHASE_TIMEOUT_S)
                cpu_s += cpu_seconds() - cpu_before
                checked = receive_report(parent, _PHASE_TIMEOUT_S)
                if checked.get("checked") != len(window["latencies"]):
                    raise RuntimeError("an answer of the capacity load was not checked")
                latencies += window["latencies"]
                wall_s += float(window["wall_s"])
                client_cpu_s += float(window["cpu_s"])
            if len(latencies) != queries:
                raise RuntimeError(f"{len(latencies)} of {queries} {phase} calls answered")
            runs[phase] = LoadRun(
                latencies=latencies, wall_s=wall_s, cpu_s=cpu_s, client_cpu_s=client_cpu_s
            )
        return runs
    finally:
        with contextlib.suppress(OSError):
            parent.send(STOP)
        process.join(10)
        if process.is_alive():
            process.kill()
            process.join()


def serve_capacity(
    network: str,
    contract: str,
    plain_url: str,
    worker: str,
    connections: int,
    queries: int,
    conn: Any,
) -> None:
    """Child process: seal, send on the parent's word, report the window, then verify."""
    try:
        asyncio.run(_serve(network, contract, plain_url, worker, connections, queries, conn))
    except BaseException as exc:
        conn.send({"error": f"{type(exc).__name__}: {exc}"})
        raise


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request in flight (llhttp parses the answer)."""

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._body: list[bytes] = []
        self._reply: asyncio.Future[tuple[int, bytes]] | None = None
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._parser.feed_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._reply is not None and not self._reply.done():
            self._reply.set_exception(ConnectionError("the server closed the connection"))

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        body, self._body = b"".join(self._body), []
        if self._reply is not None and not self._reply.done():
            self._reply.set_result((self._parser.get_status_code(), body))

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        if self._transport is None or self._transport.is_closing():
            raise ConnectionError("the server closed the connection")
        self._reply = asyncio.get_running_loop().create_future()
        self._transport.write(raw)
        return await self._reply

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def _post(url: str, body: bytes, content_type: str) -> bytes:
    parts = urlsplit(url)
    head = (
        f"POST {parts.path} HTTP/1.1\r\nhost: {parts.netloc}\r\n"
        f"content-type: {content_type}\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _window(
    url: str, raws: list[bytes], connections: int
) -> tuple[list[tuple[int, bytes]], list[float], float, float]:
    """Send ``raws`` on ``connections`` connections, one in flight each: the answers in order,
    every latency, the wall time and this process's CPU time."""
    parts = urlsplit(url)
    if parts.hostname is None or parts.port is None:
        raise RuntimeError(f"no host and port in {url}")
    loop = asyncio.get_running_loop()
    opened = [
        await loop.create_connection(_Connection, parts.hostname, parts.port)
        for _ in range(connections)
    ]
    answers: list[tuple[int, bytes]] = [(0, b"")] * len(raws)
    latencies: list[float] = []

    async def run(index: int) -> None:
        connection = opened[index][1]
        for position in range(index, len(raws), connections):
            started = time.perf_counter()
            answers[position] = await connection.send(raws[position])
            latencies.append(time.perf_counter() - started)

    cpu_before, started = time.process_time(), time.perf_counter()
    try:
        await asyncio.gather(*(run(index) for index in range(connections)))
    finally:
        for _, connection in opened:
            connection.close()
    return answers, latencies, time.perf_counter() - started, time.process_time() - cpu_before


async def _serve(
    network: str,
    contract: str,
    plain_url: str,
    worker: str,
    connections: int,
    queries: int,
    conn: Any,
) -> None:
    from veilnet.crypto import Address
    from veilnet.sdk import AsyncClient

    address = Address.parse(worker)
    contract_id = bytes.fromhex(contract)
    async with AsyncClient.connect(network, allow_insecure_dev_tee=True) as client:
        await client.agent(contract).query({}, worker=address)  # worker verified, key cached
        url = client.worker_url(address)
        if url is None:
            raise RuntimeError("the worker published no API URL")
        conn.send({"ready": True})
        while (phase := await asyncio.to_thread(conn.recv)) != STOP:
            for count in _rounds(queries):
                if phase == "plain":
                    await _plain_round(conn, plain_url, connections, count)
                else:
                    await _verified_round(
                        conn, client, contract_id, address, url, connections, count
                    )
            conn.send({"done": True})


def _rounds(queries: int) -> list[int]:
    return [min(ROUND, queries - start) for start in range(0, queries, ROUND)]


async def _go(conn: Any, count: int) -> None:
    """Tell the parent ``count`` calls are ready; wait for its word."""
    conn.send({"sealed": count})
    if await asyncio.to_thread(conn.recv) != _GO:
        raise RuntimeError("the parent did not start the window")


async def _plain_round(conn: Any, url: str, connections: int, count: int) -> None:
    raws = [_post(url, b"{}", "application/json")] * count
    await _go(conn, count)
    answers, latencies, wall_s, cpu_s = await _window(url, raws, connections)
    conn.send({"latencies": latencies, "wall_s": wall_s, "cpu_s": cpu_s})
    bad = sum(1 for status, _ in answers if status != 200)
    if bad:
        raise RuntimeError(f"{bad} plain calls were not answered")
    conn.send({"checked": len(answers)})


async def _verified_round(
    conn: Any,
    client: Any,
    contract_id: bytes,
    address: Any,
    url: str,
    connections: int,
    count: int,
) -> None:
    from veilnet.sdk import constants as sdk_constants

    # sealed for the head the client sees now: a query is good for 64 blocks
    key = await client.contract_key(contract_id)
    head = await client.recent_head()
    boot = await client.worker_boot(address, url)
    body = client.call_body({})
    pending = [
        client.build_query(
            key,
            kind="call",
            body=body,
            head=head,
            worker=address,
            boot_id=boot,
            wallet=None,
            request_id=os.urandom(sdk_constants.REQUEST_ID_BYTES),
        )
        for _ in range(count)
    ]
    target = url.rstrip("/") + "/v1/query"
    raws = [_post(target, p.request, "application/octet-stream") for p in pending]
    await _go(conn, count)
    answers, latencies, wall_s, cpu_s = await _window(target, raws, connections)
    conn.send({"latencies": latencies, "wall_s": wall_s, "cpu_s": cpu_s})
    checked = 0
    for query, (status, raw) in zip(pending, answers, strict=True):
        if status != 200:
            raise RuntimeError(f"a verified query was answered {status}: {raw[:200]!r}")
        opened = await client.check(query, raw, url=url, asked=address)
        client.query_result(opened)  # raises if the agent failed
        checked += 1
    conn.send({"checked": checked})
