"""The host's handle on its enclave: typed calls over ``veilnet.protocol.enclave`` frames.
``ProcessEnclave`` talks to ``veil enclave serve`` over a Unix socket; ``LocalEnclave`` runs the
same service in this process, for unit tests only. Either way only bytes cross.

Theory of operation
-------------------
``Enclave`` turns each operation into one ``Call`` and its reply into a record, raising the
error class that owns a ``Failure``'s code (the ones in ``veilnet.protocol.errors``, the
interface's own) or ``EnclaveFailed`` for any other code, with that code in its details. The
process link keeps a small pool of connections, one call in flight on each, so that queries run
while a block is applied; the enclave serializes what must be serialized.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import queue
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, cast

from veilnet.codec import CodecError, Record
from veilnet.errors import InternalError, VeilnetError
from veilnet.protocol import enclave as wire
from veilnet.protocol import errors as wire_errors
from veilnet.protocol.chain import ChainBlock
from veilnet.protocol.registration import RegistrationRequest
from veilnet.worker.errors import EnclaveUnavailable

__all__ = ["Enclave", "EnclaveFailed", "EnclaveLink", "IOHandler", "LocalEnclave", "ProcessEnclave"]

IOHandler = Callable[[str, bytes], bytes]
"""Carries out one I/O request of a query's agent (kind, JSON body) → JSON body; raises a
VeilnetError to refuse."""

START_TIMEOUT_S = 60.0
_KNOWN: dict[str, type[VeilnetError]] = {
    cls.code: cls
    for cls in (*(getattr(wire_errors, name) for name in wire_errors.__all__), wire.FrameInvalid)
}
"""The classes a ``Failure``'s code maps back to: every error of ``veilnet.protocol.errors``."""


class EnclaveFailed(InternalError):
    """The enclave refused or failed an operation with a code the host has no class for (its
    code is in ``details["enclave_code"]``)."""

    code = "worker_enclave_failed"


class EnclaveLink(Protocol):
    """Carries one call's payload to the enclave and its reply back."""

    def call(self, payload: bytes, io: IOHandler | None) -> Record:
        """The reply to one ``Call`` payload, decoded: a ``Result`` or a ``Failure``."""

    async def call_async(self, payload: bytes, io: IOHandler | None) -> Record:
        """``call`` from an event loop, which it never blocks (``io`` runs on a thread)."""

    def close(self) -> None: ...


def _io_result(io: IOHandler | None, request: wire.IORequest) -> wire.IOResult:
    if io is None:
        return wire.IOResult(ok=False, code="worker_io_unavailable", message="no I/O here")
    try:
        return wire.IOResult(ok=True, body=io(request.kind, request.body))
    except VeilnetError as exc:
        return wire.IOResult(ok=False, code=exc.code, message=exc.message)


class LocalEnclave:
    """The enclave service in this process, behind the same bytes (unit tests only)."""

    def __init__(self, service: Any) -> None:
        self.service = service
        """The ``veilnet.enclave.EnclaveService``; tests may read ``service.core``."""

    def call(self, payload: bytes, io: IOHandler | None) -> Record:
        return wire.decode_frame(self.service.handle(payload, lambda r: _io_result(io, r)))

    async def call_async(self, payload: bytes, io: IOHandler | None) -> Record:
        return await asyncio.to_thread(self.call, payload, io)

    def close(self) -> None:
        self.service.close()


class _SocketConnection:
    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.reader = wire.FrameReader()

    def call(self, payload: bytes, io: IOHandler | None) -> Record:
        self.sock.sendall(wire.frame_bytes(payload))
        while True:
            frame = self.reader.read_frame(self.sock.recv)
            if frame is None:
                raise EnclaveUnavailable("the enclave process closed the connection")
            reply = wire.decode_frame(frame)
            if not isinstance(reply, wire.IORequest):
                return reply  # a Result or a Failure: the caller reads it
            self.sock.sendall(wire.frame(_io_result(io, reply)))


class _AsyncConnection(asyncio.Protocol):
    """One connection to the enclave process on an event loop, one call in flight: the frames
    that arrive are queued and the call waits for them, so no thread blocks on a read."""

    def __init__(self) -> None:
        self._reader = wire.FrameReader()
        self._frames: collections.deque[bytes] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._transport: asyncio.Transport | None = None
        self._broken: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        try:
            while (frame := self._reader.next_frame()) is not None:
                self._frames.append(frame)
        except wire.FrameInvalid:
            self._break("the enclave process sent an oversized frame")
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._broken is None:
            self._broken = "the enclave process closed the connection"
        self._wake()

    def _break(self, why: str) -> None:
        self._broken = why
        if self._transport is not None:
            self._transport.close()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def close(self) -> None:
        self._break("closed")

    @property
    def usable(self) -> bool:
        return self._broken is None and not self._frames

    async def _next(self) -> bytes:
        while not self._frames:
            if self._broken is not None:
                raise EnclaveUnavailable(self._broken)
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._frames.popleft()

    def _write(self, data: bytes) -> None:
        # uvloop raises RuntimeError on a closed handle where asyncio drops the bytes: either
        # way the enclave is gone, which the caller must hear as such (503), not as a bug.
        if self._broken is not None or self._transport is None or self._transport.is_closing():
            raise EnclaveUnavailable(self._broken or "the enclave connection is closed")
        try:
            self._transport.write(data)
        except RuntimeError as exc:
            self._break("the enclave connection is closed")
            raise EnclaveUnavailable("the enclave connection is closed") from exc

    async def call(self, payload: bytes, io: IOHandler | None) -> Record:
        self._write(wire.frame_bytes(payload))
        while True:
            reply = wire.decode_frame(await self._next())
            if not isinstance(reply, wire.IORequest):
                return reply  # a Result or a Failure: the caller reads it
            # An agent's I/O (a TLS relay, llm.chat) may block for seconds: off the loop.
            result = await asyncio.to_thread(_io_result, io, reply)
            self._write(wire.frame(result))


class ProcessEnclave:
    """``veil enclave serve`` as a child process, reached over a Unix socket in a private
    directory. The child exits when this object closes its standard input (or this process
    dies), so an enclave never outlives its host."""

    def __init__(self, *, python: str = sys.executable, env: dict[str, str] | None = None) -> None:
        self._dir = tempfile.mkdtemp(prefix="veil-enclave-")
        os.chmod(self._dir, 0o700)
        self.socket_path = str(Path(self._dir) / "enclave.sock")
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [python, "-m", "veilnet.enclave", "serve", "--socket", self.socket_path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, **(env or {})},
            text=True,
        )
        self._pool: queue.SimpleQueue[_SocketConnection] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._connections: list[_SocketConnection] = []
        # Connections of the one event loop that calls ``call_async`` (the worker API's).
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: list[_AsyncConnection] = []
        self._closed = False  # a call that ends after ``close`` pools nothing
        self._wait_ready()

    @property
    def pid(self) -> int:
        return self._process.pid

    def _wait_ready(self) -> None:
        stdout = self._process.stdout
        assert stdout is not None
        ready, _, _ = select.select([stdout], [], [], START_TIMEOUT_S)
        line = stdout.readline() if ready else ""
        if line.strip() != wire.READY_LINE:
            self.close()
            raise EnclaveUnavailable(
                "the enclave process did not start", exit_code=self._process.poll()
            )

    def _connection(self) -> _SocketConnection:
        if self._closed:
            raise EnclaveUnavailable("the enclave was closed")
        try:
            return self._pool.get_nowait()
        except queue.Empty:
            pass
        if self._process.poll() is not None:
            raise EnclaveUnavailable("the enclave process is gone", exit_code=self._process.poll())
        try:
            connection = _SocketConnection(self.socket_path)
        except OSError as exc:
            raise EnclaveUnavailable("cannot reach the enclave process") from exc
        with self._lock:
            self._connections.append(connection)
        return connection

    def call(self, payload: bytes, io: IOHandler | None) -> Record:
        connection = self._connection()
        try:
            reply = connection.call(payload, io)
        except (OSError, wire.FrameInvalid, CodecError) as exc:
            with contextlib.suppress(OSError):
                connection.sock.close()
            raise EnclaveUnavailable("the enclave connection broke") from exc
        except EnclaveUnavailable:
            with contextlib.suppress(OSError):
                connection.sock.close()
            raise
        with self._lock:
            if not self._closed:
                self._pool.put(connection)
                return reply
        with contextlib.suppress(OSError):
            connection.sock.close()
        return reply

    async def call_async(self, payload: bytes, io: IOHandler | None) -> Record:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._loop is None:
                self._loop = loop
        if loop is not self._loop:  # connections belong to one loop; another takes a thread
            return await asyncio.to_thread(self.call, payload, io)
        connection = None
        while self._idle and connection is None:
            candidate = self._idle.pop()
            if candidate.usable:
                connection = candidate
            else:  # its enclave end closed while it waited
                candidate.close()
        if connection is None:
            connection = await self._open_async(loop)
        try:
            reply = await connection.call(payload, io)
        except (OSError, wire.FrameInvalid, CodecError) as exc:
            connection.close()
            raise EnclaveUnavailable("the enclave connection broke") from exc
        except BaseException:  # cancelled mid-call, or the enclave went away: never reused
            connection.close()
            raise
        if connection.usable and not self._closed:
            self._idle.append(connection)
        else:
            connection.close()
        return reply

    async def _open_async(self, loop: asyncio.AbstractEventLoop) -> _AsyncConnection:
        if self._closed:
            raise EnclaveUnavailable("the enclave was closed")
        if self._process.poll() is not None:
            raise EnclaveUnavailable("the enclave process is gone", exit_code=self._process.poll())
        try:
            _, connection = await loop.create_unix_connection(_AsyncConnection, self.socket_path)
        except OSError as exc:
            raise EnclaveUnavailable("cannot reach the enclave process") from exc
        return connection

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.sock.close()
            self._connections.clear()
            loop, idle, self._idle = self._loop, self._idle, []
        if loop is not None and not loop.is_closed():
            for channel in idle:
                with contextlib.suppress(RuntimeError):  # the loop stopped meanwhile
                    loop.call_soon_threadsafe(channel.close)
        if self._process.stdin is not None:
            with contextlib.suppress(OSError):
                self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()
        shutil.rmtree(self._dir, ignore_errors=True)


class Enclave:
    """Typed operations of the enclave interface over a link (process or local)."""

    def __init__(self, link: EnclaveLink) -> None:
        self.link = link

    def close(self) -> None:
        self.link.close()

    def _call(self, op: str, body: bytes = b"", io: IOHandler | None = None) -> bytes:
        return self._unwrap(self.link.call(wire.Call(op=op, body=body).to_bytes(), io))

    @staticmethod
    def _unwrap(reply: Record) -> bytes:
        if isinstance(reply, wire.Result):
            return reply.body
        if not isinstance(reply, wire.Failure):
            raise EnclaveFailed("the enclave answered with neither a result nor a failure")
        cls = _KNOWN.get(reply.code)
        if cls is not None:
            raise cls(reply.message, **reply.details_dict())
        raise EnclaveFailed(reply.message, enclave_code=reply.code)

    def hello(self) -> wire.Hello:
        return wire.Hello.from_bytes(self._call(wire.OP_HELLO))

    def boot(self, request: wire.Boot) -> wire.Booted:
        return wire.Booted.from_bytes(self._call(wire.OP_BOOT, request.to_bytes()))

    def fetch_collateral(self, io: IOHandler) -> wire.CollateralFetched:
        """A gatekeeper's core fetches the collateral it must judge from the network's PCCS;
        ``io`` relays its TLS bytes (kind ``IO_TLS``)."""
        return wire.CollateralFetched.from_bytes(self._call(wire.OP_COLLATERAL, b"", io))

    def snapshot(self, joiner: bytes) -> bytes:
        """This member's newest capture of ``joiner``'s cluster, sealed to the joiner."""
        return self._call(wire.OP_SNAPSHOT, joiner)

    def sync(self, snapshot: bytes) -> wire.Synced:
        """Hand the core a member's snapshot (it checks it against the cluster's verdict)."""
        return wire.Synced.from_bytes(
            self._call(wire.OP_SYNC, snapshot), max_size=wire.MAX_FRAME_BYTES
        )

    def certify(self, numbers: list[int], io: IOHandler) -> dict[int, bytes]:
        """Under ``rpc-quorum``: the block hashes the core certified through an RPC quorum;
        ``io`` relays its TLS bytes (kind ``IO_TLS``)."""
        body = self._call(wire.OP_CERTIFY, wire.Certify(numbers=tuple(numbers)).to_bytes(), io)
        found = wire.Certified.from_bytes(body)
        return dict(zip(found.numbers, found.hashes, strict=True))

    def apply_block(self, block: ChainBlock) -> wire.Applied:
        body = self._call(wire.OP_APPLY_BLOCK, block.to_bytes())
        return wire.Applied.from_bytes(body, max_size=wire.MAX_FRAME_BYTES)

    def query(self, request: bytes, io: IOHandler | None = None) -> bytes:
        return self._call(wire.OP_QUERY, request, io)

    async def query_async(self, request: bytes, io: IOHandler | None = None) -> bytes:
        """``query`` from the API's event loop: no thread waits on the enclave meanwhile."""
        payload = wire.Call(op=wire.OP_QUERY, body=request).to_bytes()
        return self._unwrap(await self.link.call_async(payload, io))

    def queries(
        self, requests: Sequence[bytes], io: IOHandler | None = None
    ) -> tuple[list[bytes | VeilnetError], tuple[int, ...]]:
        """Several queries in one ``queries`` call: each one's sealed answer or the error it
        would have raised alone, in order, and the positions of those whose agent asked for
        I/O. Raises only for the call as a whole (``FrameInvalid``: more than
        ``MAX_QUERY_BATCH``, or none)."""
        body = self._call(wire.OP_QUERIES, wire.QueryBatch(requests=tuple(requests)).to_bytes(), io)
        return self._answers(body, len(requests))

    async def queries_async(
        self, requests: Sequence[bytes], io: IOHandler | None = None
    ) -> tuple[list[bytes | VeilnetError], tuple[int, ...]]:
        """``queries`` from the API's event loop."""
        batch = wire.QueryBatch(requests=tuple(requests)).to_bytes()
        payload = wire.Call(op=wire.OP_QUERIES, body=batch).to_bytes()
        return self._answers(self._unwrap(await self.link.call_async(payload, io)), len(requests))

    @classmethod
    def _answers(
        cls, body: bytes, count: int
    ) -> tuple[list[bytes | VeilnetError], tuple[int, ...]]:
        try:
            found = wire.QueryAnswers.from_bytes(body, max_size=wire.MAX_FRAME_BYTES)
            replies = [wire.decode_frame(reply) for reply in found.replies]
        except CodecError as exc:
            raise EnclaveFailed("the enclave answered a batch with malformed replies") from exc
        if len(replies) != count:
            raise EnclaveFailed("the enclave answered another number of queries")
        answers: list[bytes | VeilnetError] = []
        for reply in replies:
            try:
                answers.append(cls._unwrap(reply))
            except VeilnetError as exc:
                answers.append(exc)
        return answers, found.used_io

    def attest(self, nonce: bytes) -> wire.Attested:
        return wire.Attested.from_bytes(self._call(wire.OP_ATTEST, nonce))

    def checkpoint(self) -> wire.Checkpointed:
        body = self._call(wire.OP_CHECKPOINT)
        return wire.Checkpointed.from_bytes(body, max_size=wire.MAX_FRAME_BYTES)

    def registration(self, operator: bytes, *, api_url: str = "") -> RegistrationRequest:
        body = operator + api_url.encode()  # the core refuses what is not ASCII
        return RegistrationRequest.from_bytes(self._call(wire.OP_REGISTRATION, body))

    def register_transaction(self, request: wire.RegisterTransaction) -> wire.SignedRegistration:
        """The identity's ``register_worker`` transaction, built and signed in the enclave."""
        body = self._call(wire.OP_REGISTER_TRANSACTION, request.to_bytes())
        return wire.SignedRegistration.from_bytes(body)

    def status(self) -> wire.Status:
        return wire.Status.from_bytes(self._call(wire.OP_STATUS))

    def contract(self, contract_id: bytes) -> wire.ContractStatus:
        return wire.ContractStatus.from_bytes(self._call(wire.OP_CONTRACT, contract_id))

    def jobs(self, io: IOHandler | None = None) -> wire.Jobs:
        """Run the queued job requests; their results, signed by the contract keys."""
        return wire.Jobs.from_bytes(
            self._call(wire.OP_JOBS, b"", io), max_size=wire.MAX_FRAME_BYTES
        )


def _hex(value: object) -> str:
    """JSON has no bytes: a transaction's ``data`` travels as 0x-hex, which eth-account reads."""
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    raise TypeError(f"{type(value).__name__} is not part of a transaction")
