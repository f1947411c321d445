"""The host's relay thread: takes egress produced by applied blocks and posts it through
``EgressRelay`` in batches, retrying node outages and giving up on doomed messages."""

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

_GIVE_UP_ROUNDS = 3


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
    ) -> None:
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
                self._stop.wait(ERROR_BACKOFF_S)
                continue
            except VeilnetError as exc:
                failures += 1
                if failures >= _GIVE_UP_ROUNDS:
                    self._log.error(
                        "relay: giving up on %d egress message(s): %s", len(todo), exc.code
                    )
                    self._metrics.egress_failed.inc(len(todo))
                    return
                self._log.warning("relay: %s; retrying", exc.code)
                self._stop.wait(ERROR_BACKOFF_S)
                continue
            for outcome in outcomes:
                self._metrics.egress_posted.labels(status=outcome.status).inc()
            self._log.debug("relay: settled %d egress message(s)", len(outcomes))
            return
