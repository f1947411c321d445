"""A small batched, keep-alive JSON-RPC client for the hot paths (follower, relay, deploy).
Transports are pluggable: HTTP (stdlib ``http.client``, one persistent connection) or in-process."""

from __future__ import annotations

import http.client
import itertools
import json
import threading
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from eth_abi.abi import decode as abi_decode
from eth_abi.exceptions import DecodingError

from veilnet.chain.constants import MAX_RPC_BATCH, MAX_RPC_RESPONSE_BYTES, RPC_TIMEOUT_S
from veilnet.chain.errors import ContractReverted, RPCError, RPCUnavailable

__all__ = [
    "HTTPTransport",
    "InProcessTransport",
    "JSONRPCClient",
    "Transport",
    "from_hex",
    "from_quantity",
    "revert_reason",
    "to_hex",
    "to_quantity",
]

_ERROR_SELECTOR = bytes.fromhex("08c379a0")


def to_hex(data: bytes) -> str:
    return "0x" + data.hex()


def from_hex(text: str) -> bytes:
    body = text[2:] if text[:2] in ("0x", "0X") else text
    return bytes.fromhex(body if len(body) % 2 == 0 else "0" + body)


def to_quantity(value: int) -> str:
    return hex(value)


def from_quantity(text: str | int) -> int:
    return text if isinstance(text, int) else int(text, 16)


def revert_reason(data: bytes) -> str:
    """The ``Error(string)`` reason in revert data, or a hex summary for custom data."""
    if data[:4] == _ERROR_SELECTOR:
        try:
            return str(abi_decode(["string"], data[4:])[0])
        except (DecodingError, ValueError, UnicodeDecodeError):
            pass
    return "reverted" if not data else f"reverted with data 0x{data[:36].hex()}"


class Transport(Protocol):
    """Moves one JSON-RPC request body (single or batch) and returns the parsed response."""

    def request(self, body: Any) -> Any: ...

    def close(self) -> None: ...


class HTTPTransport:
    """JSON-RPC over one persistent HTTP/1.1 connection; reconnects once on a dropped socket."""

    def __init__(self, url: str, *, timeout: float = RPC_TIMEOUT_S) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"unsupported JSON-RPC URL {url!r}")
        self._https = parsed.scheme == "https"
        self._host = parsed.hostname
        self._port = parsed.port or (443 if self._https else 80)
        self._path = parsed.path or "/"
        if parsed.query:
            self._path += "?" + parsed.query
        self._timeout = timeout
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()
        self.url = url

    def _connect(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=self._timeout)
        return self._conn

    def request(self, body: Any) -> Any:
        raw = json.dumps(body, separators=(",", ":")).encode()
        with self._lock:
            for attempt in (0, 1):
                conn = self._connect()
                try:
                    conn.request(
                        "POST",
                        self._path,
                        body=raw,
                        headers={"Content-Type": "application/json", "Connection": "keep-alive"},
                    )
                    response = conn.getresponse()
                    payload = response.read(MAX_RPC_RESPONSE_BYTES + 1)
                except (OSError, http.client.HTTPException) as exc:
                    self._drop()
                    if attempt == 1:
                        raise RPCUnavailable(f"JSON-RPC node unreachable: {exc}") from exc
                    continue
                if response.will_close:
                    self._drop()
                if len(payload) > MAX_RPC_RESPONSE_BYTES:
                    raise RPCUnavailable("JSON-RPC response too large")
                if response.status != 200:
                    raise RPCUnavailable(f"JSON-RPC node answered HTTP {response.status}")
                try:
                    return json.loads(payload)
                except ValueError as exc:
                    raise RPCUnavailable("JSON-RPC response is not JSON") from exc
        raise RPCUnavailable("unreachable")  # pragma: no cover

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        with self._lock:
            self._drop()


class InProcessTransport:
    """Calls a JSON-RPC handler in this process (the embedded chain) without HTTP."""

    def __init__(self, handler: Callable[[Any], Any]) -> None:
        self._handler = handler

    def request(self, body: Any) -> Any:
        # Round-trip through JSON so callers see exactly what an HTTP client would.
        return json.loads(json.dumps(self._handler(json.loads(json.dumps(body)))))

    def close(self) -> None:
        return None


class JSONRPCClient:
    """Single and batched JSON-RPC calls over a Transport.

    ``batch`` sends many calls in one request (chunked at MAX_RPC_BATCH) — the way to reach
    anvil's ~1,300 tx/s rather than ~190 tx/s one by one.
    """

    def __init__(self, transport: Transport | str) -> None:
        self.transport: Transport = (
            HTTPTransport(transport) if isinstance(transport, str) else transport
        )
        self._ids = itertools.count(1)

    def call(self, method: str, *params: Any) -> Any:
        """One call; raises ContractReverted, RPCError or RPCUnavailable."""
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)}
        reply = self.transport.request(body)
        if not isinstance(reply, dict):
            raise RPCUnavailable("JSON-RPC reply is not an object")
        return _result(reply, method)

    def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Results in order; the first failed item raises (see ``batch_settled`` to keep going)."""
        settled = self.batch_settled(calls)
        out = []
        for item in settled:
            if isinstance(item, Exception):
                raise item
            out.append(item)
        return out

    def batch_settled(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Results in order, with a chain error instance in place of each failed call."""
        results: list[Any] = []
        for start in range(0, len(calls), MAX_RPC_BATCH):
            chunk = calls[start : start + MAX_RPC_BATCH]
            ids = [next(self._ids) for _ in chunk]
            body = [
                {"jsonrpc": "2.0", "id": i, "method": m, "params": list(p)}
                for i, (m, p) in zip(ids, chunk, strict=True)
            ]
            reply = self.transport.request(body)
            if not isinstance(reply, list):
                if isinstance(reply, dict) and "error" in reply:
                    raise _error(reply["error"], "batch")
                raise RPCUnavailable("JSON-RPC batch reply is not a list")
            by_id = {r.get("id"): r for r in reply if isinstance(r, dict)}
            for i, (method, _) in zip(ids, chunk, strict=True):
                item = by_id.get(i)
                if item is None:
                    results.append(RPCUnavailable(f"no reply for {method} in batch"))
                    continue
                try:
                    results.append(_result(item, method))
                except (RPCError, ContractReverted, RPCUnavailable) as exc:
                    results.append(exc)
        return results

    def close(self) -> None:
        self.transport.close()


def _result(reply: dict[str, Any], method: str) -> Any:
    if "error" in reply and reply["error"] is not None:
        raise _error(reply["error"], method)
    if "result" not in reply:
        raise RPCUnavailable(f"JSON-RPC reply to {method} has no result")
    return reply["result"]


def _error(error: Any, method: str) -> Exception:
    if not isinstance(error, dict):
        return RPCError(f"{method}: malformed error", method=method)
    message = str(error.get("message", ""))[:300]
    code = error.get("code")
    data = error.get("data")
    if isinstance(data, dict):  # some nodes nest the revert data
        data = data.get("data")
    if "revert" in message.lower() or code == 3:
        raw = b""
        if isinstance(data, str) and data.startswith("0x"):
            try:
                raw = from_hex(data)
            except ValueError:
                raw = b""
        reason = revert_reason(raw) if raw else _reason_from_message(message)
        return ContractReverted(f"{method} reverted: {reason}", reason=reason, method=method)
    return RPCError(f"{method}: {message}", method=method, rpc_code=code)


def _reason_from_message(message: str) -> str:
    marker = "execution reverted"
    lowered = message.lower()
    if marker in lowered:
        rest = message[lowered.index(marker) + len(marker) :].lstrip(": ")
        return rest or "reverted"
    return message or "reverted"
