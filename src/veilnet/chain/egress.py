"""Egress messages: what an enclave key signs (EIP-712 ``Egress``) for the Bus, and the payload
encodings of the topics the Registry acts on. Pure (crypto + eth-abi): the runtime may import it."""

from __future__ import annotations

from dataclasses import dataclass

from eth_abi.abi import encode as abi_encode

from veilnet.chain.constants import (
    MAX_PAYLOAD_BOUND,
    TOPIC_CLUSTER_KEY,
    TOPIC_CONTRACT_KEY,
    TOPIC_ENDORSE,
    TOPIC_MASTER_KEY,
    TOPIC_ROTATION_CONFIRM,
    TOPIC_ROTATION_PROPOSE,
)
from veilnet.crypto import Address, Domain, MessageType, SecretKey, sign_typed, verify_typed

__all__ = [
    "EGRESS_TYPE",
    "EgressMessage",
    "egress_domain",
    "encode_cluster_key",
    "encode_contract_key",
    "encode_endorse",
    "encode_master_key",
    "encode_rotation_confirm",
    "encode_rotation_propose",
    "sign_egress",
    "topic",
    "verify_egress",
]

EGRESS_TYPE = MessageType(
    "Egress",
    (("origin", "address"), ("seq", "uint64"), ("topic", "bytes32"), ("payload", "bytes")),
)
"""``Egress(address origin,uint64 seq,bytes32 topic,bytes payload)``; the Bus recomputes it."""


def topic(name: str) -> bytes:
    """A free-form egress topic id: keccak256 of its name (``"veil/egress/state-commitment"``)."""
    from eth_hash.auto import keccak

    return keccak(name.encode())


def egress_domain(chain_id: int, bus: Address) -> Domain:
    """The EIP-712 domain of a network's Bus: Veilnet, version 1, chain id, Bus address."""
    return Domain(chain_id=chain_id, verifying_contract=bus)


@dataclass(frozen=True, slots=True, kw_only=True)
class EgressMessage:
    """One signed egress message, ready for ``Bus.post``."""

    origin: Address
    seq: int
    topic: bytes
    payload: bytes
    signature: bytes

    def __post_init__(self) -> None:
        if len(self.topic) != 32:
            raise ValueError("topic must be 32 bytes")
        if not 0 <= self.seq < 2**64:
            raise ValueError("seq must fit uint64")
        if len(self.payload) > MAX_PAYLOAD_BOUND:
            raise ValueError("payload too big")

    def values(self) -> dict[str, object]:
        return {
            "origin": self.origin,
            "seq": self.seq,
            "topic": self.topic,
            "payload": self.payload,
        }

    @property
    def key(self) -> tuple[bytes, int]:
        """(origin, seq): what the Bus accepts exactly once."""
        return (self.origin.raw, self.seq)


def sign_egress(
    key: SecretKey, domain: Domain, *, seq: int, topic: bytes, payload: bytes
) -> EgressMessage:
    """Sign an egress message with ``key``; the origin is the key's address."""
    values = {"origin": key.address, "seq": seq, "topic": topic, "payload": payload}
    signature = sign_typed(key, domain, EGRESS_TYPE, values)
    return EgressMessage(
        origin=key.address, seq=seq, topic=topic, payload=payload, signature=signature
    )


def verify_egress(message: EgressMessage, domain: Domain) -> None:
    """None if the origin signed it; raises SignatureInvalid otherwise."""
    verify_typed(message.origin, message.signature, domain, EGRESS_TYPE, message.values())


def encode_endorse(worker: Address, confidence: int, quote_hash: bytes) -> tuple[bytes, bytes]:
    """(topic, payload): the master key endorses ``worker`` at ``confidence`` (0 rejects)."""
    return TOPIC_ENDORSE, abi_encode(
        ["address", "uint8", "bytes32"], [worker.hex, confidence, quote_hash]
    )


def encode_master_key(key_address: Address, public_key: bytes) -> tuple[bytes, bytes]:
    """(topic, payload): the first gatekeeper (its worker identity) publishes the master key."""
    return TOPIC_MASTER_KEY, abi_encode(["address", "bytes"], [key_address.hex, public_key])


def encode_cluster_key(
    cluster_id: bytes, epoch: int, key_address: Address, public_key: bytes
) -> tuple[bytes, bytes]:
    """(topic, payload): the master key publishes a cluster key epoch."""
    return TOPIC_CLUSTER_KEY, abi_encode(
        ["bytes32", "uint64", "address", "bytes"], [cluster_id, epoch, key_address.hex, public_key]
    )


def encode_contract_key(
    contract_id: bytes, epoch: int, key_address: Address, public_key: bytes
) -> tuple[bytes, bytes]:
    """(topic, payload): the cluster key publishes a contract key for the cluster's epoch."""
    return TOPIC_CONTRACT_KEY, abi_encode(
        ["bytes32", "uint64", "address", "bytes"], [contract_id, epoch, key_address.hex, public_key]
    )


def encode_rotation_propose(
    rotation: int, key_address: Address, public_key: bytes
) -> tuple[bytes, bytes]:
    """(topic, payload): a gatekeeper proposes the next master key (first to land wins)."""
    return TOPIC_ROTATION_PROPOSE, abi_encode(
        ["uint256", "address", "bytes"], [rotation, key_address.hex, public_key]
    )


def encode_rotation_confirm(rotation: int, key_address: Address) -> tuple[bytes, bytes]:
    """(topic, payload): a gatekeeper confirms it switched to the proposed master key."""
    return TOPIC_ROTATION_CONFIRM, abi_encode(["uint256", "address"], [rotation, key_address.hex])
