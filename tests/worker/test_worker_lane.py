"""The host's query lane (``worker/lane.py``): alone when the enclave is idle, one batch of what
waited while it computed, another lane only while a query waits on I/O, and the contracts that
did I/O kept out of batches. The enclave here is a stand-in whose calls the test releases."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Sequence
from typing import Any, cast

import pytest

from veilnet.errors import VeilnetError
from veilnet.protocol import envelopes as proto
from veilnet.protocol.errors import QueryRejected
from veilnet.worker.enclave import Enclave, IOHandler
from veilnet.worker.errors import EnclaveUnavailable
from veilnet.worker.lane import QueryLane

A = b"\xaa" * 32
B = b"\xbb" * 32


def _request(contract: bytes, n: int) -> bytes:
    return proto.QueryRequest(
        contract_id=contract,
        certificate=proto.QueryCertificate(
            wallet=b"\x01" * 20,
            ephemeral_key=b"\x02" * 32,
            chain_id=1,
            expires_block=9,
            signature=b"\x03" * 65,
        ),
        session=b"session",
        request_id=bytes([n]) * 32,
        ciphertext=b"sealed",
    ).to_bytes()


def _answer(request: bytes) -> bytes:
    return b"answer:" + proto.QueryRequest.from_bytes(request).request_id[:1]


class StandIn:
    """Answers each call when the test says so; a request of a contract in ``io_contracts``
    asks the host for I/O first (on a thread, as the real link does), which blocks until
    ``io_done`` is set."""

    def __init__(self) -> None:
        self.calls: list[list[bytes]] = []
        self.release = asyncio.Event()
        self.release.set()
        self.io_contracts: set[bytes] = set()
        self.io_done = threading.Event()
        self.io_started = threading.Semaphore(0)
        self.io_finished = threading.Semaphore(0)
        self.fail_batch: Exception | None = None
        self.refuse: set[bytes] = set()
        self.in_flight = 0
        self.most_in_flight = 0

    async def _serve(self, request: bytes, io: IOHandler | None) -> bool:
        if proto.QueryRequest.from_bytes(request).contract_id in self.io_contracts:
            assert io is not None
            await asyncio.to_thread(io, "tls", b"")
            return True
        return False

    async def query_async(self, request: bytes, io: IOHandler | None = None) -> bytes:
        self.calls.append([request])
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self.release.wait()
            await self._serve(request, io)
            return _answer(request)
        finally:
            self.in_flight -= 1

    async def queries_async(
        self, requests: Sequence[bytes], io: IOHandler | None = None
    ) -> tuple[list[bytes | VeilnetError], tuple[int, ...]]:
        self.calls.append(list(requests))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self.release.wait()
            if self.fail_batch is not None:
                raise self.fail_batch
            answers: list[bytes | VeilnetError] = []
            used: list[int] = []
            for index, request in enumerate(requests):
                if await self._serve(request, io):
                    used.append(index)
                if request in self.refuse:
                    answers.append(QueryRejected("request id was already used"))
                else:
                    answers.append(_answer(request))
            return answers, tuple(used)
        finally:
            self.in_flight -= 1


def _lane(
    stand_in: StandIn, *, lanes: int = 4, max_batch: int = 32, sizes: list[float] | None = None
) -> QueryLane:
    def waiting_io(kind: str, body: bytes) -> bytes:
        stand_in.io_started.release()
        stand_in.io_done.wait(10)
        stand_in.io_finished.release()
        return b""

    return QueryLane(
        lambda: cast(Enclave, stand_in),
        lambda: contextlib.nullcontext(waiting_io),
        lanes=lanes,
        max_batch=max_batch,
        observe=None if sizes is None else sizes.append,
    )


async def _io_started(stand_in: StandIn, count: int = 1) -> None:
    """Until ``count`` calls' agents wait on their I/O (on I/O threads)."""
    for _ in range(count):
        assert await asyncio.to_thread(stand_in.io_started.acquire, True, 10)
    await _settle()


async def _waiting_on_io() -> tuple[StandIn, QueryLane, asyncio.Task[bytes]]:
    """A lane whose one call (a query of A) waits on its agent's I/O."""
    stand_in = StandIn()
    stand_in.io_contracts = {A}
    lane = _lane(stand_in)
    slow = asyncio.create_task(lane.query(_request(A, 1)))
    await _io_started(stand_in)
    return stand_in, lane, slow


async def _settle() -> None:
    for _ in range(20):  # let every ready task run
        await asyncio.sleep(0)


def _run(test: Any) -> None:
    asyncio.run(asyncio.wait_for(test(), 10))


def test_an_idle_enclave_gets_each_query_alone_at_once() -> None:
    async def test() -> None:
        stand_in = StandIn()
        lane = _lane(stand_in)
        assert await lane.query(_request(A, 1)) == b"answer:\x01"
        assert await lane.query(_request(A, 2)) == b"answer:\x02"
        assert stand_in.calls == [[_request(A, 1)], [_request(A, 2)]]
        assert lane.batches == 0

    _run(test)


def test_queries_that_wait_while_one_computes_go_as_batches_in_order() -> None:
    async def test() -> None:
        stand_in = StandIn()
        stand_in.release.clear()
        sizes: list[float] = []
        lane = _lane(stand_in, max_batch=3, sizes=sizes)
        first = asyncio.create_task(lane.query(_request(A, 1)))
        await _settle()
        rest = [asyncio.create_task(lane.query(_request(A, n))) for n in range(2, 7)]
        await _settle()
        assert stand_in.calls == [[_request(A, 1)]]  # the others wait: one call computes
        stand_in.release.set()
        answers = await asyncio.gather(first, *rest)
        assert answers == [b"answer:" + bytes([n]) for n in range(1, 7)]
        assert stand_in.calls[1:] == [
            [_request(A, 2), _request(A, 3), _request(A, 4)],
            [_request(A, 5), _request(A, 6)],
        ]
        assert stand_in.most_in_flight == 1
        assert lane.batches == 2
        assert sizes == [1, 3, 2]

    _run(test)


def test_each_query_of_a_batch_hears_its_own_outcome_and_a_failed_call_reaches_all() -> None:
    async def test() -> None:
        stand_in = StandIn()
        stand_in.refuse = {_request(A, 3)}
        stand_in.release.clear()
        lane = _lane(stand_in)
        first = asyncio.create_task(lane.query(_request(A, 1)))
        await _settle()
        waiting = [asyncio.create_task(lane.query(_request(A, n))) for n in (2, 3, 4)]
        await _settle()
        stand_in.release.set()
        await first
        two, three, four = await asyncio.gather(*waiting, return_exceptions=True)
        assert two == b"answer:\x02"
        assert isinstance(three, QueryRejected)
        assert four == b"answer:\x04"

        stand_in.release.clear()
        first = asyncio.create_task(lane.query(_request(A, 5)))
        await _settle()
        waiting = [asyncio.create_task(lane.query(_request(A, n))) for n in (6, 7)]
        await _settle()
        stand_in.fail_batch = EnclaveUnavailable("the enclave process closed the connection")
        stand_in.release.set()
        await first
        failed = await asyncio.gather(*waiting, return_exceptions=True)
        assert all(isinstance(outcome, EnclaveUnavailable) for outcome in failed)

    _run(test)


def test_a_query_waiting_on_io_lets_a_batch_start_and_its_contract_then_goes_alone() -> None:
    async def test() -> None:
        stand_in, lane, slow = await _waiting_on_io()
        assert lane.computing == 0  # waiting on I/O is not computing
        quick = [asyncio.create_task(lane.query(_request(B, n))) for n in (2, 3)]
        assert await asyncio.gather(*quick) == [b"answer:\x02", b"answer:\x03"]
        assert not slow.done()  # the batch did not wait for the LLM call
        stand_in.io_done.set()
        assert await slow == b"answer:\x01"
        assert lane.does_io(A) and not lane.does_io(B)

        # A's queries now go alone even while another call computes
        stand_in.io_contracts = set()
        stand_in.release.clear()
        busy = asyncio.create_task(lane.query(_request(B, 4)))
        await _settle()
        mixed = [
            asyncio.create_task(lane.query(request))
            for request in (_request(A, 5), _request(B, 6), _request(B, 7))
        ]
        await _settle()
        assert [_request(A, 5)] in stand_in.calls  # started at once, on a lane of its own
        stand_in.release.set()
        await asyncio.gather(busy, *mixed)
        assert stand_in.calls[-1] == [_request(B, 6), _request(B, 7)]

    _run(test)


def test_a_burst_for_a_contract_that_turns_out_to_do_io_is_not_batched_behind_it() -> None:
    """The first query of A goes alone and asks for I/O: A is known from that moment, so the
    queries of A that waited meanwhile go aside, one call each, at most ``lanes - 1`` at once,
    and the lane stays free for the others."""

    async def test() -> None:
        stand_in = StandIn()
        stand_in.io_contracts = {A}
        lane = _lane(stand_in, lanes=3)
        first = asyncio.create_task(lane.query(_request(A, 1)))
        await _io_started(stand_in)
        assert lane.does_io(A)
        burst = [asyncio.create_task(lane.query(_request(A, n))) for n in range(2, 7)]
        await _io_started(stand_in)  # one more aside: with the first, lanes - 1 in flight
        await _settle()
        assert lane.in_flight == 2
        other = await lane.query(_request(B, 9))  # the lane still answers at once
        assert other == b"answer:\t"
        stand_in.io_done.set()
        await asyncio.gather(first, *burst)
        assert all(len(call) == 1 for call in stand_in.calls)
        assert lane.batches == 0

    _run(test)


def test_io_inside_a_batch_marks_that_query_s_contract_only() -> None:
    async def test() -> None:
        stand_in = StandIn()
        stand_in.io_contracts = {B}
        stand_in.io_done.set()
        stand_in.release.clear()
        lane = _lane(stand_in)
        first = asyncio.create_task(lane.query(_request(A, 1)))
        await _settle()
        waiting = [
            asyncio.create_task(lane.query(request)) for request in (_request(A, 2), _request(B, 3))
        ]
        await _settle()
        stand_in.release.set()
        await asyncio.gather(first, *waiting)
        assert stand_in.calls[-1] == [_request(A, 2), _request(B, 3)]
        assert lane.does_io(B) and not lane.does_io(A)

    _run(test)


def test_lanes_bound_the_calls_in_flight_and_a_cancelled_query_is_left_out() -> None:
    async def test() -> None:
        stand_in = StandIn()
        stand_in.io_contracts = {A}
        lane = _lane(stand_in, lanes=3)
        lane._learn(A)  # as if A's agent had asked for I/O before
        waiting = [asyncio.create_task(lane.query(_request(A, n))) for n in (1, 2, 3)]
        await _io_started(stand_in, 2)
        assert stand_in.in_flight == 2  # the third waits: the lane keeps one connection
        stand_in.io_done.set()
        assert await asyncio.gather(*waiting) == [b"answer:\x01", b"answer:\x02", b"answer:\x03"]
        assert stand_in.most_in_flight == 2

        stand_in.release.clear()
        first = asyncio.create_task(lane.query(_request(B, 4)))
        await _settle()
        gone = asyncio.create_task(lane.query(_request(B, 5)))
        kept = [asyncio.create_task(lane.query(_request(B, n))) for n in (6, 7)]
        await _settle()
        gone.cancel()
        await _settle()
        stand_in.release.set()
        await asyncio.gather(first, *kept)
        assert stand_in.calls[-1] == [_request(B, 6), _request(B, 7)]

    _run(test)


def test_a_lane_of_one_query_per_call_never_batches() -> None:
    async def test() -> None:
        stand_in = StandIn()
        stand_in.release.clear()
        lane = _lane(stand_in, lanes=2, max_batch=1)
        tasks = [asyncio.create_task(lane.query(_request(A, n))) for n in (1, 2, 3)]
        await _settle()
        stand_in.release.set()
        await asyncio.gather(*tasks)
        assert all(len(call) == 1 for call in stand_in.calls)
        assert lane.batches == 0
        with pytest.raises(ValueError):
            _lane(stand_in, max_batch=65)

    _run(test)


def test_a_call_cancelled_while_its_agent_waits_on_io_leaves_the_counts_sound() -> None:
    """The caller goes away while its agent's I/O thread still runs: the call leaves the
    lane at once, and the thread ending later changes nothing; the next queries again
    compute one call at a time."""

    async def test() -> None:
        stand_in, lane, slow = await _waiting_on_io()
        slow.cancel()
        await _settle()
        assert lane.in_flight == 0 and lane.computing == 0
        stand_in.release.clear()
        first = asyncio.create_task(lane.query(_request(B, 2)))
        await _settle()
        rest = [asyncio.create_task(lane.query(_request(B, n))) for n in (3, 4)]
        await _settle()
        assert stand_in.in_flight == 1 and lane.computing == 1
        stand_in.io_done.set()  # the orphaned I/O thread ends
        assert await asyncio.to_thread(stand_in.io_finished.acquire, True, 10)
        await _settle()
        assert lane.computing == 1 and lane.in_flight == 1
        stand_in.release.set()
        await asyncio.gather(first, *rest)
        assert stand_in.calls[-1] == [_request(B, 3), _request(B, 4)]

    _run(test)


C = b"\xcc" * 32
D = b"\xdd" * 32


def test_while_a_batch_waits_on_io_its_contracts_go_aside_until_it_returns() -> None:
    """A batch's agent asks for I/O (which query did is known only when it returns): the
    queries of its contracts that come meanwhile go aside, one call each, while the others
    are batched on the lane as before; afterwards only the contract that did I/O stays
    aside."""

    async def test() -> None:
        stand_in = StandIn()
        stand_in.io_contracts = {C}
        stand_in.release.clear()
        lane = _lane(stand_in)
        busy = asyncio.create_task(lane.query(_request(B, 1)))
        await _settle()
        batched = [asyncio.create_task(lane.query(_request(c, n))) for c, n in ((C, 2), (B, 3))]
        await _settle()
        stand_in.release.set()
        await busy
        await _io_started(stand_in)  # the batch [C2, B3] waits on C2's I/O
        assert stand_in.calls[-1] == [_request(C, 2), _request(B, 3)]
        assert not lane.does_io(C)
        later = [asyncio.create_task(lane.query(_request(c, n))) for c, n in ((C, 4), (D, 5))]
        await _io_started(stand_in)  # C4 went aside, alone, and waits on its own I/O
        assert [_request(C, 4)] in stand_in.calls
        assert await later[1] == b"answer:\x05"  # D is served while both wait
        assert not any(task.done() for task in batched)
        stand_in.io_done.set()
        await asyncio.gather(*batched, later[0])
        assert lane.does_io(C) and not lane.does_io(B)
        assert not +lane._suspects

    _run(test)


def test_a_query_aside_whose_client_goes_away_is_not_carried_on() -> None:
    async def test() -> None:
        stand_in = StandIn()
        stand_in.io_contracts = {A}
        stand_in.release.clear()
        lane = _lane(stand_in)
        lane._learn(A)
        busy = asyncio.create_task(lane.query(_request(B, 1)))
        await _settle()
        gone = asyncio.create_task(lane.query(_request(A, 2)))
        await _settle()
        assert lane.in_flight == 2  # the query of A went aside at once
        gone.cancel()
        await _settle()
        assert lane.in_flight == 1  # its call was cancelled with it
        stand_in.release.set()
        await busy
        stand_in.io_done.set()

    _run(test)
