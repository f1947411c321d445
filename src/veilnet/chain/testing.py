"""``check_chain_backend``: the conformance suite every ChainBackend passes (embedded, anvil).
Deploys a network, sends commands and egress, follows with proofs, checks snapshot/revert."""

from __future__ import annotations

from veilnet.chain.deploy import Network, deploy
from veilnet.chain.egress import egress_domain, sign_egress, topic
from veilnet.chain.follower import Follower
from veilnet.chain.interfaces import ChainBackend
from veilnet.chain.model import ClusterCreated, Command, ContractDeployed, Egress
from veilnet.crypto import SecretKey

__all__ = ["check_chain_backend"]

_MEASUREMENT = b"\x42" * 32


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
    fund = wsender.transact(worker.address, b"", value=10**18, gas=21_000)
    assert fund.status == 1
    wtx = network.sender(worker._private_scalar())
    network.register_worker(
        wtx,
        operator=wsender.address,
        hpke_key=worker.public.x25519,
        tee_kind=1,
        measurement=_MEASUREMENT,
        quote=b"quote-bytes",
        collateral_hash=b"\x00" * 32,
    )
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
