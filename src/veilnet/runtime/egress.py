"""The core's outbox: signed egress messages for the host to post, one sequence per origin.
Sequence counters are replicated state, so every holder of a key emits the same numbered stream."""

from __future__ import annotations

from veilnet.codec import abi_encode
from veilnet.crypto import Address, Domain, SecretKey, keccak, sign_typed
from veilnet.protocol import limits, topics
from veilnet.protocol.egress import EGRESS_TYPE, EgressMessage


class Outbox:
    """Per-origin sequence counters plus the messages produced while applying one block."""

    def __init__(self, domain: Domain, counters: dict[bytes, int] | None = None) -> None:
        self._domain = domain
        # Shared, not copied: the counters are a field of the core's replicated state.
        self.counters: dict[bytes, int] = counters if counters is not None else {}
        self.pending: list[EgressMessage] = []

    def emit(self, key: SecretKey | None, origin: bytes, topic: bytes, payload: bytes) -> int:
        """Take the next sequence of ``origin``; sign and queue the message if ``key`` is held.

        Replicas that do not hold the key still advance the counter, so the numbering stays
        identical everywhere and whoever holds the key posts the message. A payload too big
        for any Bus is replaced by a ``TOPIC_SKIPPED`` notice (the same on every replica):
        an origin whose next message could never be posted would be blocked for good.
        """
        if len(payload) > limits.MAX_EGRESS_PAYLOAD:
            payload = abi_encode(
                ["bytes32", "bytes32", "uint256"], [topic, keccak(payload), len(payload)]
            )
            topic = topics.TOPIC_SKIPPED
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
