"""``veil bench chain``: commands per second through ``Bus.push_command`` into finalized,
proven, decoded ``Command`` events, on the embedded chain and on anvil; gas of state commitments."""

from __future__ import annotations

import time
from typing import Any

from veilnet.bench import benchmark
from veilnet.chain import EmbeddedChain, Follower, Network, deploy, find_anvil
from veilnet.chain.anvil import AnvilChain
from veilnet.chain.egress import (
    egress_domain,
    encode_cluster_key,
    encode_endorse,
    encode_master_key,
    encode_worker_key,
    sign_egress,
)
from veilnet.chain.interfaces import ChainBackend
from veilnet.chain.model import Command
from veilnet.codec import abi_encode
from veilnet.crypto import SecretKey
from veilnet.protocol.topics import TOPIC_STATE_COMMITMENT

_BATCH = 100
_PAYLOAD = b"\x5a" * 256


def _commands_per_s(backend: ChainBackend, count: int) -> float:
    client = backend.client()
    deployment = deploy(client, backend.dev_accounts[0][1])
    network = Network(client, deployment.addresses)
    admin = network.sender(backend.dev_accounts[0][1])
    user = network.sender(backend.dev_accounts[1][1])
    cluster = b"\xbe" * 32
    network.create_cluster(admin, cluster, admin.address)
    contract_id = network.deploy_contract(user, salt=b"\x01" * 32, cluster_id=cluster, code=b"x")
    data = network.bus.encode("push_command", contract_id, _PAYLOAD)
    gas = user.estimate(network.bus.address, data)
    follower = Follower(client, deployment.addresses, start_block=backend.mine(1))
    follower.poll()
    start = time.perf_counter()
    for offset in range(0, count, _BATCH):
        size = min(_BATCH, count - offset)
        user.send_many([(network.bus.address, data, gas)] * size)
    backend.mine(follower.finality_depth)
    seen = 0
    while seen < count:
        blocks = follower.poll()
        seen += sum(1 for b in blocks for e in b.events if isinstance(e, Command))
        if not blocks:
            backend.mine(1)
    elapsed = time.perf_counter() - start
    client.close()
    return count / elapsed


def _gas(backend: ChainBackend, members: int) -> dict[str, int]:
    """Gas of the calls a network makes, by figure name: a registration, an endorsement, a
    cluster key, a command, both kinds of worker encryption key, and the state commitments of
    one height in a cluster of ``members`` endorsed workers, the first ``members // 2`` of them
    against the rest (the last post forms the verdict and names up to four of them,
    ``Registry._state_commitment``)."""
    gas: dict[str, int] = {}
    client = backend.client()
    admin_key = backend.dev_accounts[0][1]
    measurement = b"\x42" * 32
    deployment = deploy(client, admin_key, measurements=[measurement])
    network = Network(client, deployment.addresses)
    admin = network.sender(admin_key)
    domain = egress_domain(deployment.addresses.chain_id, deployment.addresses.bus)
    seqs: dict[bytes, int] = {}

    def post(key: SecretKey, message: tuple[bytes, bytes]) -> int:
        seq = seqs.get(key.address.raw, 0)
        seqs[key.address.raw] = seq + 1
        signed = sign_egress(key, domain, seq=seq, topic=message[0], payload=message[1])
        return network.post(admin, signed).gas_used

    def register(name: str) -> SecretKey:
        key = SecretKey.derive(b"veilnet-bench-chain-commitments", name)
        admin.transact(key.address, b"", value=10**18, gas=21_000)
        gas["gas_register_worker"] = network.register_worker(
            network.sender(key._private_scalar()),
            operator=admin.address,
            hpke_key=key.public.x25519,
            tee_kind=1,
            measurement=measurement,
            quote=name.encode(),
            collateral_hash=b"\x00" * 32,
        ).gas_used
        return key

    gatekeeper = register("gk")
    network.add_gatekeeper(admin, gatekeeper.address)
    master = SecretKey.derive(b"veilnet-bench-chain-commitments", "master")
    post(gatekeeper, encode_master_key(master.address, master.public.x25519))
    cluster = b"\xbe" * 32
    network.create_cluster(admin, cluster, admin.address)
    keys = [register(f"w{i}") for i in range(members)]
    for key in keys:
        registration = network.view("Registry", "registration_of", key.address)
        gas["gas_endorse"] = post(master, encode_endorse(key.address, 1, registration, 2**40))
        network.add_cluster_worker(admin, cluster, key.address)
    cluster_key = SecretKey.derive(b"veilnet-bench-chain-commitments", "cluster-1")
    gas["gas_cluster_key"] = post(
        master, encode_cluster_key(cluster, 1, cluster_key.address, cluster_key.public.x25519)
    )
    # the next epoch with a post-quantum hybrid key: the Registry stores a hash, so only the
    # calldata and log of 1,184 more bytes cost more
    hybrid_key = SecretKey.derive(b"veilnet-bench-chain-commitments", "cluster-2")
    gas["gas_cluster_key_hybrid"] = post(
        master,
        encode_cluster_key(cluster, 2, hybrid_key.address, hybrid_key.public.mlkem768_x25519),
    )
    contract_id = network.deploy_contract(admin, salt=b"\x01" * 32, cluster_id=cluster, code=b"c")
    gas["gas_push_command"] = network.push_command(admin, contract_id, _PAYLOAD).gas_used
    height = backend.mine(1)
    commitments = []
    for index, key in enumerate(keys):
        value = b"\x66" * 32 if index < members // 2 else b"\x11" * 32
        payload = abi_encode(["bytes32", "uint64", "bytes32"], [cluster, height, value])
        commitments.append(post(key, (TOPIC_STATE_COMMITMENT, payload)))
    gas["gas_state_commitment"] = max(commitments[:-1])
    gas["gas_state_commitment_verdict"] = commitments[-1]
    # a worker's encryption keys: an X25519 one, then a hybrid (ML-KEM-768 + X25519) one, from
    # one of the majority (the dissenters were just de-endorsed and post nothing more)
    last = keys[-1]
    gas["gas_worker_key_x25519"] = post(last, encode_worker_key(1, last.public.x25519))
    gas["gas_worker_key_hybrid"] = post(last, encode_worker_key(2, b"\x5a" * 1216))
    client.close()
    return gas


@benchmark("chain")
def _bench(quick: bool) -> dict[str, Any]:
    count = 40 if quick else 1000
    figures: dict[str, Any] = {}
    with EmbeddedChain() as embedded:
        figures["commands_per_s_embedded"] = round(_commands_per_s(embedded, count), 1)
    with EmbeddedChain() as embedded:
        figures.update(sorted(_gas(embedded, 3 if quick else 9).items()))
    if find_anvil() is not None:
        with AnvilChain() as anvil:
            figures["commands_per_s_anvil"] = round(_commands_per_s(anvil, count), 1)
    else:
        figures["commands_per_s_anvil"] = None
    return {
        "figures": figures,
        "params": {
            "commands": count,
            "payload_bytes": len(_PAYLOAD),
            "rpc_batch": _BATCH,
            "finality_depth": 2,
            "mining": "one block per batched request (embedded); per tx (anvil automine)",
            "gas": "embedded chain. gas_state_commitment*: Bus.post of a state commitment in a "
            "cluster of 9 (quick: 3) endorsed members, 4 (1) of them against the rest; the "
            "verdict post names them. gas_worker_key_*: Bus.post of a worker's encryption key "
            "(32-byte X25519, 1216-byte ML-KEM-768+X25519). gas_register_worker: a 2-byte "
            "quote (a real one adds calldata and log gas per byte). gas_endorse, "
            "gas_cluster_key: Bus.post (a cluster's first key, X25519). "
            "gas_cluster_key_hybrid: its next epoch with a 1216-byte ML-KEM-768+X25519 key "
            "(keys are stored by hash). gas_push_command: 256 bytes, no fee",
        },
    }
