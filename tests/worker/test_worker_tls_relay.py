"""The host's TLS relay for the core: one connection may last ``timeout_s`` in all, so a
server that trickles bytes (each receive well inside the limit) cannot hold an agent's
``http.fetch`` longer than the 10 seconds agents are promised."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from veilnet.protocol import enclave as wire
from veilnet.worker.errors import WorkerIOTimeout
from veilnet.worker.finality import TLSRelayHost


def test_a_trickling_server_times_out_in_total() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def trickle() -> None:
        conn, _ = listener.accept()
        with conn:
            while not stop.wait(0.05):  # a byte every 50 ms: each receive is quick
                try:
                    conn.sendall(b"x")
                except OSError:
                    return

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    relay = TLSRelayHost(timeout_s=0.5)
    request = wire.TLSRelay(conn=1, host="127.0.0.1", port=listener.getsockname()[1], data=b"hi")
    started = time.monotonic()

    def keep_reading() -> None:
        for _ in range(1000):
            assert relay.handle(wire.IO_TLS, request.to_bytes())

    try:
        with pytest.raises(WorkerIOTimeout):
            keep_reading()
        assert time.monotonic() - started < 5  # the whole connection, not each receive
    finally:
        stop.set()
        relay.close_all()
        listener.close()
        thread.join(timeout=5)
