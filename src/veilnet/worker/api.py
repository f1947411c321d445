"""The worker's HTTP API (Starlette, served by uvicorn in a thread): health, info, attestation,
encrypted queries, public contract info and Prometheus metrics. Errors are ``{"error": {...}}``.

``POST /v1/query`` is the one hot route: a bare ASGI handler in front of the framework (no
routing or middleware on its path) that awaits the enclave's socket on the event loop, so no
thread is held while the core answers; every other route goes through Starlette."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from veilnet._version import __version__
from veilnet.errors import InternalError, VeilnetError
from veilnet.worker.constants import MAX_NONCE_HEX, MAX_QUERY_BODY, MAX_RATE_CLIENTS
from veilnet.worker.errors import BadRequest, RateLimited, RequestTooLarge, RouteNotFound
from veilnet.worker.interfaces import (
    AttestationView,
    ContractView,
    HealthView,
    WorkerInfoView,
    WorkerService,
)
from veilnet.worker.metrics import CONTENT_TYPE_LATEST

__all__ = ["APIServer", "TokenBuckets", "create_app", "guard"]

_log = logging.getLogger("veilnet.worker.api")

Handler = Callable[[Request], Awaitable[Response]]


class TokenBuckets:
    """A token bucket per client: ``rate`` tokens per second up to ``burst``.

    Args:
        clock: monotonic seconds (tests pass a fake one).
    """

    def __init__(
        self,
        *,
        rate: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = MAX_RATE_CLIENTS,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._max = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        """Spend one token; returns 0.0 if allowed, else seconds until the next token."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.pop(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[client] = (tokens - 1.0, now)
                wait = 0.0
            else:
                self._buckets[client] = (tokens, now)
                wait = (1.0 - tokens) / self.rate
            while len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
            return wait


def guard(host: WorkerService, buckets: TokenBuckets | None, handler: Handler) -> Handler:
    """Wrap an endpoint: the client's rate limit (unless ``buckets`` is None), and every error
    as ``{"error": {...}}`` with its stable code."""

    async def endpoint(request: Request) -> Response:
        try:
            if buckets is not None:
                client = request.client.host if request.client else "unknown"
                wait = buckets.take(client)
                if wait > 0:
                    raise RateLimited("too many requests", retry_after_s=round(wait, 3))
            return await handler(request)
        except VeilnetError as exc:
            return _error(host, exc)
        except Exception:
            _log.exception("worker API handler failed")
            return _error(host, InternalError("the worker failed to answer"))

    return endpoint


def _error(host: WorkerService, exc: VeilnetError) -> JSONResponse:
    host.metrics.http_errors.labels(code=exc.code).inc()
    headers = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(max(1, int(exc.details.get("retry_after_s", 1) + 0.999)))
    return JSONResponse(exc.to_json(), status_code=exc.http_status, headers=headers)


def create_app(
    host: WorkerService,
    *,
    clock: Callable[[], float] = time.monotonic,
    limiter: TokenBuckets | None = None,
) -> ASGIApp:
    """The ASGI app of one worker host.

    Args:
        clock: monotonic seconds for the per-client token buckets.
        limiter: the buckets to use (default: the host config's rate and burst on ``clock``).
    """
    buckets = limiter or TokenBuckets(
        rate=host.config.rate_per_s, burst=host.config.rate_burst, clock=clock
    )

    def guarded(handler: Handler, *, limited: bool = True) -> Handler:
        return guard(host, buckets if limited else None, handler)

    async def health(request: Request) -> Response:
        view = host.health()
        return JSONResponse(_health_json(view), status_code=200 if view.status == "ok" else 503)

    async def info(request: Request) -> Response:
        return JSONResponse(_info_json(await run_in_threadpool(host.info)))

    async def attestation(request: Request) -> Response:
        raw = request.query_params.get("nonce", "")
        nonce = _hex(raw, "nonce", max_chars=MAX_NONCE_HEX)
        if len(nonce) != 32:
            raise BadRequest("nonce must be 32 bytes of hex")
        return JSONResponse(_attestation_json(await run_in_threadpool(host.attest, nonce)))

    answered = {"ok": host.metrics.queries.labels(outcome="ok")}
    observe = host.metrics.query_seconds.observe

    async def query(scope: Scope, receive: Receive, send: Send) -> None:
        """``POST /v1/query`` as a bare ASGI app: the one hot route skips the framework's
        routing and middleware, and the enclave call waits on its socket, not a thread."""
        client = scope.get("client")
        wait = buckets.take(client[0] if client else "unknown")
        if wait > 0:  # refused before it was read: an HTTP error, not a query answered
            limited = RateLimited("too many requests", retry_after_s=round(wait, 3))
            await _error(host, limited)(scope, receive, send)
            return
        started = time.perf_counter()
        outcome = "ok"
        try:
            body = await _receive_bounded(scope, receive, MAX_QUERY_BODY)
            answer = await host.query_async(body)
        except VeilnetError as exc:
            outcome = exc.code
            await _error(host, exc)(scope, receive, send)
            return
        except Exception:
            outcome = InternalError.code
            _log.exception("worker API handler failed")
            await _error(host, InternalError("the worker failed to answer"))(scope, receive, send)
            return
        finally:
            counter = answered.get(outcome)
            if counter is None:
                counter = answered[outcome] = host.metrics.queries.labels(outcome=outcome)
            counter.inc()
            observe(time.perf_counter() - started)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/octet-stream"),
                    (b"content-length", str(len(answer)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer})

    async def contract(request: Request) -> Response:
        contract_id = _hex(request.path_params["id_hex"], "contract id", max_chars=64)
        if len(contract_id) != 32:
            raise BadRequest("contract id must be 32 bytes of hex")
        view = await run_in_threadpool(host.contract, contract_id)
        return JSONResponse(_contract_json(view))

    async def snapshot(request: Request) -> Response:
        joiner = _hex(request.path_params["address_hex"], "worker address", max_chars=40)
        if len(joiner) != 20:
            raise BadRequest("a worker address is 20 bytes of hex")
        sealed = await run_in_threadpool(host.snapshot, joiner)
        return Response(sealed, media_type="application/octet-stream")

    async def metrics(request: Request) -> Response:
        return Response(host.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        error = RouteNotFound("no such endpoint", method=request.method, status=status)
        host.metrics.http_errors.labels(code=error.code).inc()
        return JSONResponse(error.to_json(), status_code=status if status in (404, 405) else 404)

    routes = [
        Route("/v1/health", guarded(health, limited=False), methods=["GET"]),
        Route("/v1/info", guarded(info), methods=["GET"]),
        Route("/v1/attestation", guarded(attestation), methods=["GET"]),
        Route("/v1/contracts/{id_hex}", guarded(contract), methods=["GET"]),
        Route("/v1/snapshots/{address_hex}", guarded(snapshot), methods=["GET"]),
        Route("/metrics", guarded(metrics, limited=False), methods=["GET"]),
    ]
    framework = Starlette(routes=routes, exception_handlers={HTTPException: not_found})

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        # with or without a trailing slash, as the framework's redirect used to allow
        if scope["type"] == "http" and scope["path"] in ("/v1/query", "/v1/query/"):
            if scope["method"] == "POST":
                await query(scope, receive, send)
                return
            error = RouteNotFound("no such endpoint", method=scope["method"], status=405)
            host.metrics.http_errors.labels(code=error.code).inc()
            await JSONResponse(error.to_json(), status_code=405, headers={"Allow": "POST"})(
                scope, receive, send
            )
            return
        await framework(scope, receive, send)

    return app


def _hex(text: str, what: str, *, max_chars: int) -> bytes:
    raw = text.removeprefix("0x")
    if len(raw) > max_chars:
        raise BadRequest(f"{what} is too long")
    try:
        return bytes.fromhex(raw)
    except ValueError as exc:
        raise BadRequest(f"{what} is not hex") from exc


async def _receive_bounded(scope: Scope, receive: Receive, limit: int) -> bytes:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                size = int(value)
            except ValueError as exc:
                raise BadRequest("bad Content-Length") from exc
            if size > limit:
                raise RequestTooLarge("request body is too large", max_size=limit)
    chunks: list[bytes] = []
    total = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect: nobody to answer
            raise BadRequest("the client went away before its request was whole")
        chunk = message.get("body", b"")
        total += len(chunk)
        if total > limit:
            raise RequestTooLarge("request body is too large", max_size=limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _0x(data: bytes) -> str:
    return "0x" + data.hex()


def _0x_or_none(data: bytes | None) -> str | None:
    return None if data is None else _0x(data)


def _health_json(view: HealthView) -> dict[str, Any]:
    return {
        "status": view.status,
        "applied_block": view.applied_block,
        "chain_head": view.chain_head,
        "registered": view.registered,
        "boot_id": _0x_or_none(view.boot_id),
        "diverged_at": view.diverged_at,
        "rejected": (
            None
            if view.rejected_code is None
            else {"code": view.rejected_code, "block": view.rejected_block}
        ),
    }


def _info_json(view: WorkerInfoView) -> dict[str, Any]:
    return {
        "name": view.name,
        "address": view.address.hex,
        "operator": view.operator.hex,
        "chain_id": view.chain_id,
        "registry": view.registry.hex,
        "bus": view.bus.hex,
        "tee": view.tee,
        "measurement": _0x(view.measurement),
        "clusters": [_0x(cluster.cluster_id) for cluster in view.clusters],
        "cluster": _0x_or_none(view.cluster),
        "confidence": view.confidence,
        "last_applied_block": view.last_applied_block,
        "last_applied_hash": None
        if view.last_applied_hash is None
        else _0x(view.last_applied_hash),
        "state_commitments": {
            _0x(cluster.cluster_id): _0x(cluster.state_commitment)
            for cluster in view.clusters
            if cluster.is_member and cluster.state_commitment is not None
        },
        "status": view.status,
        "version": __version__,
    }


def _attestation_json(view: AttestationView) -> dict[str, Any]:
    return {
        "address": view.address.hex,
        "quote": view.quote.hex(),
        "collateral": json.loads(view.collateral),
        "report_data": view.report_data.hex(),
    }


def _contract_json(view: ContractView) -> dict[str, Any]:
    return {
        "contract_id": _0x(view.contract_id),
        "cluster": _0x(view.cluster),
        "owner": view.owner.hex,
        "controller": view.controller.hex,
        "code_hash": _0x(view.code_hash),
        "paused": view.paused,
        "epoch": view.epoch,
        "public_key": _0x(view.public_key),
        "key_address": None if view.key_address is None else view.key_address.hex,
    }


class APIServer:
    """Runs an ASGI app under uvicorn in a daemon thread on a socket bound up front."""

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn

        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Inherited by accepted connections: without it every small response waits ~40 ms for
        # delayed ACKs (Nagle), which dominated query latency.
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.bind((host, port))
        bound = self._sock.getsockname()
        display = f"[{host}]" if ":" in host else host
        self.url = f"http://{display}:{bound[1]}"
        config = uvicorn.Config(
            app,
            http="httptools",  # llhttp and libuv: a fifth less CPU per query than h11 and asyncio
            loop="uvloop",
            log_config=None,
            access_log=False,
            lifespan="off",
            log_level="warning",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise InternalError("the worker API did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()
