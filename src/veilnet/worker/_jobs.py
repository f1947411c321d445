"""The host's job thread: after blocks are applied, asks the enclave to run the job requests
they queued, and delivers each signed result to its consumer contract (``VeilConsumer.fulfill``).

The host delivers; it cannot forge: a result carries the contract key's signature, which the
consumer checks. A result the consumer no longer takes (another member delivered first, or the
deadline passed) is dropped after a gas estimate, so it costs nothing."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from veilnet.chain import ContractHandle, Network, TxSender
from veilnet.chain.errors import ContractReverted, RPCError, RPCUnavailable
from veilnet.crypto import Address
from veilnet.errors import VeilnetError
from veilnet.protocol import enclave as wire
from veilnet.worker.metrics import WorkerMetrics

__all__ = ["JobWorker"]

_DELIVERY_ATTEMPTS = 2
"""Sends of one result the node refused (each with a fresh nonce and fee caps)."""


class JobWorker:
    """One background thread: ``poke`` after applied blocks; it runs jobs and delivers them."""

    def __init__(
        self,
        run_jobs: Callable[[], wire.Jobs],
        network: Network,
        sender: TxSender,
        *,
        head: Callable[[], int | None],
        metrics: WorkerMetrics,
        log: logging.LoggerAdapter[logging.Logger],
        on_settled: Callable[[], None] = lambda: None,
    ) -> None:
        self._run_jobs = run_jobs
        self._network = network
        self._sender = sender
        self._head = head
        self._metrics = metrics
        self._log = log
        self._on_settled = on_settled
        self._poked = threading.Event()
        self._running = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="veil-jobs", daemon=True)
        self.delivered = 0
        """Results this worker delivered that the consumer took."""

    def start(self) -> None:
        self._thread.start()

    def poke(self) -> None:
        self._poked.set()

    def is_idle(self) -> bool:
        """No job batch asked for, running, or being delivered."""
        return not self._running and not self._poked.is_set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._poked.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            self._poked.wait()
            self._running = True  # before the clear: never seen idle with a batch to run
            self._poked.clear()
            if self._stop.is_set():
                return
            try:
                for result in self._run_jobs().results:
                    self._deliver(result)
            except VeilnetError as exc:
                self._log.warning("jobs: the enclave ran none (%s)", exc.code)
            finally:
                self._running = False
                self._on_settled()

    def _deliver(self, result: wire.JobResult) -> None:
        head = self._head()
        if head is not None and head >= result.deadline:
            self._metrics.jobs.labels(outcome="not_taken").inc()
            return  # the consumer takes no result after its deadline
        consumer = ContractHandle("VeilConsumer", Address(result.consumer))
        if result.schedule_id:
            data = consumer.encode(
                "fulfill_tick", result.schedule_id, result.height, result.result, result.signature
            )
        else:
            data = consumer.encode("fulfill", result.request_id, result.result, result.signature)
        for attempt in range(1, _DELIVERY_ATTEMPTS + 1):
            try:
                self._sender.transact(consumer.address, data)
                break
            except ContractReverted as exc:
                # "already fulfilled": another member was first; the consumer took one result
                self._log.debug("jobs: 0x%s not taken: %s", result.request_id.hex(), exc.reason)
                self._metrics.jobs.labels(outcome="not_taken").inc()
                return
            except RPCError as exc:
                # The node refused it (a nonce another sender took, a fee cap the base fee
                # passed): the sender reads both afresh. The result has no other chance (the
                # enclave runs a request once); a copy of one already mined only reverts.
                if attempt < _DELIVERY_ATTEMPTS:
                    continue
                self._failed(result, exc)
                return
            except RPCUnavailable as exc:  # it may be in the pool: sending again could pay twice
                self._failed(result, exc)
                return
        self._metrics.jobs.labels(outcome="delivered").inc()
        self.delivered += 1
        self._log.info("jobs: delivered the result of 0x%s", result.request_id.hex())

    def _failed(self, result: wire.JobResult, exc: RPCError | RPCUnavailable) -> None:
        self._log.warning(
            "jobs: 0x%s not delivered: %s (%s)", result.request_id.hex(), exc.code, exc.message
        )
        self._metrics.jobs.labels(outcome="failed").inc()
