"""``veil bench rollup``: what an EVM contract pays to ask an agent for work and to take its
signed results (``Bus.request``, ``VeilConsumer.fulfill`` alone and ten in a batch)."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from veilnet.bench import benchmark
from veilnet.chain import EmbeddedChain
from veilnet.chain.consumer import deploy_consumer
from veilnet.chain.solidity import compile_solidity, find_solc
from veilnet.chain.testing import keyed_agent
from veilnet.protocol.results import sign_result

_RESULT = b'{"price": "3120.55", "at": 1767225600}'
"""A price-feed answer: 38 bytes, as a small oracle result would be."""


def _measure(rounds: int, bytecode: bytes | None) -> dict[str, int]:
    """Gas of requests and results for the Vyper consumer, or for ``bytecode`` (its Solidity
    twin), on a fresh embedded chain."""
    with EmbeddedChain() as chain:
        agent = keyed_agent(chain)
        consumer = deploy_consumer(
            agent.network, agent.admin, agent.contract_id, ttl=1000, bytecode=bytecode
        )
        user = agent.relayer
        key = agent.contract_key
        assert key is not None
        chain_id = agent.network.addresses.chain_id

        def signed(request_id: bytes) -> bytes:
            return sign_result(
                key,
                chain_id=chain_id,
                consumer=consumer.address.raw,
                request_id=request_id,
                result=_RESULT,
            )

        request_gas, fulfill_gas = [], []
        for _ in range(rounds):
            request_id, receipt = consumer.request(user, b'{"pair": "ETH/USD"}')
            request_gas.append(receipt.gas_used)
            fulfill_gas.append(
                consumer.fulfill(user, request_id, _RESULT, signed(request_id)).gas_used
            )
        ids = [consumer.request(user, b'{"pair": "ETH/USD"}')[0] for _ in range(10)]
        batch = consumer.fulfill_batch(user, [(i, _RESULT, signed(i)) for i in ids])
    return {
        "request_gas": max(request_gas),
        "fulfill_gas": max(fulfill_gas),
        "fulfill_gas_batched_10": batch.gas_used // 10,
    }


def _request_to_fulfill_s(rounds: int) -> float:
    """Median seconds from a consumer's request to its result landing, with real workers: a
    two-worker devnet (anvil where installed, one block a second), the counter example, and
    a VeilConsumer of it; its workers run ``job`` and deliver."""
    from veilnet.devnet import Devnet, DevnetOptions
    from veilnet.devnet._demo import examples_dir
    from veilnet.sdk import Client

    with tempfile.TemporaryDirectory(prefix="veil-bench-rollup-") as tmp:
        devnet = Devnet(
            DevnetOptions(
                workers=2, chain="auto", block_time=1.0, data_dir=Path(tmp), gateway=False
            )
        )
        devnet.start()
        try:
            with Client.connect(devnet.network, allow_insecure_dev_tee=True) as client:
                agent = client.deploy(examples_dir() / "counter.py", init={"start": 1})
                consumer = client.deploy_consumer(agent.id, ttl=100)
                samples = []
                for _ in range(rounds):
                    began = time.monotonic()
                    request_id = client.consumer_request(consumer, {"pair": "ETH/USD"})
                    wanted = "0x" + request_id.hex()
                    while not any(
                        r["request_id"] == wanted and r["status"] == "fulfilled"
                        for r in client.consumer_requests(consumer)
                    ):
                        if time.monotonic() - began > 120:
                            raise RuntimeError("no result within 120 s")
                        time.sleep(0.1)
                    samples.append(time.monotonic() - began)
        finally:
            devnet.stop()
    return round(statistics.median(samples), 2)


@benchmark("rollup")
def _bench(quick: bool) -> dict[str, Any]:
    rounds = 3 if quick else 10
    figures: dict[str, Any] = {
        **_measure(rounds, None),
        # a devnet takes ~10 s to start: the quick run (tests) leaves it out
        "request_to_fulfill_s": None if quick else _request_to_fulfill_s(5),
    }
    if find_solc() is not None:
        solidity = _measure(rounds, bytes(compile_solidity("VeilConsumer")["bytecode"]))
        figures.update({f"{name}_solidity": value for name, value in solidity.items()})
    return {
        "figures": figures,
        "params": {
            "chain": "embedded (py-evm, cancun)",
            "result_bytes": len(_RESULT),
            "rounds": rounds,
            "gas": "whole transactions (figures *_solidity: the Solidity twin, solc 0.8.28 "
            "with the optimizer, when solc-js is installed): VeilConsumer.request (its Bus.request call and "
            "JobRequested log included); VeilConsumer.fulfill (ecrecover, the Bus's signer "
            "check, the one storage write and the result's log); fulfill_batch of 10 divided "
            "by 10. request_to_fulfill_s: median of 5 requests on a two-worker devnet (anvil "
            "where installed, 1 s blocks, finality 2): request mined, both workers run job, "
            "the first result lands; None in the quick run.",
            "targets": "fulfill <= 52,000 gas, batched <= 26,000 per result (issue #19)",
        },
    }
