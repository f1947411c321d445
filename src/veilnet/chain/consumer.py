"""``VeilConsumer.vy``: deploy an EVM consumer of one agent, ask it for work, deliver and
expire results; and the two consumers built on it, ``PriceFeed.vy`` and ``Escrow.vy``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eth_abi.abi import encode as abi_encode

from veilnet.chain.artifacts import load_artifact
from veilnet.chain.contracts import ContractHandle, Receipt, TxSender
from veilnet.chain.deploy import Network
from veilnet.chain.errors import ChainNotReady
from veilnet.crypto import Address, keccak

__all__ = [
    "Consumer",
    "Escrow",
    "PriceFeed",
    "deploy_consumer",
    "deploy_escrow",
    "deploy_price_feed",
]

PENDING_BOUND = 2**64
"""``VeilConsumer.state`` below this is a waiting request's deadline, above it a result hash."""


def deploy_consumer(
    network: Network,
    sender: TxSender,
    agent: bytes,
    *,
    ttl: int,
    bytecode: bytes | None = None,
) -> Consumer:
    """Deploy a consumer of ``agent`` whose requests wait ``ttl`` blocks for their result:
    ``VeilConsumer.vy``, or ``bytecode`` of a contract with its ABI (the Solidity twin,
    ``veilnet.chain.solidity.compile_solidity("VeilConsumer")``, or a DApp that inherits it).

    Raises:
        ContractReverted / ChainNotReady: the deployment failed.
    """
    code = (bytecode or load_artifact("VeilConsumer").bytecode) + abi_encode(
        ["address", "bytes32", "uint256"], [network.addresses.bus.hex, agent, ttl]
    )
    receipt = sender.transact(None, code)
    if receipt.contract_address is None:
        raise ChainNotReady("VeilConsumer deployment produced no contract")
    return Consumer(network, receipt.contract_address)


@dataclass(frozen=True, slots=True)
class Consumer:
    """A deployed ``VeilConsumer``."""

    network: Network
    address: Address
    artifact: str = "VeilConsumer"

    @property
    def handle(self) -> ContractHandle:
        return ContractHandle(self.artifact, self.address)

    def request(self, sender: TxSender, payload: bytes, *, value: int = 0) -> tuple[bytes, Receipt]:
        """Ask the agent for work; returns the request id (from the Bus's ``JobRequested``)."""
        before = int(self.network.bus.call(self.network.client, "request_nonce", self.address))
        receipt = sender.transact(self.address, self.handle.encode("request", payload), value=value)
        return self.request_id(before), receipt

    def request_id(self, nonce: int) -> bytes:
        """The id of this consumer's request number ``nonce`` (the Bus derives it)."""
        addresses = self.network.addresses
        return keccak(
            abi_encode(
                ["uint256", "address", "address", "uint64"],
                [addresses.chain_id, addresses.bus.hex, self.address.hex, nonce],
            )
        )

    def fulfill(
        self, sender: TxSender, request_id: bytes, result: bytes, signature: bytes
    ) -> Receipt:
        data = self.handle.encode("fulfill", request_id, result, signature)
        return sender.transact(self.address, data)

    def fulfill_batch(
        self, sender: TxSender, items: Sequence[tuple[bytes, bytes, bytes]]
    ) -> Receipt:
        """Up to ten (request id, result of at most 1 KiB, signature) in one transaction."""
        ids, results, signatures = ([item[i] for item in items] for i in range(3))
        data = self.handle.encode("fulfill_batch", ids, results, signatures)
        return sender.transact(self.address, data)

    def fulfill_tick(
        self, sender: TxSender, schedule_id: int, height: int, result: bytes, signature: bytes
    ) -> Receipt:
        data = self.handle.encode("fulfill_tick", schedule_id, height, result, signature)
        return sender.transact(self.address, data)

    def tick_id(self, schedule_id: int, height: int) -> bytes:
        """The request id of a standing job's tick (what its result is signed for)."""
        addresses = self.network.addresses
        return keccak(
            abi_encode(
                ["uint256", "address", "uint256", "uint256"],
                [addresses.chain_id, addresses.bus.hex, schedule_id, height],
            )
        )

    def expire(self, sender: TxSender, request_id: bytes) -> Receipt:
        return sender.transact(self.address, self.handle.encode("expire", request_id))

    def state(self, request_id: bytes) -> bytes:
        """The request's slot: its deadline while it waits, its result's keccak256 after."""
        return bytes(self.handle.call(self.network.client, "state", request_id))

    def waiting(self, request_id: bytes) -> bool:
        value = int.from_bytes(self.state(request_id), "big")
        return 0 < value < PENDING_BOUND


def _deploy(
    network: Network,
    sender: TxSender,
    artifact: str,
    types: list[str],
    args: list[object],
    *,
    value: int = 0,
) -> Address:
    code = load_artifact(artifact).bytecode + abi_encode(types, args)
    receipt = sender.transact(None, code, value=value)
    if receipt.contract_address is None:
        raise ChainNotReady(f"{artifact} deployment produced no contract")
    return receipt.contract_address


@dataclass(frozen=True, slots=True)
class PriceFeed(Consumer):
    """A deployed ``PriceFeed``: a consumer whose ticks carry a price."""

    artifact: str = "PriceFeed"

    def latest(self) -> tuple[int, int]:
        """(price in 6-decimal fixed point, block height of its tick); (0, 0) before any."""
        price, height = self.handle.call(self.network.client, "latest")
        return int(price), int(height)


def deploy_price_feed(network: Network, sender: TxSender, agent: bytes, *, ttl: int) -> PriceFeed:
    """Deploy a ``PriceFeed`` fed by ``agent``'s standing jobs."""
    address = _deploy(
        network,
        sender,
        "PriceFeed",
        ["address", "bytes32", "uint256"],
        [network.addresses.bus.hex, agent, ttl],
    )
    return PriceFeed(network, address)


@dataclass(frozen=True, slots=True)
class Escrow(Consumer):
    """A deployed ``Escrow``: funds a judge agent's signed ruling pays out."""

    artifact: str = "Escrow"

    def ask_judge(self, sender: TxSender, claim: bytes) -> bytes:
        """Open the dispute (a party only); returns its request id."""
        before = int(self.network.bus.call(self.network.client, "request_nonce", self.address))
        sender.transact(self.address, self.handle.encode("ask_judge", claim))
        return self.request_id(before)

    def release(self, sender: TxSender) -> Receipt:
        return sender.transact(self.address, self.handle.encode("release"))

    def view(self, name: str) -> object:
        """A public field: ``buyer``, ``seller``, ``dispute``, ``settled``."""
        return self.handle.call(self.network.client, name)


def deploy_escrow(
    network: Network, buyer: TxSender, agent: bytes, *, seller: Address, ttl: int, value: int
) -> Escrow:
    """The buyer deploys an ``Escrow`` of ``value`` wei for ``seller``, judged by ``agent``."""
    address = _deploy(
        network,
        buyer,
        "Escrow",
        ["address", "bytes32", "uint256", "address"],
        [network.addresses.bus.hex, agent, ttl, seller.hex],
        value=value,
    )
    return Escrow(network, address)
