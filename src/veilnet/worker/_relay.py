"""The host's relay thread: takes egress produced by applied blocks and posts it through
``EgressRelay`` in batches, retrying until every message is on chain (or its slot used).

A message is never dropped: while one is unposted the relay is not idle, so the host writes no
checkpoint past the block that made it, and a restart replays that block and makes it again.
Whatever the node answers (unreachable, JSON-RPC errors, a revert while an earlier message of
the origin is missing), the batch is retried with a capped back-off."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from veilnet.chain import EgressRelay, RelayJournal
from veilnet.chain.errors import RPCUnavailable
from veilnet.chain.relay import relay_key
from veilnet.errors import VeilnetError
from veilnet.protocol.egress import EgressMessage
from veilnet.worker.constants import ERROR_BACKOFF_S
from veilnet.worker.metrics import WorkerMetrics

__all__ = ["RelayWorker"]

MAX_BACKOFF_S = 8.0
"""Longest wait between two tries of a batch the node keeps refusing."""
_LOG_EVERY_ROUNDS = 10


class RelayWorker:
    """One background thread posting egress; ``is_idle`` once everything handed in settled."""

    def __init__(
        self,
        relay: EgressRelay,
        journal: RelayJournal,
        *,
        metrics: WorkerMetrics,
        log: logging.LoggerAdapter[logging.Logger],
        on_settled: Callable[[], None],
        backoff_s: float = ERROR_BACKOFF_S,
    ) -> None:
        self._backoff_s = backoff_s
        self._relay = relay
        self._journal = journal
        self._metrics = metrics
        self._log = log
        self._on_settled = on_settled
        self._cond = threading.Condition()
        self._queue: list[EgressMessage] = []
        self._inflight = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="veil-relay", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def put(self, messages: Sequence[EgressMessage]) -> None:
        if not messages:
            return
        with self._cond:
            self._queue.extend(messages)
            self._cond.notify_all()

    def is_idle(self) -> bool:
        with self._cond:
            return not self._queue and not self._inflight

    def wait_idle(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._inflight, timeout)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._queue) or self._stop.is_set())
                if self._stop.is_set():
                    return
                batch, self._queue = self._queue, []
                self._inflight = True
            try:
                self._post(batch)
            finally:
                with self._cond:
                    self._inflight = False
                    self._cond.notify_all()
                self._on_settled()

    def _post(self, batch: list[EgressMessage]) -> None:
        todo: dict[tuple[str, int], EgressMessage] = {}
        for message in batch:
            key = relay_key(message)
            if key not in self._journal.done:
                todo.setdefault(key, message)
        failures = 0
        while todo and not self._stop.is_set():
            try:
                outcomes = self._relay.submit(list(todo.values()))
            except RPCUnavailable as exc:
                self._log.warning("relay: node unavailable (%s); retrying", exc.code)
                self._stop.wait(self._backoff_s)
                continue
            except (VeilnetError, ValueError) as exc:  # ValueError: never postable, a bug
                failures += 1
                self._metrics.egress_failed.inc(len(todo))
                if failures % _LOG_EVERY_ROUNDS == 1:
                    self._log.warning(
                        "relay: %d egress message(s) not posted yet (%s, try %d); retrying",
                        len(todo),
                        getattr(exc, "code", type(exc).__name__),
                        failures,
                    )
                self._stop.wait(min(self._backoff_s * 2 ** min(failures - 1, 5), MAX_BACKOFF_S))
                continue
            for outcome in outcomes:
                self._metrics.egress_posted.labels(status=outcome.status).inc()
            self._log.debug("relay: settled %d egress message(s)", len(outcomes))
            return
