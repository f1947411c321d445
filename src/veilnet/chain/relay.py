"""The egress relay: posts signed egress messages to the Bus from a funded host account.
Manages nonces and gas, batches broadcasts, retries, counts "sequence already used" as success,
and journals every signed transaction before broadcasting it, so a restart rebroadcasts the very
same transaction (same nonce, same hash) instead of submitting a second one."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from veilnet.chain.constants import (
    POST_BASE_GAS,
    RELAY_MAX_ATTEMPTS,
    ROUTED_TOPICS,
    TOPIC_HEARTBEAT,
)
from veilnet.chain.contracts import TxSender
from veilnet.chain.deploy import Network
from veilnet.chain.egress import check_egress
from veilnet.chain.errors import ContractReverted, RelayGaveUp, RPCError, RPCUnavailable
from veilnet.chain.rpc import from_hex, from_quantity, to_hex
from veilnet.protocol.egress import EgressMessage

__all__ = ["EgressRelay", "RelayJournal", "RelayOutcome", "post_gas_limit", "relay_key"]

_UNROUTED_BASE_GAS = 120_000
_GAS_PER_PAYLOAD_BYTE = 64


def post_gas_limit(message: EgressMessage) -> int:
    """A gas limit that covers ``Bus.post`` for this payload (unused gas is not charged)."""
    base = POST_BASE_GAS if message.topic in ROUTED_TOPICS else _UNROUTED_BASE_GAS
    return base + _GAS_PER_PAYLOAD_BYTE * len(message.payload)


def relay_key(message: EgressMessage) -> tuple[str, int]:
    """(origin as lowercase 0x-hex, seq): one Bus slot, as the journal records it."""
    return (to_hex(message.origin), message.seq)


@dataclass(frozen=True, slots=True)
class RelayOutcome:
    """How one message ended: it landed in ``tx_hash``, or its sequence was already used."""

    origin: str
    seq: int
    status: Literal["landed", "already_used"]
    tx_hash: bytes | None


class RelayJournal:
    """Append-only JSON-lines file of signed relay transactions and finished messages."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pending: dict[tuple[str, int], dict[str, Any]] = {}
        self.done: set[tuple[str, int]] = set()
        if path.exists():
            for line in path.read_text().splitlines():
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                    key = (str(entry["origin"]).lower(), int(entry["seq"]))
                except (ValueError, KeyError, TypeError):
                    continue  # a torn last line after a crash
                if entry.get("done"):
                    self.done.add(key)
                    self.pending.pop(key, None)
                else:
                    self.pending[key] = entry

    def record(self, entries: Sequence[dict[str, Any]]) -> None:
        with self.path.open("a") as handle:
            for entry in entries:
                handle.write(json.dumps(entry, separators=(",", ":")) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        for entry in entries:
            key = (str(entry["origin"]).lower(), int(entry["seq"]))
            if entry.get("done"):
                self.done.add(key)
                self.pending.pop(key, None)
            else:
                self.pending[key] = entry


class EgressRelay:
    """Posts egress messages through ``sender``; see the module docstring.

    Args:
        network: the deployed network (client and contract handles).
        sender: the funded host account paying gas.
        journal: where signed transactions are recorded (None: memory only, no restart safety).
        max_attempts: rounds before RelayGaveUp.
    """

    def __init__(
        self,
        network: Network,
        sender: TxSender,
        *,
        journal: RelayJournal | None = None,
        max_attempts: int = RELAY_MAX_ATTEMPTS,
        receipt_timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.network = network
        self.sender = sender
        self.journal = journal
        self.max_attempts = max_attempts
        self.receipt_timeout = receipt_timeout
        self._sleep = sleep
        self._memory: dict[tuple[str, int], dict[str, Any]] = {}

    def _next_seqs(self, origins: list[str]) -> dict[str, int]:
        bus = self.network.bus
        calls = [
            (
                "eth_call",
                [{"to": bus.address.hex, "data": to_hex(bus.encode("next_seq", o))}, "latest"],
            )
            for o in origins
        ]
        results = self.network.client.batch(calls)
        return {
            o: int(bus.decode("next_seq", from_hex(r)))
            for o, r in zip(origins, results, strict=True)
        }

    def submit(self, messages: Sequence[EgressMessage]) -> list[RelayOutcome]:
        """Post ``messages`` (any order, duplicates allowed) and wait until each is settled.

        Raises:
            RelayGaveUp: some message neither landed nor was found used after max_attempts.
            RPCUnavailable: the node stayed unreachable.
            ValueError: a message could never be posted (see ``check_egress``); nothing sent.
        """
        for message in messages:
            check_egress(message)
        outcomes: dict[tuple[str, int], RelayOutcome] = {}
        todo = {relay_key(m): m for m in messages}
        for attempt in range(self.max_attempts):
            if not todo:
                break
            seqs = self._next_seqs(sorted({o for o, _ in todo}))
            for key in list(todo):
                if key[1] < seqs[key[0]]:
                    self._offer_duplicate_heartbeat(key, todo[key])
                    outcomes[key] = self._settle_used(key)
                    del todo[key]
            if not todo:
                break
            ordered = _causal_order(list(todo.items()))
            entries = self._signed(ordered, fresh=attempt > 0)
            self._broadcast(entries)
            landed = self._await(entries)
            for key, tx_hash in landed.items():
                outcomes[key] = RelayOutcome(key[0], key[1], "landed", tx_hash)
                todo.pop(key, None)
            if self.journal is not None and landed:
                self.journal.record([{"origin": k[0], "seq": k[1], "done": True} for k in landed])
            if todo:
                self._sleep(0.05 * (attempt + 1))
        if todo:
            raise RelayGaveUp(f"{len(todo)} egress message(s) not posted", pending=len(todo))
        return [outcomes[relay_key(m)] for m in messages]

    def _offer_duplicate_heartbeat(self, key: tuple[str, int], message: EgressMessage) -> None:
        """Another copy of this identity used the sequence: post our heartbeat anyway, so the
        Registry sees both boots (and flags the identity). Best effort: only if it would land
        (a replayed, stale heartbeat after a restart would not) and never twice."""
        if message.topic != TOPIC_HEARTBEAT or (
            self.journal is not None and key in self.journal.done
        ):
            return
        try:
            self.sender.send(self.network.bus.address, self.network.post_data(message))
        except (ContractReverted, RPCError):
            return

    def _settle_used(self, key: tuple[str, int]) -> RelayOutcome:
        if self.journal is not None and key not in self.journal.done:
            self.journal.record([{"origin": key[0], "seq": key[1], "done": True}])
        return RelayOutcome(key[0], key[1], "already_used", None)

    def _known(self, key: tuple[str, int]) -> dict[str, Any] | None:
        if self.journal is not None:
            return self.journal.pending.get(key)
        return self._memory.get(key)

    def _signed(
        self, ordered: list[tuple[tuple[str, int], EgressMessage]], *, fresh: bool
    ) -> list[dict[str, Any]]:
        """Reuse journaled transactions (restart-safe); sign new ones only where none exists."""
        entries: list[dict[str, Any]] = []
        new: list[dict[str, Any]] = []
        for key, message in ordered:
            known = self._known(key)
            if known is not None and not fresh:
                entries.append(known)
                continue
            if known is not None and fresh and not self._nonce_used_elsewhere(known):
                entries.append(known)
                continue
            data = self.network.post_data(message)
            nonce = self.sender.next_nonce()
            raw, tx_hash = self.sender.sign(
                self.network.bus.address, data, gas=post_gas_limit(message), nonce=nonce
            )
            entry: dict[str, Any] = {
                "origin": key[0],
                "seq": key[1],
                "nonce": nonce,
                "tx_hash": to_hex(tx_hash),
                "raw": to_hex(raw),
            }
            entries.append(entry)
            new.append(entry)
        if new:
            if self.journal is not None:
                self.journal.record(new)
            else:
                for entry in new:
                    self._memory[(str(entry["origin"]), int(entry["seq"]))] = entry
        return entries

    def _nonce_used_elsewhere(self, entry: dict[str, Any]) -> bool:
        """True if the journaled transaction can never be mined (its nonce went to another tx)."""
        receipt = self.network.client.call("eth_getTransactionReceipt", entry["tx_hash"])
        if receipt is not None:
            return False
        mined = from_quantity(
            self.network.client.call("eth_getTransactionCount", self.sender.address.hex, "latest")
        )
        return int(entry["nonce"]) < mined

    def _broadcast(self, entries: list[dict[str, Any]]) -> None:
        results = self.network.client.batch_settled(
            [("eth_sendRawTransaction", [e["raw"]]) for e in entries]
        )
        for item in results:
            if isinstance(item, RPCUnavailable):
                raise item
            if isinstance(item, RPCError | ContractReverted):
                text = str(item).lower()
                if "nonce" in text or "already" in text or "known" in text:
                    continue  # already in the pool or mined: the receipt tells
                self.sender.reset_nonce()

    def _await(self, entries: list[dict[str, Any]]) -> dict[tuple[str, int], bytes]:
        """Receipts of successful posts; failed or missing ones stay to be re-checked."""
        deadline = time.monotonic() + self.receipt_timeout
        waiting = {(e["origin"], int(e["seq"])): e["tx_hash"] for e in entries}
        landed: dict[tuple[str, int], bytes] = {}
        while waiting:
            keys = list(waiting)
            receipts = self.network.client.batch(
                [("eth_getTransactionReceipt", [waiting[k]]) for k in keys]
            )
            for key, receipt in zip(keys, receipts, strict=True):
                if receipt is None:
                    continue
                if from_quantity(receipt["status"]) == 1:
                    landed[key] = from_hex(waiting[key])
                del waiting[key]  # a failed post is re-checked against next_seq next round
            if not waiting or time.monotonic() > deadline:
                break
            self._sleep(0.05)
        return landed


def _causal_order(
    items: list[tuple[tuple[str, int], EgressMessage]],
) -> list[tuple[tuple[str, int], EgressMessage]]:
    """Each origin's messages by sequence, in the slots the caller gave that origin.

    The interleaving of origins is kept as given because it is causal (a rotation proposal
    registers the origin of the cluster keys that follow it in the same block); within one
    origin only the next sequence is ever accepted, so those are sorted.
    """
    slots: dict[str, list[int]] = {}
    for index, ((origin, _), _) in enumerate(items):
        slots.setdefault(origin, []).append(index)
    ordered = list(items)
    for positions in slots.values():
        mine = sorted((items[i] for i in positions), key=lambda kv: kv[0][1])
        for position, item in zip(positions, mine, strict=True):
            ordered[position] = item
    return ordered
