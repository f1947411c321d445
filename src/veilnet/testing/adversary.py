"""A malicious host for the enclave process: raw bytes on its socket, nothing else.
Tests in ``tests/adversarial/`` drive a real ``veil enclave serve`` through this, as an attacker."""

from __future__ import annotations

import socket
from typing import Any

from veilnet.protocol import enclave as wire
from veilnet.protocol.events import Block, BlockHeader
from veilnet.worker.enclave import Enclave, ProcessEnclave

__all__ = ["MaliciousHost", "dev_enclave_config", "empty_block"]


def dev_enclave_config(**overrides: Any) -> wire.EnclaveConfig:
    """A dev-TEE enclave configuration for a made-up network (chain 31337)."""
    values: dict[str, Any] = {
        "chain_id": 31337,
        "registry": b"\x03" * 20,
        "bus": b"\x04" * 20,
        "key_window_blocks": wire.DEFAULT_KEY_WINDOW_BLOCKS,
        "commitment_interval": 0,
        "heartbeat_interval": 0,
        "max_confidence_level": wire.DEFAULT_MAX_CONFIDENCE_LEVEL,
        "tee": "dev",
        "dev_network_seed": b"veilnet-adversary-network-seed-0",
    }
    values.update(overrides)
    return wire.EnclaveConfig(**values)


def empty_block(number: int, *, parent: bytes = bytes(32), timestamp: int = 1_767_225_600) -> Block:
    """A block with no events (any first block is accepted until the core checks its inputs)."""
    header = BlockHeader(
        number=number,
        hash=number.to_bytes(32, "big"),
        parent_hash=parent,
        timestamp=timestamp,
    )
    return Block(header=header, events=())


class MaliciousHost:
    """Starts a real enclave process and talks to it as a hostile host may: well-formed calls
    through ``enclave`` (the typed client), or any bytes at all through ``send_raw``."""

    def __init__(self) -> None:
        self.process = ProcessEnclave()
        self.enclave = Enclave(self.process)

    def close(self) -> None:
        self.enclave.close()

    def __enter__(self) -> MaliciousHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(self.process.socket_path)
        sock.settimeout(30)
        return sock

    def send_raw(self, data: bytes) -> wire.Failure | wire.Result | None:
        """Send ``data`` on a fresh connection; the reply (one frame), or None if the enclave
        closed the connection instead of answering."""
        with self.connect() as sock:
            sock.sendall(data)
            payload = wire.FrameReader().read_frame(sock.recv)
        if payload is None:
            return None
        reply = wire.decode_frame(payload)
        if not isinstance(reply, wire.Failure | wire.Result):
            raise AssertionError("the enclave answered with neither a result nor a failure")
        return reply
