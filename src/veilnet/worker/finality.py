"""Where a host gets the finality evidence its core asks for, and how it relays the core's TLS.
The host only fetches and carries bytes: the core alone decides whether a block is final.

``SequencerEvidence`` fetches the sequencer's signature of each block. ``QuorumEvidence`` asks
the core to certify blocks through its RPC quorum; ``TLSRelayHost`` carries the core's TLS
records to each endpoint over plain sockets (it sees only ciphertext).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from veilnet.chain.model import Block
from veilnet.chain.sequencer import SequencerClient
from veilnet.codec import CodecError
from veilnet.protocol import enclave as wire
from veilnet.protocol.chain import ChainBlock
from veilnet.worker.enclave import Enclave
from veilnet.worker.errors import WorkerIOFailed, WorkerIOTimeout

__all__ = ["EvidenceSource", "QuorumEvidence", "SequencerEvidence", "TLSRelayHost", "chain_block"]

_CONNECT_TIMEOUT_S = 10.0
_READ_TIMEOUT_S = 10.0
_RECV_BYTES = 1 << 16


class EvidenceSource(Protocol):
    def evidence(self, blocks: Sequence[Block]) -> dict[int, bytes]:
        """{number: evidence} for the blocks it could vouch for (a prefix may be all)."""

    def close(self) -> None: ...


def chain_block(block: Block, evidence: bytes) -> ChainBlock:
    """The raw block as the core receives it."""
    return ChainBlock(header=block.raw_header, receipts=block.raw_receipts, evidence=evidence)


class SequencerEvidence:
    """Signatures from the network's sequencer (``veil_sequencedBlocks``)."""

    def __init__(self, url: str) -> None:
        self._client = SequencerClient(url)

    def evidence(self, blocks: Sequence[Block]) -> dict[int, bytes]:
        if not blocks:
            return {}
        first, last = blocks[0].header.number, blocks[-1].header.number
        found = self._client.signatures(first, last)
        return {
            block.header.number: found[block.header.number][1]
            for block in blocks
            if block.header.number in found
        }

    def close(self) -> None:
        self._client.close()


class QuorumEvidence:
    """The core certifies the blocks itself; the evidence it then needs is empty."""

    def __init__(self, enclave: Callable[[], Enclave]) -> None:
        self._enclave = enclave  # the current one: a restarted enclave replaces the old
        self._relay = TLSRelayHost()

    def evidence(self, blocks: Sequence[Block]) -> dict[int, bytes]:
        if not blocks:
            return {}
        try:
            certified = self._enclave().certify(
                [block.header.number for block in blocks], self._relay.handle
            )
        finally:
            self._relay.close_all()
        return dict.fromkeys(certified, b"")

    def close(self) -> None:
        self._relay.close_all()


class TLSRelayHost:
    """Carries ``IO_TLS`` requests: ciphertext out on connection ``conn``, what arrives back.

    Args:
        timeout_s: how long one connection may last in all, from its connect to its last
            receive (agents' ``http.fetch`` uses ``HTTP_TIMEOUT_S``): a server that trickles
            bytes cannot hold it longer. Past it, the relay answers ``worker_io_timeout``.
    """

    def __init__(self, *, timeout_s: float = _READ_TIMEOUT_S) -> None:
        self._sockets: dict[int, socket.socket] = {}
        self._deadlines: dict[int, float] = {}
        self._lock = threading.Lock()
        self._timeout_s = timeout_s

    def handle(self, kind: str, body: bytes) -> bytes:
        if kind != wire.IO_TLS:
            raise WorkerIOFailed(f"this host relays only {wire.IO_TLS} for the core here")
        try:
            request = wire.TLSRelay.from_bytes(body)
        except CodecError as exc:
            raise WorkerIOFailed("not a TLS relay request") from exc
        try:
            sock = self._socket(request)
            left = self._deadlines[request.conn] - time.monotonic()
            if left <= 0:
                raise TimeoutError("the connection's time is up")
            sock.settimeout(left)
            if request.data:
                sock.sendall(request.data)
            return sock.recv(_RECV_BYTES)
        except TimeoutError as exc:
            self._drop(request.conn)
            raise WorkerIOTimeout(f"connection {request.conn} timed out") from exc
        except OSError as exc:
            self._drop(request.conn)
            raise WorkerIOFailed(f"connection {request.conn} failed: {type(exc).__name__}") from exc

    def _socket(self, request: wire.TLSRelay) -> socket.socket:
        with self._lock:
            sock = self._sockets.get(request.conn)
            if sock is None:
                sock = socket.create_connection(
                    (request.host, request.port), timeout=min(_CONNECT_TIMEOUT_S, self._timeout_s)
                )
                sock.settimeout(self._timeout_s)
                self._sockets[request.conn] = sock
                self._deadlines[request.conn] = time.monotonic() + self._timeout_s
            return sock

    def _drop(self, conn: int) -> None:
        with self._lock:
            sock = self._sockets.pop(conn, None)
            self._deadlines.pop(conn, None)
        if sock is not None:
            sock.close()

    def close_all(self) -> None:
        with self._lock:
            sockets, self._sockets = list(self._sockets.values()), {}
            self._deadlines.clear()
        for sock in sockets:
            sock.close()
