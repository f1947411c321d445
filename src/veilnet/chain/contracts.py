"""Thin ABI handles and a transaction sender: eth-abi encodes, eth-account signs, our client sends.
No web3: a call is a selector plus encoded arguments, a transaction is a signed raw blob."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode

from veilnet.chain.artifacts import Artifact, load_artifact
from veilnet.chain.constants import GAS_MARGIN_PERCENT, PRIORITY_FEE_WEI
from veilnet.chain.errors import ContractReverted, RPCError, RPCUnavailable
from veilnet.chain.rpc import JSONRPCClient, from_hex, from_quantity, to_hex
from veilnet.crypto import Address, TransactionSigner, keccak

__all__ = [
    "ContractHandle",
    "Receipt",
    "TxSender",
    "estimate_gas",
    "fee_caps",
    "function_abi",
    "pending_nonce",
    "wait_for_receipt",
]


def _canonical_type(entry: dict[str, Any]) -> str:
    if entry["type"] == "tuple":
        return "(" + ",".join(_canonical_type(c) for c in entry["components"]) + ")"
    return str(entry["type"])


def function_abi(artifact: Artifact, name: str) -> tuple[bytes, list[str], list[str]]:
    """(selector, input types, output types) of the first function called ``name``."""
    for entry in artifact.abi:
        if entry.get("type") == "function" and entry.get("name") == name:
            inputs = [_canonical_type(i) for i in entry["inputs"]]
            outputs = [_canonical_type(o) for o in entry.get("outputs", [])]
            selector = keccak(f"{name}({','.join(inputs)})".encode())[:4]
            return selector, inputs, outputs
    raise KeyError(f"{artifact.name} has no function {name}")


@dataclass(frozen=True, slots=True)
class Receipt:
    """The parts of a transaction receipt callers need."""

    tx_hash: bytes
    block_number: int
    status: int
    gas_used: int
    contract_address: Address | None
    logs: tuple[dict[str, Any], ...]


class ContractHandle:
    """Encodes calls to, and decodes results from, one deployed Veilnet contract."""

    def __init__(self, name: str, address: Address) -> None:
        self.artifact = load_artifact(name)
        self.address = address
        self._cache: dict[str, tuple[bytes, list[str], list[str]]] = {}

    def _abi(self, fn: str) -> tuple[bytes, list[str], list[str]]:
        found = self._cache.get(fn)
        if found is None:
            found = self._cache[fn] = function_abi(self.artifact, fn)
        return found

    def encode(self, fn: str, *args: Any) -> bytes:
        selector, inputs, _ = self._abi(fn)
        values = [a.hex if isinstance(a, Address) else a for a in args]
        return selector + abi_encode(inputs, values)

    def decode(self, fn: str, output: bytes) -> Any:
        _, _, outputs = self._abi(fn)
        values = abi_decode(outputs, output)
        return values[0] if len(values) == 1 else values

    def call(self, client: JSONRPCClient, fn: str, *args: Any, block: str = "latest") -> Any:
        """eth_call; raises ContractReverted with the contract's reason."""
        data = self.encode(fn, *args)
        raw = client.call("eth_call", {"to": self.address.hex, "data": to_hex(data)}, block)
        return self.decode(fn, from_hex(raw))


def fee_caps(client: JSONRPCClient) -> tuple[int, int]:
    """(maxFeePerGas, maxPriorityFeePerGas): twice the latest base fee plus a fixed tip."""
    block = client.call("eth_getBlockByNumber", "latest", False)
    base = from_quantity(block.get("baseFeePerGas") or "0x0")
    return base * 2 + PRIORITY_FEE_WEI, PRIORITY_FEE_WEI


def pending_nonce(client: JSONRPCClient, address: Address) -> int:
    """The next nonce of ``address``, counting transactions still in the pool."""
    return from_quantity(client.call("eth_getTransactionCount", address.hex, "pending"))


def estimate_gas(
    client: JSONRPCClient, sender: Address, to: Address | None, data: bytes, *, value: int = 0
) -> int:
    """The node's gas estimate plus ``GAS_MARGIN_PERCENT``.

    Raises:
        ContractReverted: the transaction would revert (with the contract's reason).
        RPCError: the node could not estimate it.
    """
    tx: dict[str, Any] = {"from": sender.hex, "data": to_hex(data), "value": hex(value)}
    if to is not None:
        tx["to"] = to.hex
    gas = from_quantity(client.call("eth_estimateGas", tx))
    return gas + gas * GAS_MARGIN_PERCENT // 100


def wait_for_receipt(
    client: JSONRPCClient,
    tx_hash: bytes,
    *,
    timeout: float = 60.0,
    poll: float = 0.05,
    stop: threading.Event | None = None,
) -> Receipt:
    """Wait for the receipt of ``tx_hash`` (mining it is the chain's job).

    Raises:
        RPCUnavailable: not mined within ``timeout`` seconds, or ``stop`` was set meanwhile.
    """
    deadline = time.monotonic() + timeout
    while True:
        doc = client.call("eth_getTransactionReceipt", to_hex(tx_hash))
        if doc is not None:
            return _receipt(doc)
        if time.monotonic() > deadline:
            raise RPCUnavailable("transaction not mined in time", tx_hash=to_hex(tx_hash))
        if stop is None:
            time.sleep(poll)
        elif stop.wait(poll):
            raise RPCUnavailable("stopped waiting for the transaction", tx_hash=to_hex(tx_hash))


class TxSender:
    """Signs and sends transactions from one funded account, managing its nonce and fees.

    Thread-safe. ``send`` estimates gas (so reverts surface as ContractReverted with the
    reason, before anything is broadcast) unless ``gas`` is given.
    """

    def __init__(self, client: JSONRPCClient, private_key: bytes, *, chain_id: int) -> None:
        self.client = client
        self._signer = TransactionSigner(private_key)
        self.address = self._signer.address
        self.chain_id = chain_id
        self._lock = threading.Lock()
        self._nonce: int | None = None
        self._fee: tuple[int, int] | None = None

    def fees(self) -> tuple[int, int]:
        """(maxFeePerGas, maxPriorityFeePerGas), read once (see ``fee_caps``)."""
        if self._fee is None:
            self._fee = fee_caps(self.client)
        return self._fee

    def reset_nonce(self) -> None:
        with self._lock:
            self._nonce = None
            self._fee = None

    def next_nonce(self) -> int:
        with self._lock:
            if self._nonce is None:
                self._nonce = pending_nonce(self.client, self.address)
            nonce = self._nonce
            self._nonce += 1
            return nonce

    def estimate(self, to: Address | None, data: bytes, value: int = 0) -> int:
        return estimate_gas(self.client, self.address, to, data, value=value)

    def sign(
        self, to: Address | None, data: bytes, *, gas: int, nonce: int, value: int = 0
    ) -> tuple[bytes, bytes]:
        """(raw transaction, tx hash) of an EIP-1559 transaction."""
        max_fee, tip = self.fees()
        return self._signer.sign_eip1559(
            chain_id=self.chain_id,
            nonce=nonce,
            to=to,
            value=value,
            data=data,
            gas=gas,
            max_fee_per_gas=max_fee,
            max_priority_fee_per_gas=tip,
        )

    def send(
        self, to: Address | None, data: bytes, *, gas: int | None = None, value: int = 0
    ) -> bytes:
        """Broadcast one transaction; returns its hash. Raises ContractReverted on estimate."""
        if gas is None:
            gas = self.estimate(to, data, value)
        raw, tx_hash = self.sign(to, data, gas=gas, nonce=self.next_nonce(), value=value)
        try:
            self.client.call("eth_sendRawTransaction", to_hex(raw))
        except (RPCError, RPCUnavailable):
            self.reset_nonce()
            raise
        return tx_hash

    def send_many(
        self, items: Sequence[tuple[Address | None, bytes, int]], *, value: int = 0
    ) -> list[bytes]:
        """Sign many (to, data, gas) transactions and broadcast them in one batched request."""
        signed = [
            self.sign(to, data, gas=gas, nonce=self.next_nonce(), value=value)
            for to, data, gas in items
        ]
        results = self.client.batch_settled(
            [("eth_sendRawTransaction", [to_hex(raw)]) for raw, _ in signed]
        )
        for item in results:
            if isinstance(item, Exception):
                self.reset_nonce()
                raise item
        return [tx_hash for _, tx_hash in signed]

    def wait(self, tx_hash: bytes, *, timeout: float = 60.0, poll: float = 0.05) -> Receipt:
        """Wait for the receipt; raises RPCUnavailable on timeout."""
        return wait_for_receipt(self.client, tx_hash, timeout=timeout, poll=poll)

    def transact(
        self, to: Address | None, data: bytes, *, gas: int | None = None, value: int = 0
    ) -> Receipt:
        """send + wait; a mined but failed transaction raises ContractReverted."""
        receipt = self.wait(self.send(to, data, gas=gas, value=value))
        if receipt.status != 1:
            raise ContractReverted("transaction reverted on chain", reason="reverted")
        return receipt


def _receipt(doc: dict[str, Any]) -> Receipt:
    contract = doc.get("contractAddress")
    return Receipt(
        tx_hash=from_hex(doc["transactionHash"]),
        block_number=from_quantity(doc["blockNumber"]),
        status=from_quantity(doc["status"]),
        gas_used=from_quantity(doc["gasUsed"]),
        contract_address=Address.parse(contract) if contract else None,
        logs=tuple(doc["logs"]),
    )
