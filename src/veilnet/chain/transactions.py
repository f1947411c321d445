"""Transactions signed outside this process: built here unsigned, signed by their key's holder
(the enclave core signs its identity's ``register_worker``), then broadcast and awaited here."""

from __future__ import annotations

import threading
from typing import Any

from veilnet.chain.contracts import (
    Receipt,
    estimate_gas,
    fee_caps,
    pending_nonce,
    wait_for_receipt,
)
from veilnet.chain.deploy import Network
from veilnet.chain.errors import ContractReverted, RPCError
from veilnet.chain.rpc import JSONRPCClient, from_hex, from_quantity, to_hex
from veilnet.crypto import Address
from veilnet.protocol.registration import RegistrationRequest

__all__ = [
    "balance_of",
    "register_worker_transaction",
    "send_raw_transaction",
    "transaction_cost",
]


def register_worker_transaction(
    network: Network, request: RegistrationRequest, *, fallback_gas: int, reattest: bool = False
) -> dict[str, Any]:
    """The unsigned EIP-1559 ``Registry.register_worker`` transaction from ``request.worker``
    (with ``reattest``: its ``Registry.reattest_worker`` with the request's fresh quote),
    carrying the ``registration_deposit`` governance set (refunded to the operator on
    endorsement: ``Network.claim_refund``).

    Gas is the node's estimate plus margin, or ``fallback_gas`` when the node cannot estimate
    (some nodes refuse large calldata such as a quote); the nonce counts pending transactions.

    Raises:
        ContractReverted: the estimate shows the Registry would refuse it (``reason`` says why).
        RPCUnavailable: the node could not be reached.
    """
    identity = Address(request.worker)
    registry = network.addresses.registry
    data = (
        network.registry.encode(
            "reattest_worker", request.quote, request.collateral_hash, request.attested_block
        )
        if reattest
        else network.registry.encode(
            "register_worker",
            Address(request.operator),
            request.hpke_key,
            request.tee_kind,
            request.measurement,
            request.quote,
            request.collateral_hash,
            request.attested_block,
            request.api_url,
        )
    )
    deposit = int(network.registry.call(network.client, "registration_deposit"))
    try:
        gas = estimate_gas(network.client, identity, registry, data, value=deposit)
    except RPCError:
        gas = fallback_gas
    max_fee, tip = fee_caps(network.client)
    return {
        "chainId": network.addresses.chain_id,
        "nonce": pending_nonce(network.client, identity),
        "to": registry.hex,
        "value": deposit,
        "data": data,
        "gas": gas,
        "maxFeePerGas": max_fee,
        "maxPriorityFeePerGas": tip,
    }


def transaction_cost(transaction: dict[str, Any]) -> int:
    """The most wei ``transaction`` can cost its sender: value plus gas at the fee cap."""
    gas, max_fee = int(transaction["gas"]), int(transaction["maxFeePerGas"])
    return int(transaction.get("value", 0)) + gas * max_fee


def balance_of(client: JSONRPCClient, address: Address) -> int:
    """The latest balance of ``address`` in wei."""
    return from_quantity(client.call("eth_getBalance", address.hex, "latest"))


def send_raw_transaction(
    client: JSONRPCClient,
    raw: bytes,
    *,
    timeout: float,
    stop: threading.Event | None = None,
) -> Receipt:
    """Broadcast a signed transaction and wait until it is mined.

    Raises:
        ContractReverted: it was mined but failed (or the node refused it as reverting).
        RPCUnavailable: the node could not be reached, or the transaction was not mined within
            ``timeout`` seconds or before ``stop`` was set.
        RPCError: the node refused the transaction.
    """
    tx_hash = client.call("eth_sendRawTransaction", to_hex(raw))
    receipt = wait_for_receipt(client, from_hex(tx_hash), timeout=timeout, stop=stop)
    if receipt.status != 1:
        raise ContractReverted("transaction reverted on chain", reason="reverted")
    return receipt
