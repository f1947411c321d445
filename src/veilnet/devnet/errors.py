"""Errors of the devnet: a step of starting the one-process network failed.

Unavailable
└── DevnetStartFailed     the chain, a node, the gateway or the bootstrap did not come up
InvalidInput
└── DevnetConfigInvalid   the options do not describe a network that can be started
InternalError
└── DemoFailed            a step of ``veil devnet --demo`` did not give the expected result
"""

from __future__ import annotations

from veilnet.errors import InternalError, InvalidInput, Unavailable

__all__ = ["DemoFailed", "DevnetConfigInvalid", "DevnetStartFailed"]


class DevnetStartFailed(Unavailable):
    """The chain, a worker, the gateway or the network bootstrap did not come up."""

    code = "devnet_start_failed"


class DevnetConfigInvalid(InvalidInput):
    """The devnet options are inconsistent (e.g. no workers, an unknown chain kind)."""

    code = "devnet_config_invalid"


class DemoFailed(InternalError):
    """A step of the devnet demo did not produce the result it checks for."""

    code = "devnet_demo_failed"
