"""The host's decoded chain events as the core's event records, table-driven (same class names).
Tools and tests compare decoders with it; the core receives raw blocks and decodes them itself."""

from __future__ import annotations

import dataclasses
from typing import Any, Final, cast

from veilnet.chain import model as cm
from veilnet.crypto import Address
from veilnet.protocol import events as ev

__all__ = ["IGNORED_EVENTS", "to_core_block", "to_core_event"]

IGNORED_EVENTS: Final[frozenset[type[cm.ChainEvent]]] = frozenset(
    {
        cm.BusSet,
        cm.OwnershipTransferred,
        cm.OwnershipTransferStarted,
        cm.ParamsChanged,
        cm.FeesWithdrawn,
        cm.RotationThresholdSet,
        cm.DeployPolicySet,
        cm.RegistrationDepositSet,
        cm.ContractInitFailed,
    }
)
"""Chain events the core does not consume (governance bookkeeping, Bus parameters, fees and
deposits, deploy policies: the chain enforces them; a failed init: the core paused the agent
itself, and the chain's ContractPaused beside it is what it applies)."""


def _build_table() -> dict[type[cm.ChainEvent], tuple[type[ev.ChainEvent], tuple[str, ...]]]:
    table: dict[type[cm.ChainEvent], tuple[type[ev.ChainEvent], tuple[str, ...]]] = {}
    for chain_cls in cm.EVENT_TYPES:
        if chain_cls in IGNORED_EVENTS:
            continue
        core_cls = getattr(ev, chain_cls.__name__, None)
        if not (isinstance(core_cls, type) and issubclass(core_cls, ev.ChainEvent)):
            raise RuntimeError(f"no runtime record for chain event {chain_cls.__name__}")
        names = tuple(f.name for f in dataclasses.fields(cast(Any, core_cls)))
        chain_names = {f.name for f in dataclasses.fields(chain_cls)}
        missing = [n for n in names if n not in chain_names]
        if missing:
            raise RuntimeError(f"{chain_cls.__name__} lacks fields {missing} the core needs")
        table[chain_cls] = (core_cls, names)
    return table


_TABLE: Final = _build_table()


def _plain(value: Any) -> Any:
    if isinstance(value, Address):
        return value.raw
    return value


def to_core_event(event: cm.ChainEvent) -> ev.ChainEvent | None:
    """The runtime record for one chain event, or None for events the core ignores.

    Raises:
        TypeError: ``event`` is not a known chain event class (a bug in the caller).
    """
    entry = _TABLE.get(type(event))
    if entry is None:
        if type(event) in IGNORED_EVENTS:
            return None
        raise TypeError(f"unknown chain event {type(event).__name__}")
    core_cls, names = entry
    return core_cls(**{name: _plain(getattr(event, name)) for name in names})


def to_core_block(block: cm.Block) -> ev.Block:
    """The host's decoded view of a block in the core's records (what the core itself derives
    from the raw block; the host never hands the core this)."""
    header = ev.BlockHeader(
        number=block.header.number,
        hash=block.header.hash,
        parent_hash=block.header.parent_hash,
        timestamp=block.header.timestamp,
    )
    events = tuple(e for e in (to_core_event(item) for item in block.events) if e is not None)
    return ev.Block(header=header, events=events)
