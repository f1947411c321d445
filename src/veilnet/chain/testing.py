"""``check_chain_backend``: the conformance suite every ChainBackend passes (embedded, anvil);
``keyed_agent``: a network with one agent whose key is on chain, for tests of its results."""

from __future__ import annotations

from dataclasses import dataclass

from veilnet.chain.contracts import TxSender
from veilnet.chain.deploy import Network, deploy
from veilnet.chain.egress import (
    egress_domain,
    encode_cluster_key,
    encode_contract_key,
    encode_master_key,
    sign_egress,
    topic,
)
from veilnet.chain.follower import Follower
from veilnet.chain.interfaces import ChainBackend
from veilnet.chain.model import ClusterCreated, Command, ContractDeployed, Egress
from veilnet.crypto import Address, SecretKey
from veilnet.protocol.results import sign_result

__all__ = ["KeyedAgent", "check_chain_backend", "keyed_agent"]

_MEASUREMENT = b"\x42" * 32


def _register(network: Network, funder: TxSender, worker: SecretKey, *, quote: bytes) -> None:
    """Fund a worker identity and register it (the identity sends its own registration)."""
    assert funder.transact(worker.address, b"", value=10**18, gas=21_000).status == 1
    network.register_worker(
        network.sender(worker._private_scalar()),
        operator=funder.address,
        hpke_key=worker.public.x25519,
        tee_kind=1,
        measurement=_MEASUREMENT,
        quote=quote,
        collateral_hash=b"\x00" * 32,
    )


def check_chain_backend(backend: ChainBackend) -> None:
    """Raise AssertionError (or a chain error) if ``backend`` misbehaves."""
    client = backend.client()
    admin_key = backend.dev_accounts[0][1]
    deployment = deploy(client, admin_key, measurements=[_MEASUREMENT])
    network = Network(client, deployment.addresses)
    admin = network.sender(admin_key)
    user = network.sender(backend.dev_accounts[1][1])
    cluster_id = b"\x01" * 32
    network.create_cluster(admin, cluster_id, admin.address)
    contract_id = network.deploy_contract(
        user, salt=b"\x02" * 32, cluster_id=cluster_id, code=b"export default {}"
    )
    for i in range(3):
        network.push_command(user, contract_id, b"command-%d" % i)

    worker = SecretKey.derive(b"conformance-worker-seed-0123456789", "w")
    wsender = network.sender(backend.dev_accounts[2][1])
    # The worker pays for its own registration from a funded account it controls: use the
    # dev account's key to fund, then register from the worker identity itself.
    _register(network, wsender, worker, quote=b"quote-bytes")
    # The Bus takes egress only from workers the Registry lets post: the genesis gatekeeper may
    # before anyone could endorse it.
    network.add_gatekeeper(admin, worker.address)
    domain = egress_domain(deployment.addresses.chain_id, deployment.addresses.bus)
    message = sign_egress(worker, domain, seq=0, topic=topic("veil/egress/state"), payload=b"root")
    network.post(user, message)
    assert network.next_seq(worker.address) == 1

    head = backend.mine(2)
    follower = Follower(client, deployment.addresses, start_block=deployment.genesis_block)
    blocks = follower.poll()
    assert blocks
    assert blocks[-1].header.number == head - 2
    events = [e for b in blocks for e in b.events]
    assert any(isinstance(e, ClusterCreated) and e.cluster_id == cluster_id for e in events)
    assert any(isinstance(e, ContractDeployed) and e.contract_id == contract_id for e in events)
    commands = [e for e in events if isinstance(e, Command)]
    assert [c.seq for c in commands] == [0, 1, 2]
    assert [c.payload for c in commands] == [b"command-0", b"command-1", b"command-2"]
    egress = [e for e in events if isinstance(e, Egress)]
    assert len(egress) == 1
    assert egress[0].origin == worker.address
    assert egress[0].payload == b"root"
    positions = [(e.block_number, e.log_index) for e in events]
    assert positions == sorted(positions)

    snap = backend.snapshot()
    before = backend.mine(1)
    assert backend.revert(snap)
    assert backend.mine(1) == before
    client.close()


@dataclass
class KeyedAgent:
    """An agent contract with an on-chain key, set up the way enclave keys would post it (the
    genesis gatekeeper's master key keys a cluster, whose key posts the contract's key), for
    tests and benchmarks of what EVM contracts do with its results. ``rotate`` moves it to the
    next epoch's key, as a master-key rotation would."""

    network: Network
    admin: TxSender
    relayer: TxSender
    master: SecretKey
    cluster_id: bytes
    contract_id: bytes
    epoch: int = 0
    cluster_key: SecretKey | None = None
    contract_key: SecretKey | None = None

    def post(self, key: SecretKey, egress: tuple[bytes, bytes]) -> None:
        domain = egress_domain(self.network.addresses.chain_id, self.network.addresses.bus)
        seq = self.network.next_seq(key.address)
        message = sign_egress(key, domain, seq=seq, topic=egress[0], payload=egress[1])
        self.network.post(self.relayer, message)

    def rotate(self) -> SecretKey:
        """Post the next epoch's cluster key and contract key; returns the contract key."""
        self.epoch += 1
        seed = b"veilnet-keyed-agent-test-keys-00"
        cluster_key = SecretKey.derive(seed, "cluster", self.epoch)
        contract_key = SecretKey.derive(seed, "contract", self.epoch)
        self.post(
            self.master,
            encode_cluster_key(
                self.cluster_id, self.epoch, cluster_key.address, cluster_key.public.x25519
            ),
        )
        self.post(
            cluster_key,
            encode_contract_key(
                self.contract_id, self.epoch, contract_key.address, contract_key.public.x25519
            ),
        )
        self.cluster_key, self.contract_key = cluster_key, contract_key
        return contract_key

    def sign_result(
        self, consumer: Address, request_id: bytes, result: bytes, key: SecretKey | None = None
    ) -> bytes:
        """The signature a worker puts on ``result`` for ``consumer``'s request: by the
        current contract key, or by ``key`` (a test's stranger or an old key)."""
        signer = key or self.contract_key
        assert signer is not None, "the agent has no contract key yet"
        return sign_result(
            signer,
            chain_id=self.network.addresses.chain_id,
            consumer=consumer.raw,
            request_id=request_id,
            result=result,
        )


def keyed_agent(backend: ChainBackend) -> KeyedAgent:
    """A fresh network on ``backend`` with one keyed agent contract (epoch 1)."""
    client = backend.client()
    admin_key = backend.dev_accounts[0][1]
    deployment = deploy(client, admin_key, measurements=[_MEASUREMENT])
    network = Network(client, deployment.addresses)
    admin = network.sender(admin_key)
    relayer = network.sender(backend.dev_accounts[1][1])
    gatekeeper = SecretKey.derive(b"veilnet-keyed-agent-test-keys-00", "gatekeeper")
    _register(network, relayer, gatekeeper, quote=b"keyed-agent")
    network.add_gatekeeper(admin, gatekeeper.address)
    master = SecretKey.derive(b"veilnet-keyed-agent-test-keys-00", "master")
    cluster_id = b"\xa9" * 32
    network.create_cluster(admin, cluster_id, admin.address)
    contract_id = network.deploy_contract(
        admin, salt=b"\x01" * 32, cluster_id=cluster_id, code=b"py\x00def job(r):\n  return r\n"
    )
    agent = KeyedAgent(network, admin, relayer, master, cluster_id, contract_id)
    agent.post(gatekeeper, encode_master_key(master.address, master.public.x25519))
    agent.rotate()
    return agent
