"""Transactions signed outside the host: the unsigned register_worker transaction, signed here
with eth-account as the enclave core would, then broadcast and awaited; failures as chain errors."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from eth_account import Account

from veilnet.chain import ContractReverted, JSONRPCClient, Network, RPCUnavailable
from veilnet.chain.constants import KIND_NONE, KIND_WORKER
from veilnet.chain.contracts import wait_for_receipt
from veilnet.chain.rpc import Transport
from veilnet.chain.transactions import (
    balance_of,
    register_worker_transaction,
    send_raw_transaction,
    transaction_cost,
)
from veilnet.crypto import SecretKey
from veilnet.protocol.registration import RegistrationRequest, TEEKind

from .conftest import MEASUREMENT, Net, key

FALLBACK_GAS = 1_500_000


def _request(
    net: Net, worker: SecretKey, *, measurement: bytes = MEASUREMENT
) -> RegistrationRequest:
    return RegistrationRequest(
        worker=worker.address.raw,
        operator=net.relayer.address.raw,
        hpke_key=worker.public.x25519,
        tee_kind=TEEKind.TDX,
        measurement=measurement,
        quote=b"quote",
        collateral=b"{}",
        collateral_hash=b"\x07" * 32,
        attested_block=int(net.network.client.call("eth_blockNumber"), 16),
    )


def _sign(worker: SecretKey, tx: dict[str, Any]) -> bytes:
    return bytes(Account.sign_transaction(tx, worker._private_scalar()).raw_transaction)


def _fund(net: Net, worker: SecretKey) -> None:
    net.relayer.transact(worker.address, b"", value=10**18, gas=21_000)


def test_register_worker_signed_elsewhere_registers_the_identity(net: Net) -> None:
    worker = key("tx-worker")
    _fund(net, worker)
    tx = register_worker_transaction(net.network, _request(net, worker), fallback_gas=FALLBACK_GAS)
    addresses = net.deployment.addresses
    assert tx["to"] == addresses.registry.hex and tx["chainId"] == addresses.chain_id
    assert tx["nonce"] == 0 and tx["value"] == 0
    assert 0 < tx["gas"] < FALLBACK_GAS and tx["maxFeePerGas"] >= tx["maxPriorityFeePerGas"]
    assert transaction_cost(tx) == tx["gas"] * tx["maxFeePerGas"]
    before = balance_of(net.network.client, worker.address)
    assert before == 10**18
    receipt = send_raw_transaction(net.network.client, _sign(worker, tx), timeout=30)
    assert receipt.status == 1
    assert net.network.origin_kind(worker.address) == KIND_WORKER
    assert before - transaction_cost(tx) <= balance_of(net.network.client, worker.address) < before
    again = register_worker_transaction(
        net.network, _request(net, worker), fallback_gas=FALLBACK_GAS
    )
    assert again["nonce"] == 1


def test_a_refused_registration_reverts_at_the_estimate(net: Net) -> None:
    worker = key("tx-unknown-measurement")
    _fund(net, worker)
    with pytest.raises(ContractReverted) as caught:
        register_worker_transaction(
            net.network, _request(net, worker, measurement=b"\x13" * 32), fallback_gas=1
        )
    assert caught.value.reason
    assert net.network.origin_kind(worker.address) == KIND_NONE


def test_a_transaction_failing_on_chain_raises_contract_reverted(net: Net) -> None:
    worker = key("tx-out-of-gas")
    _fund(net, worker)
    tx = register_worker_transaction(net.network, _request(net, worker), fallback_gas=FALLBACK_GAS)
    starved = tx | {"gas": 60_000}  # enough to be mined, too little to register
    with pytest.raises(ContractReverted):
        send_raw_transaction(net.network.client, _sign(worker, starved), timeout=30)
    assert net.network.origin_kind(worker.address) == KIND_NONE


class _NoEstimates:
    """Passes every call through, but answers ``eth_estimateGas`` with a node error."""

    def __init__(self, inner: Transport) -> None:
        self._inner = inner

    def request(self, body: Any) -> Any:
        if isinstance(body, dict) and body["method"] == "eth_estimateGas":
            return {"jsonrpc": "2.0", "id": body["id"], "error": {"code": -32000, "message": "no"}}
        return self._inner.request(body)

    def close(self) -> None:
        return None


def test_the_fallback_gas_is_used_when_the_node_cannot_estimate(net: Net) -> None:
    worker = key("tx-fallback")
    client = JSONRPCClient(_NoEstimates(net.network.client.transport))
    network = Network(client, net.deployment.addresses)
    tx = register_worker_transaction(network, _request(net, worker), fallback_gas=FALLBACK_GAS)
    assert tx["gas"] == FALLBACK_GAS


def test_waiting_for_a_receipt_gives_up_on_timeout_and_on_stop(net: Net) -> None:
    unknown = b"\x99" * 32
    with pytest.raises(RPCUnavailable, match="not mined in time"):
        wait_for_receipt(net.network.client, unknown, timeout=-1.0)
    stop = threading.Event()
    stop.set()
    with pytest.raises(RPCUnavailable, match="stopped waiting"):
        wait_for_receipt(net.network.client, unknown, timeout=3600.0, stop=stop)


def test_the_cores_calldata_is_the_registry_abi(net: Net) -> None:
    """The enclave core encodes ``register_worker`` itself; it must equal the contract's ABI."""
    from veilnet.protocol.registration import register_worker_calldata

    request = _request(net, key("calldata-worker"))
    expected = register_worker_transaction(net.network, request, fallback_gas=FALLBACK_GAS)
    assert register_worker_calldata(request) == expected["data"]
