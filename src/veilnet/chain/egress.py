"""Egress on the chain side: signing and verifying ``veilnet.protocol.egress.EgressMessage``
for ``Bus.post`` (EIP-712 ``Egress``), and the payloads of the topics the Registry acts on."""

from __future__ import annotations

import dataclasses

from eth_abi.abi import encode as abi_encode

from veilnet.chain.constants import (
    MAX_PAYLOAD_BOUND,
    TOPIC_AGENT_SCHEDULE,
    TOPIC_CLUSTER_KEY,
    TOPIC_CONTRACT_KEY,
    TOPIC_ENDORSE,
    TOPIC_INIT_FAILED,
    TOPIC_MASTER_KEY,
    TOPIC_ROTATION_CONFIRM,
    TOPIC_ROTATION_PROPOSE,
    TOPIC_WORKER_KEY,
)
from veilnet.crypto import Address, Domain, SecretKey, sign_typed, verify_typed
from veilnet.protocol.egress import EGRESS_TYPE, EgressMessage

__all__ = [
    "check_egress",
    "egress_domain",
    "egress_values",
    "encode_agent_schedule",
    "encode_cluster_key",
    "encode_contract_key",
    "encode_endorse",
    "encode_init_failed",
    "encode_master_key",
    "encode_rotation_confirm",
    "encode_rotation_propose",
    "encode_worker_key",
    "sign_egress",
    "topic",
    "verify_egress",
]


def topic(name: str) -> bytes:
    """A free-form egress topic id: keccak256 of its name (``"veil/egress/state-commitment"``)."""
    from veilnet.crypto import keccak

    return keccak(name.encode())


def egress_domain(chain_id: int, bus: Address) -> Domain:
    """The EIP-712 domain of a network's Bus: Veilnet, version 1, chain id, Bus address."""
    return Domain(chain_id=chain_id, verifying_contract=bus)


def check_egress(message: EgressMessage) -> None:
    """None if ``Bus.post`` can take ``message`` at all (its ABI bounds); the Bus checks the rest.

    Raises:
        ValueError: origin not 20 bytes, topic not 32, seq beyond uint64 or payload too big.
    """
    if len(message.origin) != 20:
        raise ValueError("origin must be a 20-byte address")
    if len(message.topic) != 32:
        raise ValueError("topic must be 32 bytes")
    if not 0 <= message.seq < 2**64:
        raise ValueError("seq must fit uint64")
    if len(message.payload) > MAX_PAYLOAD_BOUND:
        raise ValueError("payload too big")


def egress_values(message: EgressMessage) -> dict[str, object]:
    """The fields of the EIP-712 ``Egress`` struct the origin signs."""
    return {
        "origin": Address(message.origin),
        "seq": message.seq,
        "topic": message.topic,
        "payload": message.payload,
    }


def sign_egress(
    key: SecretKey, domain: Domain, *, seq: int, topic: bytes, payload: bytes
) -> EgressMessage:
    """Sign an egress message with ``key``; the origin is the key's address.

    Raises:
        ValueError: the message could never be posted (see ``check_egress``).
    """
    unsigned = EgressMessage(
        origin=key.address.raw, seq=seq, topic=topic, payload=payload, signature=b""
    )
    check_egress(unsigned)
    signature = sign_typed(key, domain, EGRESS_TYPE, egress_values(unsigned))
    return dataclasses.replace(unsigned, signature=signature)


def verify_egress(message: EgressMessage, domain: Domain) -> None:
    """None if the origin signed it; raises SignatureInvalid otherwise."""
    verify_typed(
        Address(message.origin), message.signature, domain, EGRESS_TYPE, egress_values(message)
    )


def encode_endorse(
    worker: Address, confidence: int, registration: bytes, valid_until: int
) -> tuple[bytes, bytes]:
    """(topic, payload): the master key endorses ``worker``'s registration (its digest,
    ``Registry.registration_of``) at ``confidence`` (0 rejects) until ``valid_until`` (unix
    seconds of block time: its collateral's expiry)."""
    return TOPIC_ENDORSE, abi_encode(
        ["address", "uint8", "bytes32", "uint64"],
        [worker.hex, confidence, registration, valid_until],
    )


def encode_worker_key(index: int, public_key: bytes) -> tuple[bytes, bytes]:
    """(topic, payload): a worker identity publishes its encryption key number ``index``."""
    return TOPIC_WORKER_KEY, abi_encode(["uint64", "bytes"], [index, public_key])


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


def encode_agent_schedule(
    contract_id: bytes,
    *,
    cancel_id: int = 0,
    consumer: Address | None = None,
    every: int = 0,
    payload: bytes = b"",
) -> tuple[bytes, bytes]:
    """(topic, payload): the cluster key sets (``cancel_id`` 0) or ends an agent's own job."""
    return TOPIC_AGENT_SCHEDULE, abi_encode(
        ["bytes32", "uint256", "address", "uint64", "bytes"],
        [contract_id, cancel_id, (consumer or Address(bytes(20))).hex, every, payload],
    )


def encode_init_failed(contract_id: bytes, code: str) -> tuple[bytes, bytes]:
    """(topic, payload): the cluster key reports that the agent's ``init`` failed (``code``)."""
    return TOPIC_INIT_FAILED, abi_encode(["bytes32", "string"], [contract_id, code])


def encode_contract_key(
    contract_id: bytes, epoch: int, key_address: Address, public_key: bytes
) -> tuple[bytes, bytes]:
    """(topic, payload): the cluster key publishes a contract key for the cluster's epoch."""
    return TOPIC_CONTRACT_KEY, abi_encode(
        ["bytes32", "uint64", "address", "bytes"], [contract_id, epoch, key_address.hex, public_key]
    )


def encode_rotation_propose(
    rotation: int, key_address: Address, public_key: bytes, proof: bytes
) -> tuple[bytes, bytes]:
    """(topic, payload): a gatekeeper proposes the next master key (first to land wins);
    ``proof`` is the key's signature over this attempt and gatekeeper
    (``veilnet.protocol.rotation.prove_possession``)."""
    return TOPIC_ROTATION_PROPOSE, abi_encode(
        ["uint256", "address", "bytes", "bytes"], [rotation, key_address.hex, public_key, proof]
    )


def encode_rotation_confirm(
    rotation: int, key_address: Address, public_key: bytes, proof: bytes
) -> tuple[bytes, bytes]:
    """(topic, payload): a gatekeeper confirms it holds the proposed master key. The key
    itself travels along (the Registry keeps only its hash; the confirmation that completes
    the rotation puts it in ``MasterKeyRotated``)."""
    return TOPIC_ROTATION_CONFIRM, abi_encode(
        ["uint256", "address", "bytes", "bytes"], [rotation, key_address.hex, public_key, proof]
    )
