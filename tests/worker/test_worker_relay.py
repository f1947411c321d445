"""The host's relay thread never drops a message: whatever the node answers, a batch is retried
until it is on chain, and the relay is not idle (so no checkpoint passes it) meanwhile."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

from veilnet.chain import RelayJournal
from veilnet.chain.errors import ContractReverted, RelayGaveUp, RPCError, RPCUnavailable
from veilnet.chain.relay import RelayOutcome, relay_key
from veilnet.protocol.egress import EgressMessage
from veilnet.worker._relay import RelayWorker
from veilnet.worker.metrics import WorkerMetrics


class _FlakyRelay:
    """An ``EgressRelay`` whose node refuses the first ``failures`` rounds, each its own way."""

    def __init__(self, failures: int) -> None:
        self.errors = [
            RPCError("busy"),
            ContractReverted("sequence gap"),
            RelayGaveUp("not posted"),
            RPCUnavailable("down"),
            ValueError("refused by a check"),
        ]
        self.failures = failures
        self.calls = 0
        self.landed: list[tuple[str, int]] = []
        self.released = threading.Event()

    def submit(self, messages: Sequence[EgressMessage]) -> list[RelayOutcome]:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.errors[(self.calls - 1) % len(self.errors)]
        keys = [relay_key(m) for m in messages]
        self.landed += keys
        return [RelayOutcome(origin, seq, "landed", b"\x01" * 32) for origin, seq in keys]


def _message(seq: int) -> EgressMessage:
    return EgressMessage(
        origin=b"\x07" * 20, seq=seq, topic=b"\x01" * 32, payload=b"p", signature=b"\x00" * 65
    )


def test_a_batch_the_node_refuses_twenty_times_still_lands_once(tmp_path: Path) -> None:
    relay = _FlakyRelay(failures=20)
    settled = threading.Event()
    worker = RelayWorker(
        relay,  # type: ignore[arg-type]
        RelayJournal(tmp_path / "relay.journal"),
        metrics=WorkerMetrics(),
        log=logging.LoggerAdapter(logging.getLogger("test"), {}),
        on_settled=settled.set,
        backoff_s=0.0001,
    )
    worker.start()
    try:
        worker.put([_message(0), _message(1), _message(0)])
        assert worker.wait_idle(timeout=30)
    finally:
        worker.stop()
    assert relay.calls == 21  # twenty refusals, then one round that lands it
    assert sorted(relay.landed) == [relay_key(_message(0)), relay_key(_message(1))]
    assert settled.is_set()


def test_the_relay_is_not_idle_while_a_message_waits(tmp_path: Path) -> None:
    relay = _FlakyRelay(failures=10**9)  # a node that never takes it
    worker = RelayWorker(
        relay,  # type: ignore[arg-type]
        RelayJournal(tmp_path / "relay.journal"),
        metrics=WorkerMetrics(),
        log=logging.LoggerAdapter(logging.getLogger("test"), {}),
        on_settled=lambda: None,
        backoff_s=0.0001,
    )
    worker.start()
    try:
        worker.put([_message(0)])
        assert not worker.wait_idle(timeout=0.5)  # still pending: the host must not checkpoint
        assert relay.calls > 3
    finally:
        worker.stop()
