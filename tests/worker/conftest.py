"""Fixtures for worker-host tests: an embedded chain served over HTTP, hosts in threads, and
client helpers (deploy, command, query) built from ``veilnet.protocol.envelopes``."""

from __future__ import annotations

import http.client
import json
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest

from veilnet.chain import Deployment, EmbeddedChain, Network, deploy
from veilnet.chain.sequencer import Sequencer, SequencerServer, sequencer_trust
from veilnet.crypto import Domain, SecretKey
from veilnet.protocol import envelopes as proto
from veilnet.protocol.chain import ChainTrust
from veilnet.runtime import EnclaveCore
from veilnet.sandbox import AgentRuntime
from veilnet.worker import WorkerConfig, WorkerHost, dev_measurement
from veilnet.worker.enclave import LocalEnclave

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "agents"
NETWORK_SEED = b"veilnet-worker-tests-network-sd1"
OWNER = SecretKey.derive(b"\x51" * 32, "owner")
ALICE = SecretKey.derive(b"\x51" * 32, "alice")
SEQUENCER_KEY = SecretKey.derive(b"\x51" * 32, "sequencer")
FINALITY = 2


@dataclass
class Net:
    """An embedded chain with a deployed network and the dev accounts tests use."""

    chain: EmbeddedChain
    url: str
    deployment: Deployment
    network: Network
    engine: AgentRuntime
    root: Path
    sequencer: SequencerServer | None = None
    chain_trust: ChainTrust | None = None
    hosts: list[WorkerHost] = field(default_factory=list)
    defaults: dict[str, Any] = field(default_factory=dict)
    """Network parameters every host of the test gets (set before the first host)."""

    @property
    def admin_key(self) -> bytes:
        return self.chain.dev_accounts[0][1]

    def account(self, index: int) -> bytes:
        return self.chain.dev_accounts[index][1]

    def config(self, name: str, index: int, **overrides: Any) -> WorkerConfig:
        values: dict[str, Any] = {
            "name": name,
            "data_dir": self.root / name,
            "rpc_url": self.url,
            "deployment": self.deployment,
            "chain_trust": self.chain_trust,
            "sequencer_url": None if self.sequencer is None else self.sequencer.url,
            "operator_key": self.account(2 + index),
            "fund_from": self.account(6 + index),
            "network_seed": NETWORK_SEED,
            "allow_insecure_dev_tee": True,
            "engine": self.engine,
            "enclave_mode": "local",  # one shared engine; the same bytes interface in-process
            "finality_depth": FINALITY,
            "poll_interval": 0.02,
            "checkpoint_every": 5,
            "commitment_interval": 0,
        }
        values.update(self.defaults)
        values.update(overrides)
        return WorkerConfig(**values)

    def host(self, name: str, index: int, **overrides: Any) -> WorkerHost:
        host = WorkerHost(self.config(name, index, **overrides))
        host.start()
        self.hosts.append(host)
        return host

    def settle(
        self,
        until: Callable[[], bool],
        *,
        hosts: Sequence[WorkerHost] | None = None,
        rounds: int = 80,
    ) -> None:
        """Mine one block per round, let every host apply what is final and post its egress,
        until ``until()`` holds (bounded)."""
        group = list(hosts if hosts is not None else self.hosts)
        for _ in range(rounds):
            if until():
                return
            head = self.chain.mine(1)
            for host in group:
                host.poke()
                host.wait_until(
                    lambda h, head=head: (
                        h.applied_block is not None
                        and h.applied_block >= head - FINALITY
                        and h.is_idle()
                    ),
                    timeout=60,
                )
        raise AssertionError("network did not settle")

    def stop_all(self) -> None:
        for host in self.hosts:
            host.stop()
        self.hosts.clear()


@pytest.fixture
def net(tmp_path: Path, engine: AgentRuntime) -> Iterator[Net]:
    chain = EmbeddedChain()
    url = chain.serve()
    client = chain.client()
    deployment = deploy(client, chain.dev_accounts[0][1], measurements=[dev_measurement()])
    funder = Network(client, deployment.addresses).sender(chain.dev_accounts[1][1])
    funder.transact(ALICE.address, b"", value=10**19, gas=21_000)
    sequencer = Sequencer(
        client, SEQUENCER_KEY, registry=deployment.addresses.registry.raw, finality_depth=FINALITY
    )
    server = SequencerServer(sequencer).start()
    result = Net(
        chain=chain,
        url=url,
        deployment=deployment,
        network=Network(client, deployment.addresses),
        engine=engine,
        root=tmp_path,
        sequencer=server,
        chain_trust=sequencer_trust(client, deployment.genesis_block, sequencer.address),
    )
    yield result
    result.stop_all()
    server.close()
    chain.close()


# --- client side ---------------------------------------------------------------------------


def deploy_counter(
    net: Net, *, salt: bytes = b"\x01" * 32, start: int = 0, source: bytes | None = None
) -> bytes:
    """The counter example (or ``source``, a Python agent with the same ``init``)."""
    code = proto.pack_code("py", source or (EXAMPLES / "counter.py").read_bytes())
    init = bytes([proto.INIT_PUBLIC_TAG]) + json.dumps({"start": start}).encode()
    sender = net.network.sender(OWNER_FUNDED(net))
    return net.network.deploy_contract(
        sender, salt=salt, cluster_id=b"c1".ljust(32, b"\x00"), code=code, init_args=init
    )


def OWNER_FUNDED(net: Net) -> bytes:
    """The owner deploys from dev account 1 (a funded EOA)."""
    return net.account(1)


def contract_key(net: Net, contract_id: bytes) -> tuple[bytes, int]:
    """(public key, epoch) of a contract: its hash and key block from the Registry, the key
    from the ``ContractKeySet`` event of that block (as the SDK reads it)."""
    return net.network.published_key("contracts", contract_id)


def send_command(net: Net, contract_id: bytes, msg: Any, *, nonce: int) -> int:
    """Encrypt a command to the contract key and push it from ALICE (funded at setup)."""
    public, epoch = contract_key(net, contract_id)
    sender = net.network.sender(ALICE._private_scalar())
    payload = proto.seal_command(
        public,
        proto.CommandPlaintext(
            sender=sender.address.raw, nonce=nonce, kind="call", body=json.dumps(msg).encode()
        ),
        chain_id=net.deployment.addresses.chain_id,
        contract_id=contract_id,
        epoch=epoch,
    )
    seq = int(net.network.bus.call(net.network.client, "command_seq", contract_id))
    net.network.push_command(sender, contract_id, payload)
    return seq


class WorkerBusy(Exception):
    """The worker answered 503 (starting or catching up): ask again later."""


_request_counter = iter(range(1, 1 << 30))
_counter_lock = threading.Lock()


def query_over_http(
    net: Net,
    api_url: str,
    contract_id: bytes,
    *,
    kind: str = "call",
    body: bytes = b"{}",
    wallet: SecretKey | None = None,
) -> tuple[dict[str, Any], proto.QueryResponse]:
    """Build a query with the protocol helpers, POST it, verify and open the response."""
    wallet = wallet or ALICE
    with _counter_lock:
        n = next(_request_counter)
    ephemeral = SecretKey.derive(b"\x52" * 32, "ephemeral", n)
    chain_id = net.deployment.addresses.chain_id
    head = int(net.network.client.call("eth_blockNumber"), 16)
    certificate = proto.make_certificate(
        wallet, ephemeral, chain_id=chain_id, expires_block=head + 100
    )
    public, epoch = contract_key(net, contract_id)
    request_id = n.to_bytes(32, "big")
    query_session = proto.open_session(
        ephemeral,
        public,
        chain_id=chain_id,
        contract_id=contract_id,
        epoch=epoch,
        secret=b"\x03" * 32,
    )
    health = httpx.get(f"{api_url}/v1/health", timeout=30).json()
    info = httpx.get(f"{api_url}/v1/info", timeout=30).json()
    if health["boot_id"] is None:
        raise WorkerBusy("the core has not booted")
    request = proto.build_query(
        session=query_session,
        certificate=certificate,
        request_id=request_id,
        kind=kind,
        body=body,
        worker=bytes.fromhex(info["address"][2:]),
        boot_id=bytes.fromhex(health["boot_id"][2:]),
        window=head,
    )
    reply = httpx.post(
        f"{api_url}/v1/query",
        content=request,
        headers={"content-type": "application/octet-stream"},
        timeout=30,
    )
    if reply.status_code == 503:
        raise WorkerBusy(reply.text)
    assert reply.status_code == 200, reply.text
    response = proto.QueryResponse.from_bytes(reply.content)
    domain = Domain(chain_id=chain_id, verifying_contract=net.deployment.addresses.registry)
    plain = proto.open_response(
        response, domain=domain, session=query_session.keys, expected_request_id=request_id
    )
    return json.loads(plain), response


def core_of(host: WorkerHost) -> EnclaveCore:
    """The core inside a local-mode host's enclave (tests only: a real host holds none)."""
    link = host.enclave.link
    assert isinstance(link, LocalEnclave), "only a local-mode enclave lets a test look inside"
    core: EnclaveCore = link.service.core
    return core


def forward_rpc(upstream: urllib.parse.SplitResult, body: bytes) -> bytes:
    """The chain node's answer to one JSON-RPC POST body (for test proxies in front of it)."""
    conn = http.client.HTTPConnection(upstream.hostname or "", upstream.port, timeout=30)
    try:
        conn.request("POST", "/", body, {"Content-Type": "application/json"})
        return conn.getresponse().read()
    finally:
        conn.close()


def reply_json(handler: BaseHTTPRequestHandler, answer: bytes) -> None:
    """Send ``answer`` as a JSON 200 reply and close (test proxies)."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(answer)))
    handler.send_header("Connection", "close")
    handler.end_headers()
    handler.wfile.write(answer)
