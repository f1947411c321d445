"""Errors of the enclave core; each leaves the core's state exactly as it was.
The ones whose codes reach clients are defined in ``veilnet.protocol.errors`` and named here.

InvalidInput
├── BlockRejected          a block does not extend the applied chain (number, parent hash)
├── CommandRejected        a command cannot be opened or is malformed (recorded, no state change)
│   └── CommandReplayed    its nonce is not above the sender's last one
├── InitInvalid            a contract's init arguments do not open or are not JSON (recorded)
├── QueryRejected          a query envelope, certificate or request is bad
└── CheckpointInvalid      a checkpoint does not unseal or does not belong to this worker
PolicyRejected
├── NotAuthorized          the caller may not do this (pause, upgrade, secrets)
├── ContractUnavailable    unknown, paused or not yet keyed contract
│   └── ContractPaused     the contract is paused by its controller
└── KeyEpochExpired        an envelope names a key epoch outside the kept window
Unavailable
└── NotReady               the core has no key for this yet (catching up, not in the cluster)
"""

from veilnet.errors import InvalidInput, PolicyRejected
from veilnet.protocol.errors import (
    BlockRejected,
    CheckpointInvalid,
    ContractPaused,
    ContractUnavailable,
    KeyEpochExpired,
    NotReady,
    QueryRejected,
)

__all__ = [
    "BlockRejected",
    "CheckpointInvalid",
    "CommandRejected",
    "CommandReplayed",
    "ContractPaused",
    "ContractUnavailable",
    "InitInvalid",
    "KeyEpochExpired",
    "NotAuthorized",
    "NotReady",
    "QueryRejected",
]


class CommandRejected(InvalidInput):
    """A command could not be opened, was replayed, or did not match its sender."""

    code = "runtime_command_rejected"


class CommandReplayed(CommandRejected):
    """The command's nonce is not above the last one applied for its sender."""

    code = "runtime_command_replayed"


class InitInvalid(InvalidInput):
    """A contract's init arguments do not open, or are not JSON."""

    code = "runtime_init_invalid"


class NotAuthorized(PolicyRejected):
    """The caller is not allowed to do this."""

    code = "runtime_not_authorized"
