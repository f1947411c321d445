"""Egress messages on the wire: what ``Bus.post`` takes, and the EIP-712 struct it verifies.
The core signs them; the relay, the chain code and the SDK read them."""

from __future__ import annotations

from dataclasses import dataclass

from veilnet.codec import Record, record
from veilnet.crypto import MessageType

EGRESS_TYPE = MessageType(
    "Egress",
    (("origin", "address"), ("seq", "uint64"), ("topic", "bytes32"), ("payload", "bytes")),
)
"""The EIP-712 struct the Bus verifies with ``ecrecover`` (Bus.vy ``EGRESS_TYPEHASH``)."""


@record("egress.message")
@dataclass(frozen=True, slots=True, kw_only=True)
class EgressMessage(Record):
    """One message for ``Bus.post(origin, seq, topic, payload, signature)``."""

    origin: bytes
    seq: int
    topic: bytes
    payload: bytes
    signature: bytes

    def __repr__(self) -> str:
        return (
            f"EgressMessage(origin=0x{self.origin.hex()}, seq={self.seq}, "
            f"topic=0x{self.topic[:4].hex()}.., {len(self.payload)} bytes)"
        )
