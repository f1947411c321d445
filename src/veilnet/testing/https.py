"""A local HTTPS origin for agents' ``http.fetch`` in tests and demos: a throwaway CA (trustme),
a threaded server on 127.0.0.1 that echoes requests, serves sized bodies, a price, and stalls.

Routes: ``/echo`` (any method) answers ``{method, path, headers, body}`` as JSON; ``/bytes/N``
answers N bytes of ``x``; ``…/price`` answers ``{"symbol": ..., "price": ...}`` and needs the
header ``x-api-key`` to equal ``api_key``; ``/slow`` answers after ``stall_s`` seconds (or when
the origin closes). Every request it received is kept in ``received``.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["LocalOrigin", "Received", "SocketRelay", "core_fetcher"]

_HANDLER_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = _HANDLER_TIMEOUT_S
    server: _Server

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        origin = self.server.origin
        headers = {k.lower(): v for k, v in self.headers.items()}
        origin.received.append(Received(self.command, self.path, headers, body))
        status, payload = 200, b""
        if self.path.startswith("/echo"):
            payload = json.dumps(
                {
                    "method": self.command,
                    "path": self.path,
                    "headers": headers,
                    "body": body.decode("utf-8", "replace"),
                }
            ).encode()
        elif self.path.startswith("/bytes/"):
            payload = b"x" * int(self.path.rsplit("/", 1)[1])
        elif self.path.split("?")[0].endswith("/price"):
            if headers.get("x-api-key") != origin.api_key:
                status, payload = 401, b'{"error":"bad api key"}'
            else:
                payload = json.dumps({"symbol": "ETH", "price": origin.price}).encode()
        elif self.path.startswith("/slow"):
            origin.closed.wait(origin.stall_s)
            payload = b"late"
        else:
            status, payload = 404, b"not found"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _answer  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, origin: LocalOrigin, tls: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.origin = origin
        self.tls = tls

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = self.socket.accept()
        return self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # refused handshakes are what several tests are about


@dataclass
class LocalOrigin:
    """An HTTPS server for ``names`` (``127.0.0.1`` and ``localhost`` by default) under a fresh
    CA (``ca_pem``); it listens on 127.0.0.1 only.

    Use as a context manager; ``url(path)`` names it. ``api_key`` and ``price`` feed ``/price``.
    """

    api_key: str = "test-api-key"
    price: str = "3141.59"
    stall_s: float = 5.0
    received: list[Received] = field(default_factory=list)
    ca_pem: bytes = b""
    closed: threading.Event = field(default_factory=threading.Event)
    names: tuple[str, ...] = ("127.0.0.1", "localhost")

    def __post_init__(self) -> None:
        import trustme

        self._ca = trustme.CA()
        self.ca_pem = self._ca.cert_pem.bytes()
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._ca.issue_cert(*self.names).configure_cert(tls)
        self._server = _Server(self, tls)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str = "/echo", *, host: str = "127.0.0.1") -> str:
        return f"https://{host}:{self.port}{path}"

    def close(self) -> None:
        self.closed.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=_HANDLER_TIMEOUT_S)

    def __enter__(self) -> LocalOrigin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def core_fetcher(
    origin: LocalOrigin, *, allowed: frozenset[str], at: int = 1_800_000_000
) -> Callable[[list[Any]], list[Any]]:
    """Agents' ``http.fetch`` as a worker's core carries it out (``runtime.fetch``), with a host
    relay that sends every connection to ``origin`` (the certificate's names are what the core
    checks), for sandbox-level tests of agents that fetch."""
    import itertools

    from veilnet.protocol.errors import TLSFailed
    from veilnet.runtime.fetch import Egress, fetch
    from veilnet.runtime.tls import client_context

    sockets: dict[int, socket.socket] = {}

    def relay(conn: int, host: str, port: int, data: bytes) -> bytes:
        try:
            sock = sockets.get(conn)
            if sock is None:
                sock = sockets[conn] = socket.create_connection(
                    ("127.0.0.1", origin.port), _HANDLER_TIMEOUT_S
                )
            if data:
                sock.sendall(data)
            return sock.recv(65536)
        except OSError as exc:
            raise TLSFailed("no relay", stage="relay", host_code="worker_io_failed") from exc

    egress = Egress(
        allowed=allowed,
        context=client_context(origin.ca_pem),
        relay=relay,
        at=at,
        plain_loopback=False,
        connections=itertools.count(1),
    )

    def run(requests: list[Any]) -> list[Any]:
        return fetch(requests, egress)

    return run


class SocketRelay:
    """A host's side of a core's TLS exchanges, for in-process tests: real TCP connections to
    the host and port the core names, carrying its records both ways. Call ``close_all`` after
    each operation (a core numbers its connections from 0 in every call)."""

    def __init__(self) -> None:
        self.calls = 0
        """Round trips it was asked to carry (what a test checks never happened)."""
        self._sockets: dict[int, socket.socket] = {}

    def __call__(self, conn: int, host: str, port: int, data: bytes) -> bytes:
        from veilnet.protocol.errors import TLSFailed

        self.calls += 1
        try:
            sock = self._sockets.get(conn)
            if sock is None:
                sock = self._sockets[conn] = socket.create_connection(
                    (host, port), _HANDLER_TIMEOUT_S
                )
            if data:
                sock.sendall(data)
            return sock.recv(65536)
        except OSError as exc:
            raise TLSFailed("no relay", stage="relay", host_code="worker_io_failed") from exc

    def close_all(self) -> None:
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()
