"""``veil bench chain``: commands per second through ``Bus.push_command`` into finalized,
proven, decoded ``Command`` events, on the embedded py-evm chain and on anvil, side by side."""

from __future__ import annotations

import time
from typing import Any

from veilnet.bench import benchmark
from veilnet.chain import EmbeddedChain, Follower, Network, deploy, find_anvil
from veilnet.chain.anvil import AnvilChain
from veilnet.chain.interfaces import ChainBackend
from veilnet.chain.model import Command

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


@benchmark("chain")
def _bench(quick: bool) -> dict[str, Any]:
    count = 40 if quick else 1000
    figures: dict[str, Any] = {}
    with EmbeddedChain() as embedded:
        figures["commands_per_s_embedded"] = round(_commands_per_s(embedded, count), 1)
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
        },
    }
