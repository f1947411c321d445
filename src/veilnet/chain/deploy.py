"""Genesis of a fresh network (Registry + Bus) and typed helpers for every Registry/Bus action.
Each helper sends one transaction from a ``TxSender``; reverts surface as ContractReverted."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import encode as abi_encode

from veilnet.chain.artifacts import load_artifact
from veilnet.chain.constants import DEFAULT_MAX_PAYLOAD, POST_BASE_GAS, ROUTED_TOPICS
from veilnet.chain.contracts import ContractHandle, Receipt, TxSender
from veilnet.chain.errors import ChainNotReady, EventDecodeError
from veilnet.chain.model import (
    ChainAddresses,
    ClusterKeySet,
    ContractKeySet,
    RawLog,
    decode_log,
    event_topic,
)
from veilnet.chain.rpc import JSONRPCClient, from_quantity
from veilnet.crypto import Address, keccak
from veilnet.protocol.egress import EgressMessage

__all__ = ["Deployment", "Network", "deploy"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Deployment:
    """A deployed network: contract addresses, governance and the block to follow from."""

    addresses: ChainAddresses
    admin: Address
    genesis_block: int

    def to_json(self) -> dict[str, Any]:
        return {
            **self.addresses.to_json(),
            "admin": self.admin.hex,
            "genesis_block": self.genesis_block,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Deployment:
        return cls(
            addresses=ChainAddresses.from_json(doc),
            admin=Address.parse(doc["admin"]),
            genesis_block=int(doc["genesis_block"]),
        )


def deploy(
    client: JSONRPCClient,
    admin_key: bytes,
    *,
    measurements: Iterable[bytes] = (),
    max_payload: int = DEFAULT_MAX_PAYLOAD,
) -> Deployment:
    """Deploy Registry and Bus, link them, allow ``measurements``; the deployer is governance.

    Raises:
        ContractReverted / RPCError / RPCUnavailable: a genesis transaction failed.
    """
    chain_id = from_quantity(client.call("eth_chainId"))
    sender = TxSender(client, admin_key, chain_id=chain_id)
    registry_receipt = sender.transact(None, load_artifact("Registry").bytecode)
    if registry_receipt.contract_address is None:
        raise ChainNotReady("Registry deployment produced no contract")
    registry = registry_receipt.contract_address
    bus_code = load_artifact("Bus").bytecode + abi_encode(
        ["address", "uint256"], [registry.hex, max_payload]
    )
    bus_receipt = sender.transact(None, bus_code)
    if bus_receipt.contract_address is None:
        raise ChainNotReady("Bus deployment produced no contract")
    addresses = ChainAddresses(
        chain_id=chain_id, registry=registry, bus=bus_receipt.contract_address
    )
    network = Network(client, addresses)
    network.set_bus(sender)
    for measurement in measurements:
        network.set_measurement(sender, measurement, True)
    return Deployment(
        addresses=addresses, admin=sender.address, genesis_block=registry_receipt.block_number
    )


class Network:
    """Typed calls into a deployed network's Registry and Bus."""

    def __init__(self, client: JSONRPCClient, addresses: ChainAddresses) -> None:
        self.client = client
        self.addresses = addresses
        self.registry = ContractHandle("Registry", addresses.registry)
        self.bus = ContractHandle("Bus", addresses.bus)

    def sender(self, private_key: bytes) -> TxSender:
        return TxSender(self.client, private_key, chain_id=self.addresses.chain_id)

    def _registry_tx(self, sender: TxSender, fn: str, *args: Any, value: int = 0) -> Receipt:
        return sender.transact(self.registry.address, self.registry.encode(fn, *args), value=value)

    def _bus_tx(self, sender: TxSender, fn: str, *args: Any) -> Receipt:
        return sender.transact(self.bus.address, self.bus.encode(fn, *args))

    # governance
    def set_bus(self, sender: TxSender) -> Receipt:
        return self._registry_tx(sender, "set_bus", self.addresses.bus)

    def set_measurement(self, sender: TxSender, measurement: bytes, allowed: bool) -> Receipt:
        return self._registry_tx(sender, "set_measurement", measurement, allowed)

    def add_gatekeeper(self, sender: TxSender, gatekeeper: Address) -> Receipt:
        return self._registry_tx(sender, "add_gatekeeper", gatekeeper)

    def remove_gatekeeper(self, sender: TxSender, gatekeeper: Address) -> Receipt:
        return self._registry_tx(sender, "remove_gatekeeper", gatekeeper)

    def lock_rotation(self, sender: TxSender) -> Receipt:
        return self._registry_tx(sender, "lock_rotation")

    def set_rotation_interval(self, sender: TxSender, blocks: int) -> Receipt:
        """Governance: after ``blocks`` of one master key anyone may lock its rotation."""
        return self._registry_tx(sender, "set_rotation_interval", blocks)

    def abort_rotation(self, sender: TxSender) -> Receipt:
        return self._registry_tx(sender, "abort_rotation")

    def create_cluster(
        self, sender: TxSender, cluster_id: bytes, owner: Address, *, suite: int = 1
    ) -> Receipt:
        """``suite``: 1 X25519 keys, 2 post-quantum hybrid ML-KEM-768 + X25519 keys."""
        return self._registry_tx(sender, "create_cluster", cluster_id, owner, suite)

    def set_bus_params(
        self, sender: TxSender, *, max_payload: int, command_fee: int, fee_hook: Address | None
    ) -> Receipt:
        hook = fee_hook.hex if fee_hook is not None else "0x" + "00" * 20
        data = self.bus.encode("set_params", max_payload, command_fee, hook)
        return sender.transact(self.bus.address, data)

    # workers and clusters
    def register_worker(
        self,
        sender: TxSender,
        *,
        operator: Address,
        hpke_key: bytes,
        tee_kind: int,
        measurement: bytes,
        quote: bytes,
        collateral_hash: bytes,
        attested_block: int | None = None,
        deposit: int = 0,
        api_url: str = "",
    ) -> Receipt:
        """Sent by the worker identity itself (``sender`` holds the worker's key);
        ``attested_block`` (default: the node's head) is the block the quote binds;
        ``deposit``: the wei sent along (``registration_deposit``); ``api_url``: where it
        serves (published in ``WorkerRegistered``)."""
        if attested_block is None:
            attested_block = int(self.client.call("eth_blockNumber"), 16)
        return self._registry_tx(
            sender,
            "register_worker",
            operator,
            hpke_key,
            tee_kind,
            measurement,
            quote,
            collateral_hash,
            attested_block,
            api_url,
            value=deposit,
        )

    def add_cluster_worker(self, sender: TxSender, cluster_id: bytes, worker: Address) -> Receipt:
        return self._registry_tx(sender, "add_cluster_worker", cluster_id, worker)

    def remove_cluster_worker(
        self, sender: TxSender, cluster_id: bytes, worker: Address
    ) -> Receipt:
        return self._registry_tx(sender, "remove_cluster_worker", cluster_id, worker)

    def evict(self, sender: TxSender, worker: Address) -> Receipt:
        """Anyone: take a worker that is no longer eligible out of its cluster and the
        gatekeeper set (``Registry.evict``)."""
        return self._registry_tx(sender, "evict", worker)

    # registration deposits
    def set_registration_deposit(self, sender: TxSender, amount: int) -> Receipt:
        """Governance: what each registration or re-attestation pays (wei)."""
        return self._registry_tx(sender, "set_registration_deposit", amount)

    def claim_refund(self, sender: TxSender) -> Receipt:
        """An operator takes the deposits of its endorsed (or never judged) registrations."""
        return self._registry_tx(sender, "claim_refund")

    def reclaim_deposit(self, sender: TxSender, worker: Address) -> Receipt:
        """Anyone: a deposit nobody judged within the window goes back to the operator."""
        return self._registry_tx(sender, "reclaim_deposit", worker)

    def withdraw_forfeited(self, sender: TxSender, to: Address) -> Receipt:
        """Governance: the deposits of refused registrations."""
        return self._registry_tx(sender, "withdraw_forfeited", to)

    # agent contracts (they live in the Bus)
    def contract_id_for(self, owner: Address, salt: bytes) -> bytes:
        return bytes(self.bus.call(self.client, "contract_id_for", owner, salt))

    def set_deploy_policy(
        self, sender: TxSender, cluster_id: bytes, deployer: Address | None, allowed: bool
    ) -> Receipt:
        """The cluster owner: ``deployer`` None opens (``allowed``) or closes the cluster;
        an address is allowed or refused while it is closed."""
        who = deployer.hex if deployer is not None else "0x" + "00" * 20
        return self._bus_tx(sender, "set_deploy_policy", cluster_id, who, allowed)

    def deploy_contract(
        self,
        sender: TxSender,
        *,
        salt: bytes,
        cluster_id: bytes,
        code: bytes,
        init_args: bytes = b"",
        controller: Address | None = None,
    ) -> bytes:
        """Deploy an agent; returns its contract id."""
        ctrl = controller.hex if controller is not None else "0x" + "00" * 20
        self._bus_tx(sender, "deploy_contract", salt, cluster_id, ctrl, code, init_args)
        return self.contract_id_for(sender.address, salt)

    def set_paused(self, sender: TxSender, contract_id: bytes, paused: bool) -> Receipt:
        return self._bus_tx(sender, "set_paused", contract_id, paused)

    def upgrade_contract(self, sender: TxSender, contract_id: bytes, code: bytes) -> Receipt:
        return self._bus_tx(sender, "upgrade_contract", contract_id, code)

    def transfer_contract(
        self, sender: TxSender, contract_id: bytes, new_owner: Address
    ) -> Receipt:
        return self._bus_tx(sender, "transfer_contract", contract_id, new_owner)

    def accept_contract(self, sender: TxSender, contract_id: bytes) -> Receipt:
        """The second step of ``transfer_contract``, by the new owner."""
        return self._bus_tx(sender, "accept_contract", contract_id)

    def schedule(
        self, sender: TxSender, contract_id: bytes, consumer: Address, every: int, payload: bytes
    ) -> int:
        """The agent's owner: a standing job every ``every`` blocks, its results delivered to
        ``consumer``; returns the schedule id."""
        self._bus_tx(sender, "schedule", contract_id, consumer, every, payload)
        return int(self.bus.call(self.client, "schedule_count"))

    def cancel_schedule(self, sender: TxSender, schedule_id: int) -> Receipt:
        return self._bus_tx(sender, "cancel_schedule", schedule_id)

    def set_controller(self, sender: TxSender, contract_id: bytes, controller: Address) -> Receipt:
        return self._bus_tx(sender, "set_controller", contract_id, controller)

    # bus
    def push_command(
        self, sender: TxSender, contract_id: bytes, payload: bytes, *, value: int = 0
    ) -> Receipt:
        data = self.bus.encode("push_command", contract_id, payload)
        return sender.transact(self.bus.address, data, value=value)

    def push_commands(
        self, sender: TxSender, contract_id: bytes, payloads: list[bytes], *, value: int = 0
    ) -> Receipt:
        data = self.bus.encode("push_commands", contract_id, payloads)
        return sender.transact(self.bus.address, data, value=value)

    def post_data(self, message: EgressMessage) -> bytes:
        return self.bus.encode(
            "post", message.origin, message.seq, message.topic, message.payload, message.signature
        )

    def post_gas(self, message: EgressMessage) -> int | None:
        """Routed topics get a fixed generous limit (the Bus demands gas for the Registry)."""
        return POST_BASE_GAS + 16 * len(message.payload) if message.topic in ROUTED_TOPICS else None

    def post(self, sender: TxSender, message: EgressMessage) -> Receipt:
        return sender.transact(
            self.bus.address, self.post_data(message), gas=self.post_gas(message)
        )

    # views
    def origin_kind(self, origin: Address) -> int:
        return int(self.registry.call(self.client, "origin_kind", origin))

    def next_seq(self, origin: Address) -> int:
        return int(self.bus.call(self.client, "next_seq", origin))

    def view(self, contract: str, fn: str, *args: Any) -> Any:
        handle = self.registry if contract == "Registry" else self.bus
        return handle.call(self.client, fn, *args)

    def published_key(self, getter: str, subject: bytes) -> tuple[bytes, int]:
        """(public key, epoch) of a cluster (``getter`` "clusters") or agent contract
        ("contracts"): the Registry stores the key's hash and the block of its key event; the
        key comes from that event, checked against the hash. (b"", 0) while unkeyed.

        Raises:
            ChainNotReady: the node returned no event that matches the stored hash.
        """
        record = self.view("Registry" if getter == "clusters" else "Bus", getter, subject)
        epoch_at, hash_at = (1, 3) if getter == "clusters" else (4, 6)
        epoch, key_hash, block = int(record[epoch_at]), bytes(record[hash_at]), record[hash_at + 1]
        if epoch == 0:
            return b"", 0
        kind = ClusterKeySet if getter == "clusters" else ContractKeySet
        for event in self.logs(kind, subject, from_block=block, to_block=block):
            if event.epoch == epoch and keccak(event.public_key) == key_hash:
                return bytes(event.public_key), epoch
        raise ChainNotReady(f"no key event of epoch {epoch} matches the Registry's key hash")

    def logs(
        self,
        event: type[Any],
        *where: bytes,
        from_block: int = 0,
        to_block: int | None = None,
    ) -> list[Any]:
        """Events of one kind, in block order, filtered by the node on the values of its first
        indexed fields (``where``, each left-padded to a word); logs that do not decode as
        that event are skipped.

        Raises:
            ChainNotReady and the other RPC errors of ``JSONRPCClient.call``.
        """
        docs = self.client.call(
            "eth_getLogs",
            {
                "address": self.addresses.by_name(event.CONTRACT).hex,
                "fromBlock": hex(from_block),
                "toBlock": "latest" if to_block is None else hex(to_block),
                "topics": [
                    "0x" + event_topic(event).hex(),
                    *("0x" + value.rjust(32, b"\0").hex() for value in where),
                ],
            },
        )
        found = []
        for doc in docs or []:
            try:
                decoded = decode_log(RawLog.from_rpc(doc), self.addresses)
            except (EventDecodeError, KeyError, TypeError, ValueError):
                continue
            if isinstance(decoded, event):
                found.append(decoded)
        return found
