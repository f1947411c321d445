"""Block application: route each event to its system, hold back what lacks a key, end the block.
The handler tables of the systems are merged here once; a duplicate registration fails import."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from veilnet.protocol import chain
from veilnet.protocol import events as ev
from veilnet.protocol.chain import ChainBlock
from veilnet.runtime import (
    clusters,
    collateral,
    commitments,
    contracts,
    encryption,
    gatekeeper,
    jobs,
    lightclient,
    registry,
    rotation,
    sync,
)
from veilnet.runtime.context import CoreContext

Handler = Callable[[CoreContext, ev.BlockHeader, Any], None]


def _merge(*tables: Mapping[Any, Any]) -> dict[Any, Handler]:
    merged: dict[Any, Handler] = {}
    for table in tables:
        for key, handler in table.items():
            if key in merged:
                raise RuntimeError(f"two systems handle {key!r}")
            merged[key] = handler
    return merged


def _on_egress(core: CoreContext, header: ev.BlockHeader, event: ev.Egress) -> None:
    _own_landed(core, event.origin, event.seq)
    handler = EGRESS_HANDLERS.get(event.topic)
    if handler is not None:
        handler(core, header, event)


def _on_egress_rejected(
    core: CoreContext, header: ev.BlockHeader, event: ev.EgressRejected
) -> None:
    _own_landed(core, event.origin, event.seq)


def _own_landed(core: CoreContext, origin: bytes, seq: int) -> None:
    """A message of this worker's identity landed: number the next one after it. Only a core
    that replays without a post it made from I/O (``collateral``) was behind; each identity
    numbers its own stream, so no other replica is affected."""
    if origin == core.address and core.state.counters.get(origin, 0) <= seq:
        core.state.counters[origin] = seq + 1


EGRESS_HANDLERS: Final = _merge(
    registry.EGRESS_HANDLERS,
    gatekeeper.EGRESS_HANDLERS,
    clusters.EGRESS_HANDLERS,
    commitments.EGRESS_HANDLERS,
)
"""Egress topics the core reads back from the Bus, by topic."""

HANDLERS: Final = _merge(
    registry.HANDLERS,
    commitments.HANDLERS,
    gatekeeper.HANDLERS,
    rotation.HANDLERS,
    clusters.HANDLERS,
    contracts.HANDLERS,
    jobs.HANDLERS,
    {ev.Egress: _on_egress, ev.EgressRejected: _on_egress_rejected},
)
"""Chain events the core acts on, by record type (others are ignored)."""


def apply_block(core: CoreContext, raw: ChainBlock) -> None:
    """Prove one raw block (``lightclient``) and apply its events to ``core``; the caller wraps
    this in a savepoint.

    Raises:
        BlockRejected: the block does not extend the applied chain, carries no acceptable
            finality evidence, or its data does not prove out (nothing applied yet).
    """
    block = lightclient.prove_block(core.config, core.state.head, raw, certified=core.certified)
    header = block.header
    core.remember_execution(chain.decode_header(raw.header))
    core.query_snapshots.clear()
    previous = core.state.head
    core.now = header.timestamp
    registry.expire_endorsements(core, 0 if previous is None else previous.timestamp)
    for event in block.events:
        apply_event(core, header, event)
    core.state.head = header
    clusters.expire_epochs(core, header)
    gatekeeper.expire_masters(core, header)
    encryption.end_block(core, header, block.events)
    commitments.maybe_commit(core, header)
    collateral.post_fetched(core, header)
    commitments.maybe_heartbeat(core, header)
    jobs.tick(core, header)


def apply_event(core: CoreContext, header: ev.BlockHeader, event: ev.ChainEvent) -> None:
    cluster = cluster_of(core, event)
    if cluster is not None and (cluster in core.state.buffered or lacks_key(core, cluster, event)):
        core.state.buffered[cluster] = (*core.state.buffered.get(cluster, ()), (header, event))
        return
    _handle(core, header, event)


def _handle(core: CoreContext, header: ev.BlockHeader, event: ev.ChainEvent) -> None:
    handler = HANDLERS.get(type(event))
    if handler is not None:
        handler(core, header, event)
    while core.keys_arrived:
        drain_buffer(core, core.keys_arrived.pop(0))


def cluster_of(core: CoreContext, event: ev.ChainEvent) -> bytes | None:
    if isinstance(event, ev.ContractDeployed | ev.ClusterKeySet):
        return event.cluster_id
    contract_id = getattr(event, "contract_id", None)
    if contract_id is not None and contract_id in core.state.contracts:
        return core.state.contracts[contract_id].cluster
    return None


def lacks_key(core: CoreContext, cluster_id: bytes, event: ev.ChainEvent) -> bool:
    """A serving replica must wait for the key this event needs before applying it."""
    if not core.serves(cluster_id):
        return False
    cluster = core.state.clusters[cluster_id]
    epoch = event.epoch if isinstance(event, ev.ClusterKeySet) else cluster.current_epoch
    if isinstance(event, ev.ClusterKeySet) and epoch <= cluster.current_epoch:
        return False
    return epoch > 0 and core.keys.cluster_key(cluster_id, epoch) is None


def drain_buffer(core: CoreContext, cluster_id: bytes) -> None:
    """Apply events held back for want of a key, in order, until one still lacks its key
    (none while the cluster's state is awaited: a checked snapshot comes first)."""
    if sync.awaiting(core, cluster_id):
        return
    pending = core.state.buffered.pop(cluster_id, ())
    for index, (header, event) in enumerate(pending):
        if lacks_key(core, cluster_id, event):
            core.state.buffered[cluster_id] = pending[index:]
            return
        _handle(core, header, event)
