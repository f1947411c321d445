"""The ``rpc-quorum`` finality check and the core's relayed HTTPS client, against real local
HTTPS JSON-RPC servers; the test's relay plays the host, holding the sockets."""

from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import trustme

from veilnet.errors import PolicyRejected, Unavailable
from veilnet.runtime.quorum import (
    MAX_CERTIFY_NUMBERS,
    QuorumNotReached,
    QuorumPolicy,
    RPCEndpoint,
    certify,
)
from veilnet.runtime.tls import HTTPSExchange, TLSFailed, client_context, exchange

CHAIN_ID = 31337
FINALIZED = 8
HONEST = {n: bytes([n]) * 32 for n in range(11)}  # blocks 0..10; 8 is finalized
AT = 2_000_000_000  # 2033-05-18: the "verified chain time", inside the certificates' validity
SOCKET_TIMEOUT_S = 5.0  # bounds every test: a stuck peer fails the test instead of hanging it


def _utc(year: int) -> dt.datetime:
    return dt.datetime(year, 1, 1, tzinfo=dt.UTC)


def _fake(n: int, salt: int) -> bytes:
    return bytes([0xF0 + salt, n]) * 16


# ---- the remote parties: HTTPS JSON-RPC nodes ---------------------------------------------------


@dataclass
class Node:
    """What one JSON-RPC node answers; ``raw`` replaces the whole body."""

    chain_id: int = CHAIN_ID
    finalized: int | None = FINALIZED
    hashes: Mapping[int, bytes] = field(default_factory=lambda: dict(HONEST))
    status: int = 200
    raw: bytes | None = None

    def answer(self, batch: list[dict[str, Any]]) -> bytes:
        if self.raw is not None:
            return self.raw
        answers = [
            {"jsonrpc": "2.0", "id": call["id"], "result": self._result(call)} for call in batch
        ]
        answers.reverse()  # the order of batch answers is not promised; ids must be matched
        return json.dumps(answers).encode()

    def _result(self, call: dict[str, Any]) -> object:
        if call["method"] == "eth_chainId":
            return hex(self.chain_id)
        tag, full = call["params"]
        assert call["method"] == "eth_getBlockByNumber" and full is False
        number = self.finalized if tag == "finalized" else int(tag, 16)
        if number is None or number not in self.hashes:
            return None
        return {
            "number": hex(number),
            "hash": "0x" + self.hashes[number].hex(),
            "parentHash": "0x" + bytes(32).hex(),
            "transactions": [],
        }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = SOCKET_TIMEOUT_S
    server: _RPCServer

    def do_POST(self) -> None:
        batch = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        body = self.server.node.answer(batch)
        self.send_response(self.server.node.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _RPCServer(ThreadingHTTPServer):
    daemon_threads = False  # so that server_close() joins every handler thread

    def __init__(self, node: Node, tls: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.node = node
        self.tls = tls

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = self.socket.accept()
        # The handshake runs lazily in the handler thread, so a client that never finishes it
        # (or breaks it) stalls only that thread, bounded by the handler's timeout.
        return self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # failed handshakes are what several tests are about


class Servers:
    """Starts HTTPS JSON-RPC servers on 127.0.0.1 and stops them all at the end."""

    def __init__(self, leaf: trustme.LeafCert) -> None:
        self.leaf = leaf
        self._running: list[tuple[_RPCServer, threading.Thread]] = []
        self._bound: list[socket.socket] = []

    def start(
        self,
        node: Node | None = None,
        *,
        leaf: trustme.LeafCert | None = None,
        host: str = "localhost",
        max_version: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED,
    ) -> RPCEndpoint:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.maximum_version = max_version
        (leaf or self.leaf).configure_cert(tls)
        server = _RPCServer(node or Node(), tls)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        thread.start()
        self._running.append((server, thread))
        return RPCEndpoint(host=host, port=server.server_address[1], path="/rpc")

    def down(self) -> RPCEndpoint:
        """An endpoint whose port is bound but not listening: connections are refused."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._bound.append(sock)
        return RPCEndpoint(host="127.0.0.1", port=sock.getsockname()[1])

    def close(self) -> None:
        for server, thread in self._running:
            server.shutdown()
            server.server_close()
            thread.join(timeout=2 * SOCKET_TIMEOUT_S)
            assert not thread.is_alive()
        for sock in self._bound:
            sock.close()


# ---- the host: a relay holding real sockets ------------------------------------------------------


Tamper = Callable[[int, int, bytes], bytes]  # (conn, round, bytes that arrived) -> bytes passed on


class SocketRelay:
    """The host's relay: one socket per connection number; ``b""`` when it cannot connect."""

    def __init__(self) -> None:
        self.tamper: Tamper | None = None
        self.calls = 0
        self._sockets: dict[int, socket.socket] = {}
        self._rounds: dict[int, int] = {}

    def __call__(self, conn: int, host: str, port: int, data: bytes) -> bytes:
        self.calls += 1
        try:
            sock = self._sockets.get(conn)
            if sock is None:
                sock = socket.create_connection((host, port), timeout=SOCKET_TIMEOUT_S)
                self._sockets[conn] = sock
            if data:
                sock.sendall(data)
            arrived = sock.recv(65536)
        except OSError:
            return b""
        round_ = self._rounds.get(conn, 0)
        self._rounds[conn] = round_ + 1
        return arrived if self.tamper is None else self.tamper(conn, round_, arrived)

    def close(self) -> None:
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()


# ---- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def leaf(ca: trustme.CA) -> trustme.LeafCert:
    return ca.issue_cert("localhost", "127.0.0.1", not_before=_utc(2000), not_after=_utc(2100))


@pytest.fixture
def servers(leaf: trustme.LeafCert) -> Iterator[Servers]:
    running = Servers(leaf)
    try:
        yield running
    finally:
        running.close()


@pytest.fixture
def relay(servers: Servers) -> Iterator[SocketRelay]:
    # Depends on ``servers`` so that its sockets close first and every handler thread sees EOF.
    host = SocketRelay()
    try:
        yield host
    finally:
        host.close()


def _policy(ca: trustme.CA, endpoints: list[RPCEndpoint], threshold: int) -> QuorumPolicy:
    return QuorumPolicy(endpoints=tuple(endpoints), threshold=threshold, ca_pem=ca.cert_pem.bytes())


def _not_reached(policy: QuorumPolicy, relay: SocketRelay, numbers: list[int]) -> QuorumNotReached:
    with pytest.raises(QuorumNotReached) as info:
        certify(policy, chain_id=CHAIN_ID, numbers=numbers, relay=relay, at=AT)
    assert info.value.code == "runtime_quorum_not_reached"
    assert len(info.value.reasons) == len(policy.endpoints)
    return info.value


# ---- rpc-quorum ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "max_version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["tls1.2", "tls1.3"]
)
def test_three_honest_endpoints_certify(
    ca: trustme.CA, servers: Servers, relay: SocketRelay, max_version: ssl.TLSVersion
) -> None:
    endpoints = [servers.start(max_version=max_version) for _ in range(3)]
    found = certify(
        _policy(ca, endpoints, 2), chain_id=CHAIN_ID, numbers=[6, 7, 8], relay=relay, at=AT
    )
    assert found == {6: HONEST[6], 7: HONEST[7], 8: HONEST[8]}
    assert list(found) == [6, 7, 8]


def test_an_ip_address_endpoint_is_checked_against_the_certificate(
    ca: trustme.CA, servers: Servers, relay: SocketRelay
) -> None:
    endpoint = servers.start(host="127.0.0.1")
    found = certify(_policy(ca, [endpoint], 1), chain_id=CHAIN_ID, numbers=[8], relay=relay, at=AT)
    assert found == {8: HONEST[8]}


def test_one_liar_of_three_is_outvoted(
    ca: trustme.CA, servers: Servers, relay: SocketRelay
) -> None:
    liar = Node(hashes={**HONEST, 7: _fake(7, 1)})
    endpoints = [servers.start(), servers.start(liar), servers.start()]
    found = certify(
        _policy(ca, endpoints, 2), chain_id=CHAIN_ID, numbers=[7, 8], relay=relay, at=AT
    )
    assert found == {7: HONEST[7], 8: HONEST[8]}


def test_two_liars_of_three_leave_the_block_uncertified(
    ca: trustme.CA, servers: Servers, relay: SocketRelay
) -> None:
    liars = [Node(hashes={n: _fake(n, salt) for n in HONEST}) for salt in (1, 2)]
    endpoints = [servers.start(), servers.start(liars[0]), servers.start(liars[1])]
    error = _not_reached(_policy(ca, endpoints, 2), relay, [7, 8])
    assert error.reasons == ("vouched", "vouched", "vouched")
    assert error.details["threshold"] == 2


def test_two_hashes_each_reaching_the_threshold_certify_neither(
    ca: trustme.CA, servers: Servers, relay: SocketRelay
) -> None:
    colluding = Node(hashes={n: _fake(n, 1) for n in HONEST})
    endpoints = [
        servers.start(),
        servers.start(),
        servers.start(colluding),
        servers.start(colluding),
    ]
    _not_reached(_policy(ca, endpoints, 2), relay, [8])


def test_an_endpoint_that_is_down_does_not_block_the_others(
    ca: trustme.CA, servers: Servers, relay: SocketRelay
) -> None:
    endpoints = [servers.down(), servers.start(), servers.start()]
    found = certify(_policy(ca, endpoints, 2), chain_id=CHAIN_ID, numbers=[8], relay=relay, at=AT)
    assert found == {8: HONEST[8]}


def test_k_of_n_with_one_down_is_not_reached(
    ca: trustme.CA, servers: Servers, relay: SocketRelay
) -> None:
    endpoints = [servers.start(), servers.down(), servers.start()]
    error = _not_reached(_policy(ca, endpoints, 3), relay, [8])
    assert error.reasons[0] == error.reasons[2] == "vouched"
    assert error.reasons[1].startswith("tls_failed:")


def test_a_certificate_from_another_ca_does_not_vouch(
    ca: trustme.CA, servers: Servers, relay: SocketRelay
) -> None:
    stranger = trustme.CA().issue_cert("localhost", not_before=_utc(2000), not_after=_utc(2100))
    endpoints = [servers.start(), servers.start(leaf=stranger), servers.start()]
    assert certify(
        _policy(ca, endpoints, 2), chain_id=CHAIN_ID, numbers=[8], relay=relay, at=AT
    ) == {8: HONEST[8]}
    relay.close()
    error = _not_reached(_policy(ca, endpoints, 3), relay, [8])
    assert error.reasons[1] == "tls_failed:handshake"


def test_a_certificate_for_another_name_does_not_vouch(
    ca: trustme.CA, servers: Servers, relay: SocketRelay
) -> None:
    elsewhere = ca.issue_cert("rpc.example.test", not_before=_utc(2000), not_after=_utc(2100))
    endpoints = [servers.start(leaf=elsewhere), servers.start()]
    error = _not_reached(_policy(ca, endpoints, 2), relay, [8])
    assert error.reasons == ("tls_failed:handshake", "vouched")


@pytest.mark.parametrize("round_", [0, 1], ids=["handshake", "after-handshake"])
def test_a_host_that_tampers_with_ciphertext_gets_no_vouch(
    ca: trustme.CA, servers: Servers, relay: SocketRelay, round_: int
) -> None:
    def flip_last_byte(conn: int, at_round: int, arrived: bytes) -> bytes:
        if conn != 0 or at_round < round_ or not arrived:
            return arrived
        return arrived[:-1] + bytes([arrived[-1] ^ 0x01])

    relay.tamper = flip_last_byte
    endpoints = [servers.start(), servers.start(), servers.start()]
    error = _not_reached(_policy(ca, endpoints, 3), relay, [8])
    assert error.reasons[0].startswith("tls_failed:")
    assert error.reasons[1:] == ("vouched", "vouched")


def test_a_host_that_forges_a_plaintext_answer_gets_no_vouch(
    ca: trustme.CA, servers: Servers, relay: SocketRelay
) -> None:
    forged = Node(hashes={n: _fake(n, 3) for n in HONEST}).answer(
        [{"id": 0, "method": "eth_chainId", "params": []}]
    )
    relay.tamper = lambda conn, _round, arrived: (
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(forged), forged)
        if conn == 0
        else arrived
    )
    endpoints = [servers.start(), servers.start()]
    error = _not_reached(_policy(ca, endpoints, 2), relay, [8])
    assert error.reasons == ("tls_failed:handshake", "vouched")


def test_a_block_above_the_tagged_one_is_not_certified(
    ca: trustme.CA, servers: Servers, relay: SocketRelay
) -> None:
    endpoints = [servers.start(), servers.start()]
    policy = _policy(ca, endpoints, 2)
    found = certify(policy, chain_id=CHAIN_ID, numbers=[8, 9, 10], relay=relay, at=AT)
    assert found == {8: HONEST[8]}
    relay.close()
    error = _not_reached(policy, relay, [9, 10])
    assert error.reasons == ("not_final", "not_final")


def test_an_endpoint_lagging_behind_does_not_vouch_for_what_it_has_not_finalised(
    ca: trustme.CA, servers: Servers, relay: SocketRelay
) -> None:
    endpoints = [servers.start(), servers.start(Node(finalized=6)), servers.start()]
    found = certify(
        _policy(ca, endpoints, 3), chain_id=CHAIN_ID, numbers=[6, 7], relay=relay, at=AT
    )
    assert found == {6: HONEST[6]}


def test_a_node_without_a_finalized_block_vouches_for_nothing(
    ca: trustme.CA, servers: Servers, relay: SocketRelay
) -> None:
    endpoints = [servers.start(Node(finalized=None))]
    error = _not_reached(_policy(ca, endpoints, 1), relay, [1])
    assert error.reasons == ("not_final",)


def test_a_certificate_expired_at_the_chain_time_does_not_vouch(
    ca: trustme.CA, servers: Servers, relay: SocketRelay
) -> None:
    # Valid by the OS clock (2000..2030) but expired at AT (2033): the host's clock is not trusted.
    expired = ca.issue_cert("localhost", not_before=_utc(2000), not_after=_utc(2030))
    endpoints = [servers.start(), servers.start(leaf=expired), servers.start()]
    policy = _policy(ca, endpoints, 3)
    error = _not_reached(policy, relay, [8])
    assert error.reasons == ("vouched", "tls_failed:certificate", "vouched")
    relay.close()
    # A core replaying old history has a chain time before every certificate was issued: that
    # does not stop it (chain time only lags real time); the OS still checks notBefore.
    before_issue = 900_000_000  # 1998, before every certificate's notBefore
    found = certify(policy, chain_id=CHAIN_ID, numbers=[8], relay=relay, at=before_issue)
    assert found == {8: HONEST[8]}


def test_an_endpoint_on_another_chain_does_not_vouch(
    ca: trustme.CA, servers: Servers, relay: SocketRelay
) -> None:
    endpoints = [servers.start(), servers.start(Node(chain_id=1)), servers.start()]
    policy = _policy(ca, endpoints, 2)
    assert certify(policy, chain_id=CHAIN_ID, numbers=[8], relay=relay, at=AT) == {8: HONEST[8]}
    relay.close()
    error = _not_reached(_policy(ca, endpoints, 3), relay, [8])
    assert error.reasons == ("vouched", "wrong_chain_id", "vouched")


def test_an_http_error_status_does_not_vouch(
    ca: trustme.CA, servers: Servers, relay: SocketRelay
) -> None:
    endpoints = [servers.start(Node(status=503)), servers.start()]
    error = _not_reached(_policy(ca, endpoints, 2), relay, [8])
    assert error.reasons == ("http_status:503", "vouched")


def _answer(mutate: Callable[[list[dict[str, Any]]], object]) -> bytes:
    """The honest answer for ``numbers=[7]`` (ids 0, 1, 2), changed by ``mutate``."""
    calls = [
        {"id": 0, "method": "eth_chainId", "params": []},
        {"id": 1, "method": "eth_getBlockByNumber", "params": ["finalized", False]},
        {"id": 2, "method": "eth_getBlockByNumber", "params": ["0x7", False]},
    ]
    answers: list[dict[str, Any]] = json.loads(Node().answer(calls))
    result = mutate(answers)
    return result if isinstance(result, bytes) else json.dumps(answers).encode()


def _set(index: int, key: str, value: object) -> Callable[[list[dict[str, Any]]], None]:
    def mutate(answers: list[dict[str, Any]]) -> None:
        answers[index][key] = value

    return mutate


def _block_field(key: str, value: object) -> Callable[[list[dict[str, Any]]], None]:
    def mutate(answers: list[dict[str, Any]]) -> None:
        block = next(a for a in answers if a["id"] == 2)
        block["result"][key] = value

    return mutate


MALFORMED = {
    "not-json": lambda a: b"<html>bad gateway</html>",
    "not-utf8": lambda a: b"\xff\xfe[]",
    "not-a-batch": lambda a: json.dumps(a[0]).encode(),
    "too-few": lambda a: json.dumps(a[:2]).encode(),
    "too-many": lambda a: json.dumps([*a, a[0]]).encode(),
    "repeated-id": lambda a: json.dumps([a[0], a[0], a[2]]).encode(),
    "string-id": _set(0, "id", "0"),
    "bool-id": _set(0, "id", True),
    "unknown-id": _set(0, "id", 9),
    "wrong-version": _set(0, "jsonrpc", "1.0"),
    "result-and-error": _set(0, "error", {"code": -1, "message": "x"}),
    "nan": lambda a: json.dumps(a).replace('"result": "0x7a69"', '"result": NaN').encode(),
    "duplicate-key": lambda a: json.dumps(a).replace('"id": 2,', '"id": 2, "id": 2,').encode(),
    "deep": lambda a: b"[" * 50_000 + b"]" * 50_000,
    "short-hash": _block_field("hash", "0x" + "ab" * 31),
    "number-mismatch": _block_field("number", "0x6"),
    "leading-zero": _block_field("number", "0x07"),
    "number-as-int": _block_field("number", 7),
    "null-hash": _block_field("hash", None),
    "block-not-object": lambda a: (
        json.dumps(a)
        .replace('{"number"', '[{"number"')
        .replace('"transactions": []}', '"transactions": []}]')
        .encode()
    ),
}


@pytest.mark.parametrize("mutate", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_answer_does_not_vouch(
    ca: trustme.CA,
    servers: Servers,
    relay: SocketRelay,
    mutate: Callable[[list[dict[str, Any]]], object],
) -> None:
    endpoints = [servers.start(Node(raw=_answer(mutate))), servers.start()]
    error = _not_reached(_policy(ca, endpoints, 2), relay, [7])
    assert error.reasons == ("malformed_answer", "vouched")


def test_the_unchanged_answer_used_by_the_malformed_cases_vouches(
    ca: trustme.CA, servers: Servers, relay: SocketRelay
) -> None:
    endpoints = [servers.start(Node(raw=_answer(lambda a: None)))]
    found = certify(_policy(ca, endpoints, 1), chain_id=CHAIN_ID, numbers=[7], relay=relay, at=AT)
    assert found == {7: HONEST[7]}


def test_an_rpc_error_for_the_tag_does_not_vouch(
    ca: trustme.CA, servers: Servers, relay: SocketRelay
) -> None:
    def tag_error(answers: list[dict[str, Any]]) -> None:
        tagged = next(a for a in answers if a["id"] == 1)
        del tagged["result"]
        tagged["error"] = {"code": -32601, "message": "finalized not supported"}

    endpoints = [servers.start(Node(raw=_answer(tag_error)))]
    assert _not_reached(_policy(ca, endpoints, 1), relay, [7]).reasons == ("rpc_error",)


def test_a_relay_that_raises_unavailable_costs_only_that_endpoint(
    ca: trustme.CA, servers: Servers, relay: SocketRelay
) -> None:
    def flaky(conn: int, host: str, port: int, data: bytes) -> bytes:
        if conn == 1:
            raise Unavailable("the host could not connect")
        return relay(conn, host, port, data)

    endpoints = [servers.start(), servers.start(), servers.start()]
    found = certify(_policy(ca, endpoints, 2), chain_id=CHAIN_ID, numbers=[8], relay=flaky, at=AT)
    assert found == {8: HONEST[8]}
    relay.close()
    with pytest.raises(QuorumNotReached) as info:
        certify(_policy(ca, endpoints, 3), chain_id=CHAIN_ID, numbers=[8], relay=flaky, at=AT)
    assert info.value.reasons == ("vouched", "unavailable", "vouched")


def test_quorum_not_reached_is_a_serialisable_policy_rejection(
    ca: trustme.CA, servers: Servers, relay: SocketRelay
) -> None:
    error = _not_reached(_policy(ca, [servers.down()], 1), relay, [8])
    assert isinstance(error, PolicyRejected)
    assert error.http_status == 403
    body = json.loads(json.dumps(error.to_json()))["error"]
    assert body["code"] == "runtime_quorum_not_reached"
    assert body["reasons"] == ["tls_failed:handshake"]
    assert body["threshold"] == 1


# ---- the HTTPS exchange itself -------------------------------------------------------------------


def _exchange(ca: trustme.CA, endpoint: RPCEndpoint, **kwargs: Any) -> HTTPSExchange:
    options: dict[str, Any] = {
        "host": endpoint.host,
        "port": endpoint.port,
        "method": "POST",
        "target": endpoint.path,
        "body": json.dumps([{"id": 0, "method": "eth_chainId", "params": []}]).encode(),
        "at": AT,
        "max_response_bytes": 4096,
        **kwargs,
    }
    return HTTPSExchange(client_context(ca.cert_pem.bytes()), **options)


def test_an_exchange_returns_the_response(
    ca: trustme.CA, servers: Servers, relay: SocketRelay
) -> None:
    ex = _exchange(ca, servers.start())
    with pytest.raises(RuntimeError):  # not complete yet
        ex.response()
    response = exchange(ex, relay, conn=0)
    assert ex.response() is response
    assert ex.is_done
    assert response.status == 200
    assert (b"content-type", b"application/json") in response.headers
    assert json.loads(response.body) == [{"jsonrpc": "2.0", "id": 0, "result": hex(CHAIN_ID)}]


def test_an_exchange_refuses_a_response_larger_than_allowed(
    ca: trustme.CA, servers: Servers, relay: SocketRelay
) -> None:
    ex = _exchange(ca, servers.start(Node(raw=b"[" + b" " * 10_000 + b"]")))
    with pytest.raises(TLSFailed) as info:
        exchange(ex, relay, conn=0)
    assert info.value.code == "runtime_tls_failed"
    assert info.value.details["stage"] == "too_large"


def test_an_exchange_is_bounded_in_rounds_and_its_failure_sticks(
    ca: trustme.CA, servers: Servers, relay: SocketRelay
) -> None:
    ex = _exchange(ca, servers.start())
    with pytest.raises(TLSFailed) as info:
        exchange(ex, relay, conn=0, max_rounds=1)
    assert info.value.details["stage"] == "rounds"
    assert isinstance(info.value, Unavailable)
    for call in (ex.data_to_send, ex.response, lambda: ex.receive_data(b"x")):
        with pytest.raises(TLSFailed):
            call()


def test_an_early_end_of_stream_fails_the_exchange(ca: trustme.CA) -> None:
    ex = _exchange(ca, RPCEndpoint(host="localhost", port=1))
    assert ex.data_to_send()  # the ClientHello
    with pytest.raises(TLSFailed) as info:
        ex.receive_data(b"")
    assert info.value.details["stage"] == "handshake"


def test_an_exchange_refuses_a_request_it_cannot_frame(ca: trustme.CA) -> None:
    with pytest.raises(ValueError):
        _exchange(ca, RPCEndpoint(host="localhost"), headers=(("Bad Header", "x"),))
    with pytest.raises(ValueError):
        _exchange(ca, RPCEndpoint(host="localhost"), max_response_bytes=0)


def test_client_context_trusts_only_the_given_roots(ca: trustme.CA) -> None:
    context = client_context(ca.cert_pem.bytes())
    assert context.cert_store_stats()["x509_ca"] == 1
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    with pytest.raises(ValueError):
        client_context(b"not a certificate")


# ---- validation ----------------------------------------------------------------------------------


def test_policy_validation(ca: trustme.CA) -> None:
    pem = ca.cert_pem.bytes()
    one, two = RPCEndpoint(host="a.example"), RPCEndpoint(host="b.example")
    assert QuorumPolicy(endpoints=(one, two), threshold=2, ca_pem=pem).block_tag == "finalized"
    bad: dict[str, Any]
    for bad in (
        {"endpoints": (one, two), "threshold": 0},
        {"endpoints": (one, two), "threshold": 3},
        {"endpoints": (), "threshold": 1},
        {"endpoints": (one, one), "threshold": 1},
        {"endpoints": (one,), "threshold": 1, "block_tag": "pending"},
        {"endpoints": (one,), "threshold": 1, "ca_pem": b""},
    ):
        fields: dict[str, Any] = {"ca_pem": pem, **bad}
        with pytest.raises(ValueError):
            QuorumPolicy(**fields)
    with pytest.raises(TypeError):
        QuorumPolicy(endpoints=(one,), threshold=True, ca_pem=pem)
    with pytest.raises(TypeError):
        QuorumPolicy(endpoints=[one], threshold=1, ca_pem=pem)  # type: ignore[arg-type]
    assert "ca_pem" not in repr(QuorumPolicy(endpoints=(one,), threshold=1, ca_pem=pem))


@pytest.mark.parametrize(
    "fields",
    [
        {"host": ""},
        {"host": "a.example/path"},
        {"host": "a example"},
        {"host": "a.example", "port": 0},
        {"host": "a.example", "port": 65536},
        {"host": "a.example", "path": "rpc"},
        {"host": "a.example", "path": "/a b"},
    ],
)
def test_endpoint_validation(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        RPCEndpoint(**fields)


@pytest.mark.parametrize(
    ("numbers", "error"),
    [
        ([], ValueError),
        (list(range(MAX_CERTIFY_NUMBERS + 1)), ValueError),
        ([7, 7], ValueError),
        ([-1], ValueError),
        ([2**63], ValueError),
        ([True], TypeError),
        (["7"], TypeError),
    ],
)
def test_certify_refuses_bad_numbers_before_any_io(
    ca: trustme.CA, numbers: list[Any], error: type[Exception]
) -> None:
    def no_io(conn: int, host: str, port: int, data: bytes) -> bytes:
        raise AssertionError("the relay must not be called")

    policy = _policy(ca, [RPCEndpoint(host="a.example")], 1)
    with pytest.raises(error):
        certify(policy, chain_id=CHAIN_ID, numbers=numbers, relay=no_io, at=AT)
    with pytest.raises(ValueError):
        certify(policy, chain_id=0, numbers=[1], relay=no_io, at=AT)
    with pytest.raises(TypeError):
        certify(policy, chain_id=CHAIN_ID, numbers=[1], relay=no_io, at=None)  # type: ignore[arg-type]
