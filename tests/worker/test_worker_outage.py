"""Egress is never lost: the node refuses every transaction for 60 blocks (and a worker restarts
in the middle), then comes back; every message lands exactly once, in order, none dropped."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from veilnet.chain.follower import Follower
from veilnet.chain.model import Egress
from veilnet.codec import abi_decode
from veilnet.protocol import topics
from veilnet.worker import WorkerHost, bootstrap_network, dev_measurement

from .conftest import FINALITY, Net, deploy_counter, forward_rpc, reply_json

pytestmark = pytest.mark.slow

OUTAGE_BLOCKS = 60
WRITES = {"eth_sendRawTransaction", "eth_estimateGas", "eth_sendTransaction"}


class _Gate(ThreadingHTTPServer):
    """The workers' RPC endpoint: forwards to the chain; while ``refusing``, every write gets a
    JSON-RPC error, as a node that is syncing or overloaded answers (reads still pass, so the
    workers keep applying blocks and making egress they cannot post)."""

    daemon_threads = True

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), _Forward)
        self.upstream = urllib.parse.urlsplit(upstream)
        self.refusing = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Forward(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Gate

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = json.loads(body)
        calls = request if isinstance(request, list) else [request]
        if self.server.refusing.is_set() and any(c.get("method") in WRITES for c in calls):
            refused = [
                {"jsonrpc": "2.0", "id": c.get("id"), "error": {"code": -32000, "message": "busy"}}
                for c in calls
            ]
            answer = json.dumps(refused if isinstance(request, list) else refused[0]).encode()
        else:
            answer = forward_rpc(self.server.upstream, body)
        reply_json(self, answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def gate(net: Net) -> Iterator[_Gate]:
    server = _Gate(net.url)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def _egress(net: Net, worker: str) -> list[Egress]:
    """Every egress message of ``worker``'s identity on chain, in chain order."""
    follower = Follower(
        net.network.client,
        net.deployment.addresses,
        start_block=net.deployment.genesis_block,
        finality_depth=0,
    )
    out = []
    while blocks := follower.poll():
        for block in blocks:
            out += [
                event
                for event in block.events
                if isinstance(event, Egress) and event.origin.hex.lower() == worker.lower()
            ]
    return out


def _commitments(net: Net, worker: str) -> list[int]:
    """The heights of ``worker``'s state commitments on chain, in chain order."""
    return [
        abi_decode(["bytes32", "uint64", "bytes32"], event.payload)[1]
        for event in _egress(net, worker)
        if event.topic == topics.TOPIC_STATE_COMMITMENT
    ]


def _mine_and_apply(net: Net, hosts: list[WorkerHost], blocks: int) -> None:
    for _ in range(blocks):
        head = net.chain.mine(1)
        for host in hosts:
            host.poke()
            host.wait_until(
                lambda h, head=head: (
                    h.applied_block is not None and h.applied_block >= head - FINALITY
                ),
                timeout=60,
            )


def test_a_60_block_outage_and_a_restart_lose_no_egress(net: Net, gate: _Gate) -> None:
    overrides = {"rpc_url": gate.url, "commitment_interval": 5, "checkpoint_every": 3}
    gk = net.host("gk", 0, **overrides)
    w1 = net.host("w1", 1, **overrides)
    bootstrap_network(
        net.network.client,
        net.deployment,
        net.admin_key,
        gatekeeper=gk.address,
        clusters={"c1": [w1.address]},
        measurements=[dev_measurement()],
        mine=net.chain.mine,
        poll_interval=0.02,
        timeout=120,
    )
    deploy_counter(net)
    net.settle(lambda: bool(_commitments(net, w1.address)), hosts=[gk, w1])
    posted_before = _commitments(net, w1.address)
    start = net.chain.mine(0)

    gate.refusing.set()
    _mine_and_apply(net, [gk, w1], OUTAGE_BLOCKS // 2)
    assert not w1.is_idle()  # its commitments wait: no checkpoint moves past them
    w1.stop(drain_timeout=0.5)
    w1 = net.host("w1", 1, **overrides)  # restarts from a checkpoint before the outage
    first = start + 5 - start % 5  # the first commitment made during the outage
    assert w1.restored_from is not None and w1.restored_from < first
    _mine_and_apply(net, [gk, w1], OUTAGE_BLOCKS // 2)
    assert _commitments(net, w1.address) == posted_before  # nothing got through meanwhile

    gate.refusing.clear()
    net.settle(lambda: w1.is_idle() and gk.is_idle(), hosts=[gk, w1])
    end = w1.applied_block
    assert end is not None
    seqs = [event.seq for event in _egress(net, w1.address)]
    assert seqs == list(range(len(seqs)))  # in order, none missing, none twice
    heights = _commitments(net, w1.address)
    expected = [h for h in range(start + 1, end + 1) if h % 5 == 0]
    # every outage commitment landed (the worker may have applied a block more since ``end``)
    assert [h for h in heights if start < h <= end] == expected
    assert len(set(heights)) == len(heights)
