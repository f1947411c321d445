"""An agent's ``http.fetch`` against a hostile host, on real enclave processes: the host relays
the TLS records of each request, reads them, answers in the server's place or tampers with them.
It learns nothing of the request or answer, and cannot forge one or reach an unlisted host."""

from __future__ import annotations

import itertools
import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
import trustme

from veilnet.crypto import SecretKey
from veilnet.protocol import enclave as wire
from veilnet.protocol import envelopes as proto
from veilnet.testing.adversary import EnclaveNetwork, dev_enclave_config
from veilnet.testing.https import LocalOrigin

pytestmark = pytest.mark.slow  # the module starts enclave processes

SECRET = "sk-live-0123456789abcdef"  # the agent's API key, sent to it inside the query
ANSWER_MARK = "the-price-is-3141"
AGENT = proto.pack_code(
    "js",
    b"""
export function query(req) {
  return http.fetch(req.requests.map((r) => ({
    url: r.url,
    method: r.method || "POST",
    headers: { "x-api-key": req.key },
    body: r.body || "",
  })));
}
""",
)
PY_AGENT = proto.pack_code(
    "py",
    b"""
def query(req):
    return http.fetch([{"url": r["url"], "headers": {"x-api-key": req["key"]}}
                       for r in req["requests"]])
""",
)
OWNER = b"\x0c" * 20
WALLET = SecretKey.derive(b"\x71" * 32, "wallet")
Tamper = Callable[[int, bytes], bytes]
_REQUEST_IDS = itertools.count(1)  # every query of the module has its own id


@dataclass
class RecordingHost:
    """The host's ``IO_TLS`` relay over real sockets, keeping every byte it carried; ``tamper``
    rewrites what arrived before the core sees it, ``redirect`` sends a connection elsewhere."""

    sent: bytearray = field(default_factory=bytearray)
    arrived: bytearray = field(default_factory=bytearray)
    connects: list[tuple[str, int]] = field(default_factory=list)
    tamper: Tamper | None = None
    redirect: tuple[str, int] | None = None
    _sockets: dict[int, socket.socket] = field(default_factory=dict)

    def __call__(self, kind: str, body: bytes) -> bytes:
        assert kind == wire.IO_TLS, kind
        request = wire.TLSRelay.from_bytes(body)
        sock = self._sockets.get(request.conn)
        if sock is None:
            self.connects.append((request.host, request.port))
            sock = socket.create_connection(self.redirect or (request.host, request.port), 5)
            self._sockets[request.conn] = sock
        self.sent += request.data
        if request.data:
            sock.sendall(request.data)
        data = sock.recv(65536)
        self.arrived += data
        return data if self.tamper is None else self.tamper(request.conn, data)

    def close(self) -> None:
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()


class ImpostorServer:
    """What a host answers with when it plays the server: TLS under its own CA, for the very
    name the agent asked for."""

    def __init__(self) -> None:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        trustme.CA().issue_cert("127.0.0.1", "localhost").configure_cert(tls)
        self._tls = tls
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            sock, _ = self._listener.accept()
        except OSError:
            return
        with sock:
            try:
                with self._tls.wrap_socket(sock, server_side=True) as conn:
                    conn.recv(65536)
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 14\r\nConnection: close\r\n\r\n"
                    )
                    conn.sendall(b'{"price":"1"}\n')
            except (OSError, ssl.SSLError):
                pass

    def close(self) -> None:
        self._listener.close()
        self._thread.join(timeout=5)


@dataclass
class Setup:
    net: EnclaveNetwork
    origin: LocalOrigin
    contracts: dict[str, bytes]


@pytest.fixture(scope="module")
def setup() -> Iterator[Setup]:
    with LocalOrigin() as origin:
        config = dev_enclave_config(egress_roots=origin.ca_pem)
        with EnclaveNetwork(config, io_kinds=(wire.IO_HTTP_FETCH,)) as net:
            cluster = net.bootstrap(workers=("w1",))
            contracts = {
                "js": net.ledger.deploy_contract(
                    sender=OWNER, salt=b"\x01" * 32, cluster_id=cluster, code=AGENT
                ),
                "py": net.ledger.deploy_contract(
                    sender=OWNER, salt=b"\x02" * 32, cluster_id=cluster, code=PY_AGENT
                ),
            }
            for contract in contracts.values():
                net.ledger.set_egress(contract, "127.0.0.1", True, sender=OWNER)
            net.settle()
            yield Setup(net, origin, contracts)


def _ask(
    setup: Setup, host: RecordingHost, requests: list[dict[str, str]], lang: str = "js"
) -> object:
    """A query sealed as the SDK seals it; the agent's answer (its fetch results)."""
    net = setup.net
    request_id = next(_REQUEST_IDS).to_bytes(32, "big")
    body = json.dumps({"key": SECRET, "requests": requests}).encode()
    query, session = net.seal_query(
        "w1", setup.contracts[lang], body, wallet=WALLET, request_id=request_id
    )
    try:
        raw = net.hosts["w1"].enclave.query(query, host)
    finally:
        host.close()
    answer = net.open_answer(raw, session, request_id)
    assert answer["ok"] is True, answer
    return answer["result"]


@pytest.mark.parametrize("lang", ["js", "py"])
def test_the_host_relays_only_ciphertext(setup: Setup, lang: str) -> None:
    """The request's API key, body and path, and the server's answer, all pass the host; none of
    them in a form it can read. (Without TLS in the core, every one of them would.)"""
    host = RecordingHost()
    url = setup.origin.url("/echo/confidential-path")
    (answer,) = _ask(setup, host, [{"url": url, "body": ANSWER_MARK}], lang)  # type: ignore[misc]
    assert answer["status"] == 200, answer
    echoed = json.loads(answer["body"])
    assert echoed["headers"]["x-api-key"] == SECRET
    assert host.connects == [("127.0.0.1", setup.origin.port)]
    carried = bytes(host.sent) + bytes(host.arrived)
    for plaintext in (SECRET, "confidential-path", "x-api-key", ANSWER_MARK, "POST", "GET"):
        if lang == "py" and plaintext in (ANSWER_MARK, "POST"):
            continue  # the Python agent sends a bodyless GET
        assert plaintext.encode() not in carried, plaintext
    assert len(host.sent) > 0 and len(host.arrived) > 0


def test_a_host_that_answers_in_the_servers_place_is_refused(setup: Setup) -> None:
    """The host sends the connection to its own TLS server, with a certificate for the very
    host name from a CA of its own: the core refuses the handshake, the agent gets an error
    value, and the key never left."""
    impostor = ImpostorServer()
    host = RecordingHost(redirect=("127.0.0.1", impostor.port))
    try:
        (answer,) = _ask(setup, host, [{"url": setup.origin.url("/price")}])  # type: ignore[misc]
    finally:
        impostor.close()
    assert answer == {"error": {"code": "http_tls_failed", "message": answer["error"]["message"]}}
    assert SECRET.encode() not in bytes(host.sent)


def test_a_tampered_answer_is_refused(setup: Setup) -> None:
    """The host flips one byte of the server's records after the handshake: the record fails
    its authentication in the core, and the agent gets an error value, never altered content."""
    rounds: dict[int, int] = {}

    def flip(conn: int, data: bytes) -> bytes:
        rounds[conn] = rounds.get(conn, 0) + 1
        if rounds[conn] < 2 or len(data) < 40:
            return data
        return data[:30] + bytes([data[30] ^ 0x01]) + data[31:]

    host = RecordingHost(tamper=flip)
    (answer,) = _ask(setup, host, [{"url": setup.origin.url("/bytes/4000")}])  # type: ignore[misc]
    assert "error" in answer, answer
    assert answer["error"]["code"] in ("http_protocol_error", "http_tls_failed")


def test_only_listed_hosts_are_reached_and_the_owner_decides(setup: Setup) -> None:
    """``localhost`` is not on the allowlist (only ``127.0.0.1`` is): the core refuses it
    before the host relays a byte. Once the owner lists it on chain, it is reached; once the
    owner takes ``127.0.0.1`` off, that is refused."""
    net, contract = setup.net, setup.contracts["js"]
    host = RecordingHost()
    (answer,) = _ask(setup, host, [{"url": setup.origin.url(host="localhost")}])  # type: ignore[misc]
    assert answer["error"]["code"] == "http_host_not_allowed"
    assert host.connects == [] and not host.sent
    net.ledger.set_egress(contract, "localhost", True, sender=OWNER)
    net.ledger.set_egress(contract, "127.0.0.1", False, sender=OWNER)
    net.settle()
    try:
        first, second = _ask(  # type: ignore[misc]
            setup,
            RecordingHost(),
            [{"url": setup.origin.url(host="localhost")}, {"url": setup.origin.url()}],
        )
        assert first["status"] == 200
        assert second["error"]["code"] == "http_host_not_allowed"
    finally:
        net.ledger.set_egress(contract, "localhost", False, sender=OWNER)
        net.ledger.set_egress(contract, "127.0.0.1", True, sender=OWNER)
        net.settle()


def test_the_host_can_only_deny(setup: Setup) -> None:
    """A host that will not relay (or says it timed out) yields an error value per request;
    the query itself is answered, signed, and the other requests of the batch still work."""

    class Refusing(RecordingHost):
        def __call__(self, kind: str, body: bytes) -> bytes:
            request = wire.TLSRelay.from_bytes(body)
            if request.conn == 1:
                from veilnet.worker.errors import WorkerIOTimeout

                raise WorkerIOTimeout("stalled")
            return super().__call__(kind, body)

    first, second = _ask(  # type: ignore[misc]
        setup, Refusing(), [{"url": setup.origin.url()}, {"url": setup.origin.url()}]
    )
    assert first["error"]["code"] == "http_timeout"
    assert second["status"] == 200


def test_garbage_from_the_host_is_an_error_value(setup: Setup) -> None:
    """Bytes that are not TLS at all, and a connection closed at once, both end as error values."""
    host = RecordingHost(
        tamper=lambda conn, data: b"HTTP/1.1 200 OK\r\n\r\nforged" if conn == 1 else b""
    )
    first, second = _ask(  # type: ignore[misc]
        setup, host, [{"url": setup.origin.url()}, {"url": setup.origin.url()}]
    )
    assert first["error"]["code"] in ("http_tls_failed", "http_protocol_error")
    assert second["error"]["code"] in ("http_tls_failed", "http_protocol_error")
