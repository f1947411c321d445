"""The enclave process: a Unix socket speaking ``veilnet.protocol.enclave`` frames to its host.
One thread per connection; the process ends when its host closes its standard input."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import threading
from typing import TextIO

from veilnet._gc import freeze_loaded
from veilnet.codec import CodecError
from veilnet.enclave.service import EnclaveService
from veilnet.protocol import enclave as wire

__all__ = ["serve"]

_log = logging.getLogger("veilnet.enclave")


class _Connection:
    """One host connection: read calls, write replies, and carry a query's I/O requests."""

    def __init__(self, sock: socket.socket, service: EnclaveService) -> None:
        self._sock = sock
        self._service = service
        self._reader = wire.FrameReader()

    def _next(self) -> bytes | None:
        return self._reader.read_frame(self._sock.recv)

    def _io(self, request: wire.IORequest) -> wire.IOResult:
        self._sock.sendall(wire.frame(request))
        payload = self._next()
        if payload is None:
            return wire.IOResult(ok=False, code="enclave_io_failed", message="host went away")
        try:
            return wire.IOResult.from_bytes(payload)
        except CodecError:
            return wire.IOResult(ok=False, code="enclave_io_failed", message="not an I/O result")

    def run(self) -> None:
        with self._sock:
            while True:
                try:
                    payload = self._next()
                except (OSError, wire.FrameInvalid):
                    return
                if payload is None:
                    return
                reply = self._service.handle(payload, self._io)
                try:
                    self._sock.sendall(wire.frame_bytes(reply))
                except OSError:
                    return


def serve(socket_path: str, *, out: TextIO = sys.stdout, stdin: TextIO | None = sys.stdin) -> None:
    """Listen on ``socket_path`` (mode 0600) until the host closes ``stdin`` (or forever).

    Ctrl-C in a terminal, `timeout` or a service manager signal the whole process group: the
    enclave ignores SIGINT and SIGTERM and lets its host decide (the host still needs it for a
    last checkpoint before it closes stdin; a host that dies closes stdin too).
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    service = EnclaveService(after_boot=freeze_loaded)  # what the core loaded lives on too
    freeze_loaded()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(socket_path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        listener.bind(socket_path)
    finally:
        os.umask(old_umask)
    listener.listen(64)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=_Connection(sock, service).run, daemon=True).start()

    threading.Thread(target=accept, name="veil-enclave-accept", daemon=True).start()
    print(wire.READY_LINE, file=out, flush=True)
    try:
        if stdin is None:
            threading.Event().wait()
        else:
            while stdin.readline():  # the host never writes: EOF means it went away
                pass
    finally:
        stop.set()
        listener.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(socket_path)
        service.close()
