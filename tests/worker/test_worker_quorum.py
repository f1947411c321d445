"""A worker on the ``rpc-quorum`` chain-trust policy: three local HTTPS JSON-RPC endpoints in front
of the chain, TLS ended inside the core, the host relaying ciphertext; one or two of them lie."""

from __future__ import annotations

import contextlib
import json
import ssl
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import trustme
from eth_hash.auto import keccak

from veilnet.chain.sequencer import trust_anchor
from veilnet.protocol.chain import POLICY_RPC_QUORUM, ChainTrust

from .conftest import FINALITY, Net, forward_rpc, reply_json

pytestmark = pytest.mark.slow


class _Proxy(ThreadingHTTPServer):
    """An HTTPS JSON-RPC endpoint forwarding to the chain; a liar rewrites every block hash."""

    daemon_threads = False  # server_close() joins every handler thread

    def __init__(self, upstream: str, tls: ssl.SSLContext, *, lies: bytes) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream = urllib.parse.urlsplit(upstream)
        self.tls = tls
        self.lies = lies

    def get_request(self) -> tuple[Any, Any]:
        sock, address = self.socket.accept()
        return self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10
    server: _Proxy

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        answer = forward_rpc(self.server.upstream, body)
        if self.server.lies:
            answer = json.dumps(_lie(json.loads(answer), self.server.lies)).encode()
        reply_json(self, answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _lie(value: Any, salt: bytes) -> Any:
    """Every block hash replaced by one of this liar's own (liars do not collude here)."""
    if isinstance(value, list):
        return [_lie(item, salt) for item in value]
    if isinstance(value, dict):
        return {
            key: "0x" + keccak(salt + bytes.fromhex(item[2:])).hex()
            if key == "hash" and isinstance(item, str)
            else _lie(item, salt)
            for key, item in value.items()
        }
    return value


@contextlib.contextmanager
def _endpoints(upstream: str, liars: int) -> Iterator[tuple[list[str], bytes]]:
    """Three HTTPS endpoints (the first ``liars`` of them lie) and the CA they chain to."""
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost")
    servers = []
    try:
        for index in range(3):
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            leaf.configure_cert(tls)
            server = _Proxy(upstream, tls, lies=b"liar %d" % index if index < liars else b"")
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
            thread.start()
            servers.append((server, thread))
        names = [f"localhost:{server.server_address[1]}/" for server, _ in servers]
        yield names, ca.cert_pem.bytes()
    finally:
        for server, thread in servers:
            server.shutdown()
            server.server_close()
            thread.join()


def _quorum_trust(net: Net, endpoints: list[str], ca: bytes) -> ChainTrust:
    number, block_hash, timestamp = trust_anchor(net.chain.client(), net.deployment.genesis_block)
    return ChainTrust(
        anchor_number=number,
        anchor_hash=block_hash,
        anchor_timestamp=timestamp,
        policy=POLICY_RPC_QUORUM,
        rpc_endpoints=tuple(endpoints),
        rpc_threshold=2,
        rpc_ca_pem=ca,
        rpc_block_tag="latest",  # the embedded chain's "finalized" is its head
    )


def test_a_worker_follows_the_chain_through_a_quorum_with_one_liar(net: Net) -> None:
    with _endpoints(net.url, liars=1) as (endpoints, ca):
        host = net.host("q1", 0, chain_trust=_quorum_trust(net, endpoints, ca), sequencer_url=None)
        head = net.chain.mine(4)
        host.poke()
        host.wait_until(
            lambda h: h.applied_block is not None and h.applied_block >= head - FINALITY,
            timeout=60,
        )
        assert host.health().rejected_code is None


def test_a_worker_does_not_move_when_two_of_three_lie(net: Net) -> None:
    with _endpoints(net.url, liars=2) as (endpoints, ca):
        host = net.host("q2", 0, chain_trust=_quorum_trust(net, endpoints, ca), sequencer_url=None)
        net.chain.mine(4)
        host.poke()
        host.wait_until(lambda h: h.health().rejected_code is not None, timeout=60)
        health = host.health()
        assert health.rejected_code == "runtime_quorum_not_reached"
        assert host.applied_block is None  # not one block of a chain the quorum did not certify
