"""A sans-IO HTTPS/1.1 client for the enclave core: TLS ends here and the host only relays
ciphertext, so it can delay or drop a remote party's answer but never forge one."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Final, Protocol

import h11

from veilnet.protocol.errors import TLSFailed

__all__ = [
    "HTTPSExchange",
    "Relay",
    "Response",
    "TLSFailed",
    "client_context",
    "exchange",
]

DEFAULT_MAX_ROUNDS: Final = 64
"""Relay round trips one exchange may take (a TLS 1.3 exchange needs 2-4)."""
_READ_CHUNK: Final = 16 * 1024  # one TLS record's worth of plaintext
_MAX_HEAD_BYTES: Final = 16 * 1024  # status line and headers; h11's own default


@dataclass(frozen=True, slots=True, kw_only=True)
class Response:
    """A complete HTTP response, as read inside the TLS session.

    Attributes:
        status: the HTTP status code.
        headers: ``(name, value)`` pairs in order, names lower-cased.
        body: the decoded (de-chunked) body.
    """

    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes


class Relay(Protocol):
    """The host's side of an exchange: a byte pipe it cannot read into or forge."""

    def __call__(self, conn: int, host: str, port: int, data: bytes) -> bytes:
        """Send ``data`` (possibly empty) on connection ``conn`` to ``host:port``, opening it if
        needed, then wait for and return the next bytes that arrive: ``b""`` when the peer closed
        or the connection could not be opened. Empty ``data`` still waits for bytes."""
        ...


def client_context(ca_pem: bytes) -> ssl.SSLContext:
    """A TLS 1.2+ client context that trusts only ``ca_pem`` and checks host names.

    Args:
        ca_pem: one or more PEM CA certificates; the system's roots are never loaded.

    Raises:
        ValueError: ``ca_pem`` holds no usable certificate.
    """
    if not isinstance(ca_pem, bytes):
        raise TypeError("ca_pem must be bytes")
    # PROTOCOL_TLS_CLIENT already means CERT_REQUIRED and check_hostname, with no roots loaded;
    # they are set again so that the guarantees read here.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = True
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    try:
        context.load_verify_locations(cadata=ca_pem.decode("ascii"))
    except (UnicodeDecodeError, ssl.SSLError) as exc:
        raise ValueError("ca_pem holds no usable PEM CA certificate") from exc
    return context


class HTTPSExchange:
    """One HTTPS/1.1 request and its response over a TLS session relayed by the host.

    The TLS records travel through two ``ssl.MemoryBIO`` buffers: the host asks
    :meth:`data_to_send` for ciphertext, delivers it on its connection and hands back whatever
    arrived with :meth:`receive_data` (``b""`` for end of stream). The request is written only once
    the handshake is done and the peer's certificate has been checked against ``at`` (the OS clock
    belongs to the host). ``h11`` frames the HTTP, and the plaintext the peer may send is bounded.
    Every failure raises :class:`TLSFailed` and is sticky: a failed exchange never recovers.

    Args:
        context: from :func:`client_context`; ``None`` speaks plain HTTP, which the host can
            read and forge (callers allow it only to loopback on the development TEE).
        host: the name (or IP address) the certificate must cover; also the ``Host`` header.
        port: the TCP port the host connects to.
        method: the HTTP method, e.g. ``"POST"``.
        target: the request target, e.g. ``"/"``.
        body: the request body (sent with ``Content-Length``).
        at: unix seconds the peer's certificate must be valid at (the verified chain time).
        headers: extra ``(name, value)`` request headers.
        max_response_bytes: the most plaintext (head and body) the peer may send.

    Raises:
        ValueError: the request cannot be framed (bad method, target or header).
    """

    def __init__(
        self,
        context: ssl.SSLContext | None,
        *,
        host: str,
        port: int,
        method: str,
        target: str,
        body: bytes,
        at: int,
        headers: tuple[tuple[str, str], ...] = (),
        max_response_bytes: int,
    ) -> None:
        if not 1 <= port <= 0xFFFF:
            raise ValueError("port must be in 1..65535")
        if max_response_bytes < 1:
            raise ValueError("max_response_bytes must be positive")
        self._host = host
        self._port = port
        self._at = at
        self._max_response_bytes = max_response_bytes
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = (
            None
            if context is None
            else context.wrap_bio(
                self._incoming, self._outgoing, server_side=False, server_hostname=host
            )
        )
        self._http = h11.Connection(
            our_role=h11.CLIENT,
            max_incomplete_event_size=min(_MAX_HEAD_BYTES, max_response_bytes),
        )
        self._request = self._frame_request(method, target, body, headers)
        self._plain_out = self._request if context is None else b""
        self._handshaken = False
        self._eof = False
        self._received = 0
        self._status: int | None = None
        self._headers: tuple[tuple[bytes, bytes], ...] = ()
        self._body = bytearray()
        self._response: Response | None = None
        self._failure: TLSFailed | None = None

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        return self._port

    @property
    def is_done(self) -> bool:
        """Whether the whole response has been read (it is then returned by :meth:`response`)."""
        return self._response is not None

    def data_to_send(self) -> bytes:
        """Ciphertext the host must send to the peer now (may be empty).

        Raises:
            TLSFailed: the exchange failed (now or earlier).
        """
        self._check_failed()
        if self._tls is None:
            out, self._plain_out = self._plain_out, b""
            return out
        if self._response is None and not self._handshaken:
            self._advance()
        return self._outgoing.read()

    def receive_data(self, data: bytes) -> None:
        """Take ciphertext the peer sent; ``b""`` means it closed the connection.

        Raises:
            TLSFailed: the bytes break the session or the HTTP answer, the peer closed before the
                response was complete, or the response is too large. The exchange stays failed.
        """
        self._check_failed()
        if self._response is not None:
            return  # bytes after a complete answer (close_notify, a late ticket) change nothing
        if self._eof:
            raise self._fail("closed", "bytes arrived after the end of the stream")
        if self._tls is None:
            self._eof = not data
            self._feed(data)
            if self._response is None and self._eof:
                raise self._fail("closed", "the peer closed before the response was complete")
            return
        if data:
            self._incoming.write(data)
        else:
            self._eof = True
            self._incoming.write_eof()
        self._advance()
        if self._response is None and self._eof:
            raise self._fail("closed", "the peer closed before the response was complete")

    def response(self) -> Response:
        """The complete response.

        Raises:
            TLSFailed: the exchange failed.
            RuntimeError: the response is not complete yet (check :attr:`is_done`).
        """
        self._check_failed()
        if self._response is None:
            raise RuntimeError("the HTTPS exchange is not complete")
        return self._response

    # ---- internals -----------------------------------------------------------------------

    def _frame_request(
        self, method: str, target: str, body: bytes, headers: tuple[tuple[str, str], ...]
    ) -> bytes:
        authority = f"[{self._host}]" if ":" in self._host else self._host
        if self._port != 443:
            authority = f"{authority}:{self._port}"
        all_headers = [
            ("Host", authority),
            ("Content-Length", str(len(body))),
            ("Connection", "close"),  # one request per session: the peer ends the stream
            *headers,
        ]
        try:
            head = self._http.send(h11.Request(method=method, target=target, headers=all_headers))
            data = self._http.send(h11.Data(data=body))
            end = self._http.send(h11.EndOfMessage())
        except h11.LocalProtocolError as exc:
            raise ValueError("the HTTP request cannot be framed") from exc
        return b"".join(part for part in (head, data, end) if part is not None)

    def _check_failed(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _fail(self, stage: str, message: str) -> TLSFailed:
        self._failure = TLSFailed(message, stage=stage)
        return self._failure

    def _advance(self) -> None:
        assert self._tls is not None
        if not self._handshaken:
            try:
                self._tls.do_handshake()
            except ssl.SSLWantReadError:
                return
            except ssl.SSLError as exc:
                raise self._fail("handshake", "the TLS handshake failed") from exc
            self._check_validity()
            self._handshaken = True
            # Only now, with the peer proven, does the request leave the enclave.
            try:
                self._tls.write(self._request)
            except ssl.SSLError as exc:
                raise self._fail("protocol", "the TLS session broke") from exc
        self._read_plaintext()

    def _check_validity(self) -> None:
        # The OS checked the chain against the host's clock, which the host may set; the leaf
        # must also not have expired by the verified chain time. Chain time only lags real time
        # (a core replaying old history sits years back), so notBefore is not held against it.
        assert self._tls is not None
        cert = self._tls.getpeercert()
        not_before, not_after = (cert or {}).get("notBefore"), (cert or {}).get("notAfter")
        if not isinstance(not_before, str) or not isinstance(not_after, str):
            raise self._fail("certificate", "the peer certificate has no validity period")
        try:
            ssl.cert_time_to_seconds(not_before)
            end = ssl.cert_time_to_seconds(not_after)
        except ValueError as exc:
            raise self._fail("certificate", "the peer certificate validity is unreadable") from exc
        if self._at > end:
            raise self._fail("certificate", "the peer certificate expired before the chain time")

    def _read_plaintext(self) -> None:
        assert self._tls is not None
        while self._response is None:
            try:
                chunk = self._tls.read(_READ_CHUNK)
            except ssl.SSLWantReadError:
                return
            except ssl.SSLZeroReturnError:
                chunk = b""  # close_notify: a clean end of stream
            except ssl.SSLError as exc:
                # Includes a truncated stream (EOF without close_notify), which must not pass
                # for the end of a close-delimited body.
                raise self._fail("protocol", "the TLS session broke") from exc
            self._feed(chunk)
            if not chunk:
                return

    def _feed(self, chunk: bytes) -> None:
        """Plaintext the peer sent (``b""``: its end of stream) into the HTTP parser."""
        self._received += len(chunk)
        if self._received > self._max_response_bytes:
            raise self._fail("too_large", "the response is larger than allowed")
        try:
            self._http.receive_data(chunk)
            self._read_events()
        except h11.RemoteProtocolError as exc:
            raise self._fail("http", "the HTTP response is malformed") from exc

    def _read_events(self) -> None:
        while True:
            event = self._http.next_event()
            if event is h11.NEED_DATA:
                return
            if isinstance(event, h11.InformationalResponse):
                continue
            if isinstance(event, h11.Response):
                self._status = event.status_code
                self._headers = tuple((bytes(k), bytes(v)) for k, v in event.headers)
            elif isinstance(event, h11.Data):
                self._body += event.data
            elif isinstance(event, h11.EndOfMessage) and self._status is not None:
                self._response = Response(
                    status=self._status, headers=self._headers, body=bytes(self._body)
                )
                return
            else:  # ConnectionClosed before the end, or PAUSED: either way no answer
                raise self._fail("http", "the HTTP response ended early")


def exchange(
    ex: HTTPSExchange, relay: Relay, *, conn: int, max_rounds: int = DEFAULT_MAX_ROUNDS
) -> Response:
    """Drive ``ex`` to completion through the host's ``relay`` on connection ``conn``.

    Each round sends whatever ciphertext is due (possibly nothing: with TLS 1.3 the peer's session
    tickets may arrive apart from its answer) and feeds back what arrives.

    Raises:
        TLSFailed: the exchange failed or took more than ``max_rounds`` round trips.
    """
    for _ in range(max_rounds):
        ex.receive_data(relay(conn, ex.host, ex.port, ex.data_to_send()))
        if ex.is_done:
            return ex.response()
    raise ex._fail("rounds", "the exchange took too many round trips")
