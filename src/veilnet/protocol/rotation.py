"""Proof that a gatekeeper holds the master key it proposes or confirms in a rotation attempt.
The new key signs (chain, Registry, attempt, gatekeeper); ``Registry.vy`` checks it by ecrecover."""

from __future__ import annotations

from typing import Final

from eth_abi.abi import encode as abi_encode

from veilnet.crypto import Address, SecretKey, keccak, recover_digest
from veilnet.crypto.errors import SignatureInvalid

__all__ = ["POSSESSION_TAG", "possession_digest", "prove_possession", "proves_possession"]

POSSESSION_TAG: Final = keccak(b"veil/rotation-possession")
"""Equals ``Registry.vy``'s ``POSSESSION_TAG``: the conformance tests post proofs made here to
the real contract."""


def possession_digest(*, chain_id: int, registry: bytes, attempt: int, gatekeeper: bytes) -> bytes:
    """``keccak256(abi_encode(TAG, chain.id, registry, attempt, gatekeeper))``: bound to one
    network, one rotation attempt and one gatekeeper, so no copy serves anyone else."""
    return keccak(
        abi_encode(
            ["bytes32", "uint256", "address", "uint256", "address"],
            [POSSESSION_TAG, chain_id, Address(registry).hex, attempt, Address(gatekeeper).hex],
        )
    )


def prove_possession(
    key: SecretKey, *, chain_id: int, registry: bytes, attempt: int, gatekeeper: bytes
) -> bytes:
    """The new master key's 65-byte signature over ``possession_digest``."""
    digest = possession_digest(
        chain_id=chain_id, registry=registry, attempt=attempt, gatekeeper=gatekeeper
    )
    return key.sign_digest(digest)


def proves_possession(
    signature: bytes,
    key_address: bytes,
    *,
    chain_id: int,
    registry: bytes,
    attempt: int,
    gatekeeper: bytes,
) -> bool:
    """Whether ``signature`` is ``key_address``'s proof for this attempt and gatekeeper."""
    digest = possession_digest(
        chain_id=chain_id, registry=registry, attempt=attempt, gatekeeper=gatekeeper
    )
    try:
        return recover_digest(signature, digest).raw == key_address
    except SignatureInvalid:
        return False
