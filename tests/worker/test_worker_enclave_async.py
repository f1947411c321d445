"""The host's event-loop path to its enclave process (``Enclave.query_async``): replies and
failures as on the threaded path, an agent's I/O carried off the loop, a cancelled call's
connection never reused."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from veilnet.errors import VeilnetError
from veilnet.protocol import enclave as wire
from veilnet.protocol.errors import NotReady
from veilnet.testing.adversary import dev_enclave_config
from veilnet.worker.enclave import Enclave, ProcessEnclave, _AsyncConnection
from veilnet.worker.errors import EnclaveUnavailable


@pytest.fixture(scope="module")
def enclave() -> Iterator[Enclave]:
    handle = Enclave(ProcessEnclave())
    handle.boot(wire.Boot(config=dev_enclave_config()))
    try:
        yield handle
    finally:
        handle.close()


def test_a_query_on_the_event_loop_gets_the_cores_typed_refusal(enclave: Enclave) -> None:
    async def ask() -> None:
        for _ in range(3):  # one connection, reused
            with pytest.raises(NotReady):
                await enclave.query_async(b"\x01" * 40)

    asyncio.run(ask())
    link = enclave.link
    assert isinstance(link, ProcessEnclave) and len(link._idle) == 1


def test_a_cancelled_call_drops_its_connection(enclave: Enclave) -> None:
    link = enclave.link
    assert isinstance(link, ProcessEnclave)

    async def cancel_then_ask() -> None:
        idle = list(link._idle)
        task = asyncio.create_task(enclave.query_async(b"\x01" * 40))
        await asyncio.sleep(0)  # the call is written; its reply is not read yet
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # a reply still in flight would answer the next call on that connection: it is gone
        assert all(connection not in link._idle for connection in idle)
        with pytest.raises(NotReady):
            await enclave.query_async(b"\x01" * 40)

    link._loop = None  # this test's loop is a new one
    link._idle.clear()
    asyncio.run(cancel_then_ask())
    assert len(link._idle) == 1


def _serve_one_call(path: str, io_body: bytes, ready: asyncio.Event) -> asyncio.Task[None]:
    """A stand-in enclave: answers one call with an I/O request first, then a result that
    carries what the host's I/O returned."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        frames = wire.FrameReader()
        frames.feed(await reader.read(1 << 16))
        call = wire.decode_frame(frames.next_frame() or b"")
        assert isinstance(call, wire.Call)
        writer.write(wire.frame(wire.IORequest(kind=wire.IO_TLS, body=io_body)))
        while (payload := frames.next_frame()) is None:
            frames.feed(await reader.read(1 << 16))
        result = wire.decode_frame(payload)
        assert isinstance(result, wire.IOResult)
        writer.write(wire.frame(wire.Result(body=result.body + call.body)))
        await writer.drain()
        writer.close()

    async def serve() -> None:
        server = await asyncio.start_unix_server(handle, path)
        ready.set()
        async with server:
            await asyncio.sleep(3600)

    return asyncio.create_task(serve())


def test_an_agents_io_is_carried_off_the_event_loop() -> None:
    seen: list[tuple[str, bytes, bool]] = []

    def io(kind: str, body: bytes) -> bytes:
        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:
            on_loop = False
        seen.append((kind, body, on_loop))
        return b"relayed:"

    async def run(path: str) -> None:
        ready = asyncio.Event()
        server = _serve_one_call(path, b"tls records", ready)
        await ready.wait()
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_unix_connection(_AsyncConnection, path)
        reply = await connection.call(wire.Call(op="query", body=b"q").to_bytes(), io)
        assert isinstance(reply, wire.Result) and reply.body == b"relayed:q"
        with pytest.raises(EnclaveUnavailable):  # the stand-in closed the connection
            await connection.call(wire.Call(op="query", body=b"q").to_bytes(), io)
        assert not connection.usable
        server.cancel()

    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(os.fspath(Path(tmp) / "enclave.sock")))
    assert seen == [(wire.IO_TLS, b"tls records", False)]


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_dead_enclave_is_unavailable_on_either_event_loop(loop: str) -> None:
    """The worker API runs on uvloop, which raises on a write to a closed connection where
    asyncio drops it: either way a gone enclave is ``EnclaveUnavailable`` (a 503), never a
    bare error (a 500), for the call that finds it gone and for every one after."""
    import signal

    import uvloop

    handle = Enclave(ProcessEnclave())
    handle.boot(wire.Boot(config=dev_enclave_config()))
    link = handle.link
    assert isinstance(link, ProcessEnclave)

    async def scenario() -> None:
        with pytest.raises(NotReady):  # one call: a pooled connection is left idle
            await handle.query_async(b"\x01" * 40)
        os.kill(link.pid, signal.SIGKILL)
        link._process.wait()
        for _ in range(10_000):  # loop turns, no clock: until the loop has seen the close
            if not link._idle or not link._idle[-1].usable:
                break
            await asyncio.sleep(0)
        for _ in range(3):
            with pytest.raises(EnclaveUnavailable):
                await handle.query_async(b"\x01" * 40)

    factory = uvloop.new_event_loop if loop == "uvloop" else asyncio.new_event_loop
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(scenario())
    finally:
        handle.close()


def test_a_call_that_ends_after_close_pools_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker shutting down closes its enclave while a query may still be in flight: that
    call's connection is closed when it ends, never put back for a next call, and a call
    made after ``close`` is refused at once."""
    link = ProcessEnclave()
    handle = Enclave(link)
    real_call = _AsyncConnection.call
    ended: list[_AsyncConnection] = []

    async def call_then_close(
        self: _AsyncConnection, payload: bytes, io: object
    ) -> wire.Result | wire.Failure:
        reply = await real_call(self, payload, io)  # type: ignore[arg-type]
        link.close()  # the host shuts down while this reply is on its way
        ended.append(self)
        return reply  # type: ignore[return-value]

    monkeypatch.setattr(_AsyncConnection, "call", call_then_close)

    async def ask() -> None:
        with pytest.raises(VeilnetError):  # the unbooted core's typed refusal
            await handle.query_async(b"\x01" * 40)
        assert link._idle == []  # its connection was closed, not put back
        with pytest.raises(EnclaveUnavailable):
            await handle.query_async(b"\x01" * 40)

    asyncio.run(ask())
    assert link._idle == [] and len(ended) == 1 and not ended[0].usable
    with pytest.raises(EnclaveUnavailable):
        handle.query(b"\x01" * 40)
