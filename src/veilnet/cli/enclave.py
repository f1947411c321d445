"""``veil enclave serve``: the enclave process, the core behind its bytes-only interface.
Its worker host starts it (one per gatekeeper and worker); it is never run by hand in normal use."""

from __future__ import annotations

import logging

import click

__all__ = ["enclave"]


@click.group()
def enclave() -> None:
    """The enclave process (started by the worker host; see docs/architecture.md)."""


@enclave.command("serve")
@click.option(
    "--socket",
    "socket_path",
    required=True,
    help="Unix socket path to listen on (mode 0600); the host connects here.",
)
def serve(socket_path: str) -> None:
    """Serve the enclave interface on SOCKET until the host closes standard input.

    The host sends length-prefixed frames (veilnet.protocol.enclave): boot from sealed bytes,
    apply a block, answer an encrypted query, attest to a nonce, checkpoint, status. The process
    prints one ready line on stdout once it listens, and exits when its stdin reaches EOF.
    """
    from veilnet.enclave.server import serve as run

    logging.basicConfig(level=logging.WARNING, format="enclave %(levelname)s %(message)s")
    run(socket_path)
