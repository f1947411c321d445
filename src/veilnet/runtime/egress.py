"""Egress: signed messages the core asks the host to post on the Bus, one sequence per origin.
Sequence counters are replicated state, so every holder of a key emits the same numbered stream."""

from __future__ import annotations

from dataclasses import dataclass

from veilnet.codec import Record, record
from veilnet.crypto import Address, Domain, MessageType, SecretKey, sign_typed

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


class Outbox:
    """Per-origin sequence counters plus the messages produced while applying one block."""

    def __init__(self, domain: Domain, counters: dict[bytes, int] | None = None) -> None:
        self._domain = domain
        self.counters: dict[bytes, int] = dict(counters or {})
        self.pending: list[EgressMessage] = []

    def emit(self, key: SecretKey | None, origin: bytes, topic: bytes, payload: bytes) -> int:
        """Take the next sequence of ``origin``; sign and queue the message if ``key`` is held.

        Replicas that do not hold the key still advance the counter, so the numbering stays
        identical everywhere and whoever holds the key posts the message.
        """
        seq = self.counters.get(origin, 0)
        self.counters[origin] = seq + 1
        if key is not None:
            if key.address.raw != origin:
                raise ValueError("egress key does not match its origin")
            signature = sign_typed(
                key,
                self._domain,
                EGRESS_TYPE,
                {"origin": Address(origin), "seq": seq, "topic": topic, "payload": payload},
            )
            self.pending.append(
                EgressMessage(
                    origin=origin, seq=seq, topic=topic, payload=payload, signature=signature
                )
            )
        return seq

    def drain(self) -> list[EgressMessage]:
        out, self.pending = self.pending, []
        return out
