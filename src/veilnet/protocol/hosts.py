"""Host names of agents' ``http.fetch`` allowlists: one normal form for the SDK, the CLI and the
core, so that what an owner lists on chain is exactly what a request's URL must name."""

from __future__ import annotations

import ipaddress
from typing import Final

__all__ = ["MAX_HOST_NAME", "normalize_host"]

MAX_HOST_NAME: Final = 253
"""Longest DNS name (``Bus.set_egress`` takes at most this many bytes)."""


def normalize_host(host: str) -> str | None:
    """The allowlist form of ``host``: lower case, an IP address in its canonical text (IPv6
    without brackets); None if it is neither a DNS name nor an IP address."""
    name = host.strip().lower()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass
    if not name or len(name) > MAX_HOST_NAME or name.endswith("."):
        return None
    for label in name.split("."):
        if not 1 <= len(label) <= 63 or label[0] == "-" or label[-1] == "-":
            return None
        if not all(ch.isascii() and (ch.isalnum() or ch == "-") for ch in label):
            return None
    return name
