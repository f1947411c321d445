"""Job results an agent's contract key signs for an EVM consumer (``VeilConsumer.vy``): the
digest binds chain, consumer, request and result; the consumer checks it with ``ecrecover``."""

from __future__ import annotations

from typing import Final

from eth_abi.abi import encode as abi_encode

from veilnet.crypto import Address, SecretKey, keccak

__all__ = ["RESULT_TAG", "result_digest", "sign_result"]

RESULT_TAG: Final = keccak(b"veil/job-result")
"""Equals ``VeilConsumer.vy``'s ``RESULT_TAG``."""


def result_digest(*, chain_id: int, consumer: bytes, request_id: bytes, result: bytes) -> bytes:
    """``keccak256(abi_encode(TAG, chain.id, consumer, request_id, keccak256(result)))``: a
    signed result answers one request of one consumer on one chain, and nothing else."""
    return keccak(
        abi_encode(
            ["bytes32", "uint256", "address", "bytes32", "bytes32"],
            [RESULT_TAG, chain_id, Address(consumer).hex, request_id, keccak(result)],
        )
    )


def sign_result(
    key: SecretKey, *, chain_id: int, consumer: bytes, request_id: bytes, result: bytes
) -> bytes:
    """The contract key's 65-byte signature (low s, v 27/28) over ``result_digest``."""
    return key.sign_digest(
        result_digest(chain_id=chain_id, consumer=consumer, request_id=request_id, result=result)
    )
