"""How a worker host hands its API's queries to the enclave: alone while the enclave is idle, in
batches while it is busy, and on connections of their own for agents that wait on I/O.

Theory of operation
-------------------
The enclave answers queries in Python, under one interpreter lock that every call into an
agent's wasm gives up and takes back. Two queries computing at once on two connections do not
run in parallel: they hand the lock to each other at each such call, and every hand-off wakes a
thread on another core (on the 2-core VM, 0.6 against 0.3 ms of enclave CPU per query at 32
clients). So the queries share one *lane*: a lane call starts only while no other computes
(one whose agent came back from I/O may overlap another for a while). A query that arrives
while one computes waits; when that call returns, or waits on I/O, all that waited (up
to ``max_batch``) go as one ``queries`` call, answered back to back on one thread while the
core's data is still in the CPU caches. An idle enclave gets each query alone, at once:
batching never delays a query that has nothing to wait for.

I/O is the exception. An agent waiting for an LLM or an HTTPS server holds its call for
seconds, and the queries batched behind it would wait as long. So a contract whose agent asked
for I/O is remembered (from the moment a call of its own asks, or from a batch's ``used_io``
when the batch returns), and its queries then go *aside*: one call each, on connections of
their own, at most ``lanes - 1`` at once so that the lane always has one (at most ``lanes``
calls in flight in all). A call counts as computing only while its agent is not waiting on
I/O. A batch whose agent asks for I/O makes all of its contracts suspects until it returns
(which query asked is known then, from ``used_io``): their new queries go aside meanwhile.
What this leaves: a batch that carries queries of a contract not yet known to do I/O (after
the host starts, or beyond the ``MAX_IO_CONTRACTS`` newest) waits for their I/O, once.

The lane decides only when and with which others a query reaches the enclave, never what it
answers: each query of a batch is checked, spent and answered as if it came alone.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from veilnet.codec import CodecError
from veilnet.errors import VeilnetError
from veilnet.protocol import envelopes as proto
from veilnet.protocol import limits
from veilnet.protocol.enclave import MAX_QUERY_BATCH
from veilnet.worker.enclave import Enclave, IOHandler

__all__ = ["QueryLane"]

MAX_IO_CONTRACTS = 4096
"""Contracts remembered as doing I/O (the oldest is forgotten first)."""


@dataclass(slots=True)
class _Waiting:
    request: bytes
    reply: asyncio.Future[bytes]
    contract: bytes | None


@dataclass(eq=False, slots=True)
class _Call:
    """One call in flight: on the lane, or aside; its query when it carries one; whether its
    agent waits on I/O now."""

    aside: bool
    request: bytes | None = None
    contracts: tuple[bytes | None, ...] = ()
    """A batch's contracts, in its order."""
    waiting_io: bool = False
    asked_io: bool = False
    suspected: bool = False
    """Its contracts are counted in the lane's suspects (a batch that asked for I/O)."""
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class QueryLane:
    """Queries to one enclave from one event loop (the API's): see the module docstring.

    Args:
        enclave: gives the enclave to call now (the host replaces a crashed one).
        agent_io: a context giving the I/O handler for one call's agents (the host's).
        lanes: most calls in flight at once (``query_threads``).
        max_batch: most queries in one call (1: never batch).
        observe: told the number of queries of each call (a metric).
    """

    def __init__(
        self,
        enclave: Callable[[], Enclave],
        agent_io: Callable[[], AbstractContextManager[IOHandler]],
        *,
        lanes: int,
        max_batch: int,
        observe: Callable[[float], None] | None = None,
    ) -> None:
        if lanes < 1 or not 1 <= max_batch <= MAX_QUERY_BATCH:
            raise ValueError(f"lanes must be >= 1 and max_batch 1 to {MAX_QUERY_BATCH}")
        self._enclave = enclave
        self._agent_io = agent_io
        self.lanes = lanes
        self.max_batch = max_batch
        self._observe = observe
        self._waiting: collections.deque[_Waiting] = collections.deque()
        self._calls: set[_Call] = set()
        self._io_contracts: collections.OrderedDict[bytes, None] = collections.OrderedDict()
        self._suspects: collections.Counter[bytes] = collections.Counter()
        """Contracts of the batches in flight that asked for I/O (which query did is known
        when the batch returns): until then their queries go aside too."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self.batches = 0
        """``queries`` calls made so far (for tests)."""

    @property
    def in_flight(self) -> int:
        return len(self._calls)

    @property
    def computing(self) -> int:
        """Lane calls in flight whose agent is not waiting on I/O."""
        return sum(1 for call in self._calls if not call.aside and not call.waiting_io)

    def does_io(self, contract: bytes) -> bool:
        """Whether ``contract``'s queries go aside (its agent asked for I/O before)."""
        return contract in self._io_contracts

    async def query(self, request: bytes) -> bytes:
        """The enclave's sealed answer to ``request``; raises what ``Enclave.query`` raises."""
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            # Each call's agent I/O runs on a thread of the loop's default executor (the
            # enclave link's ``to_thread``): as many threads as calls, or a call whose I/O
            # waits for a thread would count as computing and hold up the batches.
            loop.set_default_executor(
                ThreadPoolExecutor(self.lanes + 2, thread_name_prefix="veil-query-io")
            )
        # only contracts known to do I/O go aside: with none known, nothing is parsed here
        contract = _contract_of(request) if self._io_contracts else None
        aside = contract is not None and contract in self._io_contracts
        if not aside and not self._waiting and self.computing == 0 and self.in_flight < self.lanes:
            # idle: straight to the enclave, on the lane
            call = _Call(aside=False, request=request)
            self._calls.add(call)
            try:
                return await self._alone(call, request)
            finally:
                self._calls.discard(call)
                self._kick()
        if contract is None:
            contract = _contract_of(request)
        item = _Waiting(request, loop.create_future(), contract)
        self._waiting.append(item)
        self._kick()
        return await item.reply

    def _aside(self, item: _Waiting) -> bool:
        return self.max_batch == 1 or (
            item.contract is not None
            and (item.contract in self._io_contracts or item.contract in self._suspects)
        )

    def _kick(self) -> None:
        """Start what may start now: queries that go aside while their share of the lanes
        allows (in the order they came), then one batch of the others if no lane call
        computes."""
        while self._waiting and self._waiting[0].reply.done():  # its client went away
            self._waiting.popleft()
        # Calls aside and lane calls waiting on I/O leave one connection to the lane, unless
        # nothing is ever batched.
        cap = self.lanes if self.max_batch == 1 else max(1, self.lanes - 1)
        aside: list[_Waiting] = []
        if self.max_batch == 1 or self._io_contracts or self._suspects:  # else none goes aside
            aside = [item for item in self._waiting if self._aside(item)]
        for item in aside:
            if self.in_flight >= self.lanes or self.in_flight - self.computing >= cap:
                break
            self._waiting.remove(item)
            if not item.reply.done():
                self._start([item], aside=True)
        if not self._waiting or self.in_flight >= self.lanes or self.computing > 0:
            return
        batch: list[_Waiting] = []
        kept: collections.deque[_Waiting] = collections.deque()
        for item in self._waiting:
            if item.reply.done():
                continue
            if len(batch) < self.max_batch and not self._aside(item):
                batch.append(item)
            else:
                kept.append(item)
        self._waiting = kept
        if batch:
            self._start(batch, aside=False)

    def _start(self, items: list[_Waiting], *, aside: bool) -> None:
        assert self._loop is not None
        single = len(items) == 1
        call = _Call(
            aside=aside,
            request=items[0].request if single else None,
            contracts=() if single else tuple(item.contract for item in items),
        )
        self._calls.add(call)
        call.task = self._loop.create_task(self._run(call, items))  # kept: see _Call.task
        if single:  # its client went away: the call (an LLM's, say) need not go on
            task = call.task
            items[0].reply.add_done_callback(lambda reply: reply.cancelled() and task.cancel())

    async def _run(self, call: _Call, items: list[_Waiting]) -> None:
        outcomes: Sequence[bytes | Exception]
        used_io: tuple[int, ...] = ()
        try:
            try:
                if len(items) == 1:
                    outcomes = [await self._alone(call, items[0].request)]
                else:
                    outcomes, used_io = await self._batch(call, [i.request for i in items])
            except asyncio.CancelledError:
                for item in items:
                    item.reply.cancel()
                raise
            except Exception as exc:  # the call failed: each of its queries hears why
                outcomes = [exc] * len(items)
            for index in used_io:
                if 0 <= index < len(items):
                    self._learn(items[index].contract)
            for item, outcome in zip(items, outcomes, strict=True):
                _settle(item.reply, outcome)
        finally:
            self._calls.discard(call)
            if call.suspected:
                self._suspects.subtract(c for c in call.contracts if c is not None)
                self._suspects += collections.Counter()  # drops the counts at zero
            self._kick()

    async def _alone(self, call: _Call, request: bytes) -> bytes:
        if self._observe is not None:
            self._observe(1)
        with self._agent_io() as io:
            return await self._enclave().query_async(request, self._counted(io, call))

    async def _batch(
        self, call: _Call, requests: Sequence[bytes]
    ) -> tuple[list[bytes | VeilnetError], tuple[int, ...]]:
        self.batches += 1
        if self._observe is not None:
            self._observe(len(requests))
        with self._agent_io() as io:
            return await self._enclave().queries_async(requests, self._counted(io, call))

    def _counted(self, io: IOHandler, call: _Call) -> IOHandler:
        """``io`` that marks its call as waiting while it runs (on an I/O thread), so that a
        batch may start meanwhile; a call of one query teaches its contract at once."""

        def carry_out(kind: str, body: bytes) -> bytes:
            # A call's I/O requests come one at a time, so only this thread writes these
            # flags; the loop only reads them.
            if not call.asked_io:
                call.asked_io = True
                self._soon(self._first_io, call)
            call.waiting_io = True
            self._soon(self._kick)
            try:
                return io(kind, body)
            finally:
                call.waiting_io = False
                self._soon(self._kick)  # fewer calls wait on I/O: one aside may start

        return carry_out

    def _soon(self, callback: Callable[..., object], *args: object) -> None:
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed: nothing waits anymore
                loop.call_soon_threadsafe(callback, *args)

    def _first_io(self, call: _Call) -> None:
        """A call's agent asked for I/O the first time: a query alone teaches its contract;
        a batch makes all of its contracts suspects until it returns."""
        if call.request is not None:
            self._learn(_contract_of(call.request))
        elif call in self._calls:
            call.suspected = True
            self._suspects.update(c for c in call.contracts if c is not None)

    def _learn(self, contract: bytes | None) -> None:
        if contract is None:
            return
        self._io_contracts[contract] = None
        self._io_contracts.move_to_end(contract)
        while len(self._io_contracts) > MAX_IO_CONTRACTS:
            self._io_contracts.popitem(last=False)


def _settle(future: asyncio.Future[bytes], outcome: bytes | Exception) -> None:
    if future.done():
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _contract_of(request: bytes) -> bytes | None:
    """The contract a sealed query names in the clear (None: not a query, which the enclave
    refuses on its own, batched or not)."""
    try:
        parsed = proto.QueryRequest.from_bytes(request, max_size=limits.MAX_QUERY_ENVELOPE)
    except (CodecError, VeilnetError, ValueError):
        return None
    return parsed.contract_id
