"""``veil bench rollup``: what an EVM contract pays to ask an agent for work and to take its
signed results (``Bus.request``, ``VeilConsumer.fulfill`` alone and ten in a batch)."""

from __future__ import annotations

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


@benchmark("rollup")
def _bench(quick: bool) -> dict[str, Any]:
    rounds = 3 if quick else 10
    figures: dict[str, Any] = {**_measure(rounds, None), "request_to_fulfill_s": None}
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
            "by 10. request_to_fulfill_s: not measured yet (None): it needs a worker network in "
            "this bench; tests/worker/test_worker_network.py runs the whole path.",
            "targets": "fulfill <= 52,000 gas, batched <= 26,000 per result (issue #19)",
        },
    }
