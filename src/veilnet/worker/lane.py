"""How a worker host hands its API's queries to the enclave: alone while the enclave is idle, in
batches while it is busy, and on further connections only while a query waits on I/O.

Theory of operation
-------------------
The enclave answers queries in Python, under one interpreter lock that every call into an
agent's wasm gives up and takes back. Two queries computing at once on two connections do not
run in parallel: they hand the lock to each other at each such call, and every hand-off wakes a
thread on another core (on the 2-core VM, 0.6 against 0.3 ms of enclave CPU per query at 32
clients). So the lane keeps one call computing at a time. A query that arrives while one runs
waits; when that call returns, all that waited (up to ``max_batch``) go as one ``queries`` call,
answered back to back on one thread while the core's data is still in the CPU caches. An idle
enclave gets each query alone, at once: batching never delays a query that has nothing to wait
for.

I/O is the exception. An agent waiting for an LLM or an HTTPS server holds its call for
seconds; while it waits it is not computing, so the next batch starts on another connection
(at most ``lanes`` calls in flight). The queries batched behind one that does I/O wait for it,
so the contracts whose agents asked for I/O are remembered and their queries go alone. The
lane decides only when and with which others a query reaches the enclave, never what it
answers: each query of a batch is checked, spent and answered as if it came alone.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
from collections.abc import Callable, Sequence
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
"""Contracts remembered as doing I/O (the oldest is forgotten first: at worst one more batch
waits behind its query once)."""


@dataclass(slots=True)
class _Waiting:
    request: bytes
    reply: asyncio.Future[bytes]
    contract: bytes | None = field(default=None)
    alone: bool = False


class QueryLane:
    """Queries to one enclave from one event loop (the API's): see the module docstring.

    Args:
        enclave: where the queries go.
        agent_io: a context giving the I/O handler for one call's agents (the host's).
        lanes: most calls in flight at once (``query_threads``).
        max_batch: most queries in one call (1: never batch).
        observe: told the number of queries of each call (a metric).
    """

    def __init__(
        self,
        enclave: Enclave,
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
        self._waiting: collections.deque[_Waiting] = collections.deque()
        self._in_flight = 0
        self._in_io = 0  # calls whose agent waits on the host's I/O (changed on I/O threads)
        self._count = threading.Lock()
        self._io_contracts: collections.OrderedDict[bytes, None] = collections.OrderedDict()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._observe = observe
        self.batches = 0
        """``queries`` calls made so far (for tests and metrics)."""

    @property
    def computing(self) -> int:
        """Calls in flight whose agent is not waiting on I/O."""
        return self._in_flight - self._in_io

    def does_io(self, contract: bytes) -> bool:
        """Whether ``contract``'s queries go alone (its agent asked for I/O before)."""
        return contract in self._io_contracts

    async def query(self, request: bytes) -> bytes:
        """The enclave's sealed answer to ``request``; raises what ``Enclave.query`` raises."""
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        if not self._waiting and self.computing == 0 and self._in_flight < self.lanes:
            self._in_flight += 1
            try:
                return await self._alone(request, None)
            finally:
                self._in_flight -= 1
                self._kick()
        contract = _contract_of(request)
        item = _Waiting(
            request,
            loop.create_future(),
            contract,
            alone=contract is None or self.max_batch == 1 or contract in self._io_contracts,
        )
        self._waiting.append(item)
        self._kick()
        return await item.reply

    def _kick(self) -> None:
        """Start what may start now: a query that goes alone whenever a lane is free, a batch
        of the others when nothing computes."""
        while self._waiting and self._in_flight < self.lanes:
            while self._waiting and self._waiting[0].reply.done():  # its client went away
                self._waiting.popleft()
            if not self._waiting:
                return
            alone = next((item for item in self._waiting if item.alone), None)
            if alone is not None:
                self._waiting.remove(alone)
                self._start([alone])
                continue
            if self.computing > 0:
                return
            batch: list[_Waiting] = []
            while self._waiting and len(batch) < self.max_batch:
                item = self._waiting.popleft()
                if not item.reply.done():
                    batch.append(item)
            if batch:
                self._start(batch)

    def _start(self, items: list[_Waiting]) -> None:
        assert self._loop is not None
        self._in_flight += 1
        self._loop.create_task(self._run(items))

    async def _run(self, items: list[_Waiting]) -> None:
        try:
            if len(items) == 1:
                item = items[0]
                try:
                    answer = await self._alone(item.request, item.contract)
                except asyncio.CancelledError:
                    item.reply.cancel()
                    raise
                except Exception as exc:  # handed to the query's caller
                    _settle(item.reply, exc)
                else:
                    _settle(item.reply, answer)
                return
            try:
                answers, used_io = await self._batch([item.request for item in items])
            except asyncio.CancelledError:
                for item in items:
                    item.reply.cancel()
                raise
            except Exception as exc:  # every query of the call hears it
                for item in items:
                    _settle(item.reply, exc)
                return
            for index in used_io:
                if 0 <= index < len(items):
                    self._learn(items[index].contract)
            for item, outcome in zip(items, answers, strict=True):
                _settle(item.reply, outcome)
        finally:
            self._in_flight -= 1
            self._kick()

    async def _alone(self, request: bytes, contract: bytes | None) -> bytes:
        if self._observe is not None:
            self._observe(1)
        asked: list[bool] = []
        try:
            with self._agent_io() as io:
                return await self._enclave.query_async(request, self._counted(io, asked))
        finally:
            if asked:
                self._learn(contract if contract is not None else _contract_of(request))

    async def _batch(
        self, requests: Sequence[bytes]
    ) -> tuple[list[bytes | VeilnetError], tuple[int, ...]]:
        self.batches += 1
        if self._observe is not None:
            self._observe(len(requests))
        with self._agent_io() as io:
            return await self._enclave.queries_async(requests, self._counted(io, []))

    def _counted(self, io: IOHandler, asked: list[bool]) -> IOHandler:
        """``io`` that counts its call as waiting while it runs (on an I/O thread), so that a
        batch may start meanwhile."""

        def carry_out(kind: str, body: bytes) -> bytes:
            asked.append(True)
            with self._count:
                self._in_io += 1
            self._wake()
            try:
                return io(kind, body)
            finally:
                with self._count:
                    self._in_io -= 1

        return carry_out

    def _wake(self) -> None:
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed: nothing waits anymore
                loop.call_soon_threadsafe(self._kick)

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
    """The contract a sealed query names in the clear (None: not a query; the enclave will say
    why when it goes alone)."""
    try:
        parsed = proto.QueryRequest.from_bytes(request, max_size=limits.MAX_QUERY_ENVELOPE)
    except (CodecError, VeilnetError, ValueError):
        return None
    return parsed.contract_id
