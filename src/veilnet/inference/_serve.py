"""Runs an ASGI app under uvicorn in a background thread, for the devnet, benches and tests.
Readiness and shutdown are signalled through events: no sleeps, no polling of the port."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from veilnet.inference.errors import InferenceBackendUnavailable

__all__ = ["serve_in_thread"]

_START_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 30.0


class _Server(uvicorn.Server):
    """A uvicorn server that reports when its sockets are bound (or startup failed)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: Any = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self.ready.set()


@contextmanager
def serve_in_thread(app: Any, *, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` on ``host:port`` (0: an ephemeral port) and yield its base URL.

    The server stops and its thread is joined when the block exits.
    """
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
    server = _Server(config)
    thread = threading.Thread(target=server.run, name="veil-inference-gateway", daemon=True)
    thread.start()
    try:
        if not server.ready.wait(_START_TIMEOUT_S) or not server.started:
            raise InferenceBackendUnavailable("the gateway server did not start", host=host)
        bound_port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://{host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(_STOP_TIMEOUT_S)
