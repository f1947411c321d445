"""``runtime.fetch``, the core's side of agents' ``http.fetch``, against a real local HTTPS origin
and a plain HTTP one, with a socket relay playing the host: what is refused before a byte leaves,
and how each failure reads."""

from __future__ import annotations

import itertools
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from veilnet.protocol.hosts import normalize_host
from veilnet.runtime.fetch import FETCH_ERRORS, Egress, fetch
from veilnet.runtime.tls import client_context
from veilnet.sandbox.constants import HTTP_MAX_BODY_BYTES
from veilnet.testing.https import LocalOrigin, SocketRelay

AT = 1_800_000_000  # 2027-01-15: inside the test certificates' validity


@pytest.fixture(scope="module")
def origin() -> Iterator[LocalOrigin]:
    with LocalOrigin() as server:
        yield server


class _Plain(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"plain")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def plain_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Plain)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()
    thread.join()


def _run(
    origin: LocalOrigin,
    requests: list[Any],
    *,
    allowed: tuple[str, ...] = ("127.0.0.1",),
    at: int = AT,
    plain_loopback: bool = False,
) -> tuple[list[Any], SocketRelay]:
    relay = SocketRelay()
    egress = Egress(
        allowed=frozenset(allowed),
        context=client_context(origin.ca_pem),
        relay=relay,
        at=at,
        plain_loopback=plain_loopback,
        connections=itertools.count(1),
    )
    try:
        return fetch(requests, egress), relay
    finally:
        relay.close_all()


def _code(answer: Any) -> str:
    code: str = answer["error"]["code"]
    assert code in FETCH_ERRORS and answer["error"]["message"]
    return code


def test_a_request_gets_status_headers_and_body(origin: LocalOrigin) -> None:
    (answer,), _ = _run(
        origin,
        [{"url": origin.url("/echo?q=1"), "method": "put", "headers": {"X-A": "b"}, "body": "hi"}],
    )
    assert answer["status"] == 200
    assert answer["headers"]["content-type"] == "application/json"
    assert '"method": "PUT"' in answer["body"] and '"x-a": "b"' in answer["body"]
    assert '"path": "/echo?q=1"' in answer["body"] and '"body": "hi"' in answer["body"]


@pytest.mark.parametrize(
    "request_",
    [
        "https://127.0.0.1/",
        {"url": 7},
        {"url": "ftp://127.0.0.1/"},
        {"url": "https://user:pw@127.0.0.1/"},
        {"url": "https://127.0.0.1:99999/"},
        {"url": "https://bad_host!/"},
        {"url": "https://127.0.0.1/ spaced"},
        {"url": "https://127.0.0.1/", "method": "CONNECT"},
        {"url": "https://127.0.0.1/", "headers": {"Host": "elsewhere"}},
        {"url": "https://127.0.0.1/", "headers": {"a": 1}},
        {"url": "https://127.0.0.1/", "headers": {f"h{i}": "v" for i in range(33)}},
        {"url": "https://127.0.0.1/", "body": {"json": "not a string"}},
        {"url": "https://127.0.0.1/", "timeout": 3},
        {"url": "https://127.0.0.1/" + "a" * 2048},
    ],
)
def test_malformed_requests_never_leave(origin: LocalOrigin, request_: Any) -> None:
    (answer,), relay = _run(origin, [request_])
    assert _code(answer) == "http_request_invalid"
    assert relay.calls == 0


def test_hosts_off_the_list_and_plain_http_are_refused_first(
    origin: LocalOrigin, plain_port: int
) -> None:
    answers, relay = _run(
        origin,
        [
            {"url": origin.url(host="localhost")},
            {"url": "http://example.com/"},
            {"url": f"http://127.0.0.1:{plain_port}/"},
        ],
        allowed=("127.0.0.1", "example.com"),
    )
    assert [_code(a) for a in answers] == [
        "http_host_not_allowed",
        "http_insecure",
        "http_insecure",
    ]
    assert relay.calls == 0
    # on the development TEE, plain http:// reaches loopback (and only loopback)
    answers, _ = _run(
        origin,
        [{"url": f"http://127.0.0.1:{plain_port}/"}, {"url": "http://example.com/"}],
        allowed=("127.0.0.1", "example.com"),
        plain_loopback=True,
    )
    assert answers[0] == {"status": 200, "headers": answers[0]["headers"], "body": "plain"}
    assert _code(answers[1]) == "http_insecure"


def test_limits_and_certificates(origin: LocalOrigin) -> None:
    """A body of exactly 2 MiB arrives; one byte more is an error value; a certificate that
    expired by the block's time is refused whatever the host's clock says."""
    at_limit, too_big = _run(
        origin,
        [
            {"url": origin.url(f"/bytes/{HTTP_MAX_BODY_BYTES}")},
            {"url": origin.url(f"/bytes/{HTTP_MAX_BODY_BYTES + 1}")},
        ],
    )[0]
    assert len(at_limit["body"]) == HTTP_MAX_BODY_BYTES
    assert _code(too_big) == "http_too_large"
    (late,), _ = _run(origin, [{"url": origin.url()}], at=32_600_000_000)  # past trustme's 3000
    assert _code(late) == "http_tls_failed"


def test_an_unreachable_host_is_an_error_value(origin: LocalOrigin) -> None:
    bound = socket.socket()
    bound.bind(("127.0.0.1", 0))  # bound, not listening: refused
    try:
        (answer,), _ = _run(origin, [{"url": f"https://127.0.0.1:{bound.getsockname()[1]}/"}])
    finally:
        bound.close()
    assert _code(answer) == "http_unreachable"


@pytest.mark.parametrize(
    ("given", "normal"),
    [
        ("API.Example.com", "api.example.com"),
        (" localhost ", "localhost"),
        ("127.0.0.1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("0:0:0:0:0:0:0:1", "::1"),
        ("example.com.", None),
        ("-bad.example", None),
        ("under_score.example", None),
        ("a" * 64 + ".example", None),
        ("", None),
        ("ünïcode.example", None),
    ],
)
def test_host_names_have_one_normal_form(given: str, normal: str | None) -> None:
    assert normalize_host(given) == normal


def test_the_host_keeps_the_time_limit_agents_are_promised() -> None:
    from veilnet.sandbox.constants import HTTP_TIMEOUT_S
    from veilnet.worker.constants import DEFAULT_FETCH_TIMEOUT_S

    assert DEFAULT_FETCH_TIMEOUT_S == HTTP_TIMEOUT_S
