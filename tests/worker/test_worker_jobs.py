"""The host's job thread delivers each result the enclave ran: a node's refusal is sent once
more (with a fresh nonce and fees), a result another member delivered is dropped, and a send
that may be in the pool is never repeated."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import pytest

from veilnet.chain.errors import ContractReverted, RPCError, RPCUnavailable
from veilnet.protocol import enclave as wire
from veilnet.worker._jobs import JobWorker
from veilnet.worker.metrics import WorkerMetrics

RESULT = wire.JobResult(
    consumer=b"\x05" * 20, request_id=b"\x01" * 32, result=b"{}", signature=b"\x00" * 65,
    deadline=100,
)  # fmt: skip


class _Sender:
    """A ``TxSender`` whose node answers each ``transact`` with the next of ``answers``."""

    def __init__(self, *answers: Exception | None) -> None:
        self.answers = list(answers)
        self.sent = 0

    def transact(self, to: Any, data: bytes) -> None:
        self.sent += 1
        answer = self.answers.pop(0)
        if answer is not None:
            raise answer


def _worker(sender: _Sender) -> JobWorker:
    return JobWorker(
        lambda: wire.Jobs(results=()),
        None,  # type: ignore[arg-type]
        sender,  # type: ignore[arg-type]
        head=lambda: 10,
        metrics=WorkerMetrics(),
        log=logging.LoggerAdapter(logging.getLogger("test"), {}),
    )


@pytest.mark.parametrize(
    ("answers", "sent", "delivered"),
    [
        ((None,), 1, 1),
        ((RPCError("max fee per gas less than block base fee"), None), 2, 1),
        ((RPCError("nonce too low"), RPCError("nonce too low")), 2, 0),
        ((ContractReverted("already fulfilled"),), 1, 0),
        ((RPCUnavailable("timed out"),), 1, 0),  # maybe in the pool: not sent twice
    ],
)
def test_a_result_is_sent_again_only_after_a_refusal(
    answers: tuple[Exception | None, ...], sent: int, delivered: int
) -> None:
    sender = _Sender(*answers)
    worker = _worker(sender)
    worker._deliver(RESULT)
    assert (sender.sent, worker.delivered) == (sent, delivered)


def test_a_result_past_its_deadline_is_not_sent() -> None:
    sender = _Sender()
    worker = _worker(sender)
    worker._deliver(dataclasses.replace(RESULT, deadline=10))  # the head is at block 10
    assert sender.sent == 0 and worker.delivered == 0
