"""Agents' ``http.fetch``: HTTPS ended inside the core, to the hosts the owner allowed on chain.
The host relays ciphertext only; every failure reaches the agent as an error value.

Theory of operation
-------------------
An agent asks for up to ``HTTP_MAX_BATCH`` requests ``{url, method?, headers?, body?}``. Each one
is checked here before a byte leaves: an ``https`` URL (plain ``http`` only to loopback on the
development TEE), a host name on the contract's egress allowlist (``Bus.set_egress``, default
deny), a method and headers that frame. The exchange then runs through the host's relay
(``tls.HTTPSExchange``): the certificate is checked against the network's egress roots at the
block's time, so a host that answers itself, or a certificate that expired by then, is refused.

Each request yields either ``{status, headers, body}`` or ``{error: {code, message}}``; one
failure never fails its batch or the invocation. The 10-second limit per request is the host's
to keep (the core has no clock): a host that holds a connection longer only slows its own
answers, and a relay it reports as timed out reaches the agent as ``http_timeout``.
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from veilnet.protocol.errors import TLSFailed
from veilnet.protocol.hosts import normalize_host
from veilnet.runtime.tls import HTTPSExchange, Relay, exchange
from veilnet.sandbox import constants as sc
from veilnet.sandbox.interfaces import JSONValue

__all__ = [
    "FETCH_ERRORS",
    "METHODS",
    "Egress",
    "fetch",
    "normalize_host",
]

METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
MAX_HEADERS: Final = 32
MAX_URL_BYTES: Final = 2048
MAX_HEAD_BYTES: Final = 16 * 1024
"""Status line and headers a response may add to its ``HTTP_MAX_BODY_BYTES`` body."""
MAX_ROUNDS: Final = 256
"""Relay round trips per request (a 2 MiB body arrives in ~32 rounds of 64 KiB)."""
_FRAMED_BY_US: Final = frozenset({"host", "content-length", "connection", "transfer-encoding"})
_LOOPBACK_NAMES: Final = frozenset({"localhost"})

FETCH_ERRORS: Final = {
    "http_request_invalid": "the request is malformed (URL, method, headers or body)",
    "http_host_not_allowed": "the host is not on the agent's egress allowlist",
    "http_insecure": "plain http:// is allowed only to loopback on the development TEE",
    "http_unreachable": "the worker could not reach the host (or would not relay)",
    "http_timeout": "the host did not answer within the time limit",
    "http_tls_failed": "TLS failed: the certificate is not valid for the host at the block time",
    "http_too_large": "the response is larger than the limit",
    "http_protocol_error": "the response broke HTTP or TLS framing",
}
"""Every ``error.code`` an agent may see in an ``http.fetch`` response (docs/agents.md)."""

_STAGE_CODES: Final = {
    "handshake": "http_tls_failed",
    "certificate": "http_tls_failed",
    "too_large": "http_too_large",
    "closed": "http_protocol_error",
    "http": "http_protocol_error",
    "protocol": "http_protocol_error",
    "rounds": "http_timeout",
}
_RELAY_TIMEOUT: Final = "worker_io_timeout"


class _Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True, kw_only=True)
class Egress:
    """What one invocation may reach, and how.

    Attributes:
        allowed: the contract's allowlist (lower-case host names and IP addresses).
        context: the TLS client context of the network's egress roots.
        relay: the host's byte pipe; raises ``TLSFailed`` when the host would not relay.
        at: the block's timestamp: certificates must be valid then.
        plain_loopback: plain ``http://`` to loopback is allowed (development TEE only).
        connections: hands out connection numbers unique within the invocation.
    """

    allowed: frozenset[str]
    context: ssl.SSLContext
    relay: Relay
    at: int
    plain_loopback: bool
    connections: Iterator[int]


def fetch(requests: list[JSONValue], egress: Egress) -> list[JSONValue]:
    """Carry out ``requests`` (already bounded in number by the sandbox) one after another."""
    return [_one(request, egress) for request in requests]


def _one(request: JSONValue, egress: Egress) -> JSONValue:
    try:
        return _exchange(request, egress)
    except _Refused as refused:
        return {"error": {"code": refused.code, "message": refused.message}}


@dataclass(frozen=True, slots=True)
class _Request:
    secure: bool
    host: str
    port: int
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


def _parse(request: JSONValue) -> _Request:
    if not isinstance(request, dict):
        raise _Refused(
            "http_request_invalid", "a request is an object {url, method, headers, body}"
        )
    unknown = set(request) - {"url", "method", "headers", "body"}
    if unknown:
        raise _Refused("http_request_invalid", f"unknown request field {sorted(unknown)[0]!r}")
    url = request.get("url")
    if not isinstance(url, str) or not url or len(url.encode()) > MAX_URL_BYTES:
        raise _Refused("http_request_invalid", "url must be a string of at most 2048 bytes")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _Refused("http_request_invalid", "url is malformed") from exc
    if parts.scheme not in ("https", "http"):
        raise _Refused("http_request_invalid", "url must start with https://")
    if parts.username is not None or parts.password is not None:
        raise _Refused("http_request_invalid", "url must not carry credentials")
    host = normalize_host(parts.hostname or "")
    if host is None:
        raise _Refused("http_request_invalid", "url has no valid host name")
    if any(ord(ch) < 0x21 or ord(ch) > 0x7E for ch in parts.path + parts.query):
        raise _Refused("http_request_invalid", "url path must be printable ASCII (percent-encode)")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    method = request.get("method", "GET")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise _Refused(
            "http_request_invalid", f"method must be one of {', '.join(sorted(METHODS))}"
        )
    body = request.get("body", "")
    if not isinstance(body, str):
        raise _Refused("http_request_invalid", "body must be a string")
    return _Request(
        secure=parts.scheme == "https",
        host=host,
        port=port if port is not None else (443 if parts.scheme == "https" else 80),
        method=method.upper(),
        target=target,
        headers=_headers(request.get("headers", {})),
        body=body.encode(),
    )


def _headers(raw: JSONValue) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, dict) or len(raw) > MAX_HEADERS:
        raise _Refused(
            "http_request_invalid", f"headers must be an object of at most {MAX_HEADERS}"
        )
    found = []
    for name, value in sorted(raw.items()):
        if not isinstance(value, str):
            raise _Refused("http_request_invalid", "header values must be strings")
        if name.lower() in _FRAMED_BY_US:
            raise _Refused("http_request_invalid", f"header {name!r} is set by the worker")
        found.append((name, value))
    return tuple(found)


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _exchange(request: JSONValue, egress: Egress) -> JSONValue:
    req = _parse(request)
    if req.host not in egress.allowed:
        raise _Refused(
            "http_host_not_allowed", f"{req.host} is not on this agent's egress allowlist"
        )
    if not req.secure and not (egress.plain_loopback and _is_loopback(req.host)):
        raise _Refused("http_insecure", FETCH_ERRORS["http_insecure"])
    try:
        ex = HTTPSExchange(
            egress.context if req.secure else None,
            host=req.host,
            port=req.port,
            method=req.method,
            target=req.target,
            body=req.body,
            at=egress.at,
            headers=req.headers,
            max_response_bytes=MAX_HEAD_BYTES + sc.HTTP_MAX_BODY_BYTES,
        )
    except ValueError as exc:
        raise _Refused("http_request_invalid", "the request cannot be framed") from exc
    try:
        response = exchange(ex, egress.relay, conn=next(egress.connections), max_rounds=MAX_ROUNDS)
    except TLSFailed as exc:
        raise _Refused(*_failure(exc)) from exc
    if len(response.body) > sc.HTTP_MAX_BODY_BYTES:
        raise _Refused("http_too_large", FETCH_ERRORS["http_too_large"])
    headers: dict[str, JSONValue] = {}
    for name, value in response.headers:
        key = name.decode("latin-1")
        text = value.decode("latin-1")
        previous = headers.get(key)
        headers[key] = text if previous is None else f"{previous}, {text}"
    return {
        "status": response.status,
        "headers": headers,
        "body": response.body.decode("utf-8", errors="replace"),
    }


def _failure(exc: TLSFailed) -> tuple[str, str]:
    """The agent's error code and message for a failed exchange."""
    stage = str(exc.details.get("stage", ""))
    if stage == "relay":  # the host would not (or could not in time) carry the bytes
        timed_out = exc.details.get("host_code") == _RELAY_TIMEOUT
        code = "http_timeout" if timed_out else "http_unreachable"
    else:
        code = _STAGE_CODES.get(stage, "http_protocol_error")
    return code, FETCH_ERRORS[code]
