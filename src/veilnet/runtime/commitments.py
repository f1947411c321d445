"""Liveness and state commitments: heartbeats and keyed digests of each served cluster's state.
Posted from the worker identity at fixed block intervals, so replicas post for the same heights."""

from __future__ import annotations

import dataclasses

from veilnet.codec import abi_encode
from veilnet.protocol import events as ev
from veilnet.protocol import topics
from veilnet.protocol.errors import CheckpointStale
from veilnet.runtime import clusters, sync
from veilnet.runtime.context import CoreContext


def cluster_commitment(core: CoreContext, cluster_id: bytes) -> bytes | None:
    """Keyed hash over the cluster's state: its contract states by their digests, and its
    epochs, contract records, schedules and counters (``sync.commitment_over``). None without
    the key, or while this worker waits for the cluster's state."""
    state = core.state
    cluster = state.clusters.get(cluster_id)
    if cluster is None or state.head is None or sync.awaiting(core, cluster_id):
        return None
    key = core.keys.cluster_key(cluster_id, cluster.current_epoch)
    if key is None:
        return None
    return sync.live_commitment(core, key, cluster_id, state.head.number)


def maybe_commit(core: CoreContext, header: ev.BlockHeader) -> None:
    """Every ``commitment_interval`` blocks, each member posts its cluster commitment; the
    Registry compares the members' values for the height (``ReplicaDiverged``)."""
    interval = core.config.commitment_interval
    if interval <= 0 or header.number % interval != 0:
        return
    for cluster_id, cluster in core.state.clusters.items():
        # a member still holding events back (waiting for a key) is behind the others at
        # this height: its value would differ from theirs without anything being wrong
        if core.address not in cluster.members or cluster_id in core.state.buffered:
            continue
        commitment = cluster_commitment(core, cluster_id)
        if commitment is None:
            continue
        payload = abi_encode(
            ["bytes32", "uint64", "bytes32"], [cluster_id, header.number, commitment]
        )
        core.outbox.emit(core.keys.identity, core.address, topics.TOPIC_STATE_COMMITMENT, payload)
        sync.capture(core, cluster_id, header.number)


def maybe_heartbeat(core: CoreContext, header: ev.BlockHeader) -> None:
    """Registered workers prove liveness: the block they applied, signed by their identity."""
    interval = core.config.heartbeat_interval
    if interval <= 0 or header.number % interval != 0 or core.address not in core.state.workers:
        return
    payload = abi_encode(
        ["uint64", "bytes32", "uint64", "bytes32"],
        [header.number, header.hash, core.state.sealed_height, core.boot_id],
    )
    core.outbox.emit(core.keys.identity, core.address, topics.TOPIC_HEARTBEAT, payload)


def on_heartbeat_recorded(
    core: CoreContext, header: ev.BlockHeader, event: ev.HeartbeatRecorded
) -> None:
    """Our own heartbeat naming a newer checkpoint than ours: we were rolled back. Refuse."""
    if event.worker == core.address and event.sealed_height > core.state.sealed_height:
        raise CheckpointStale(
            f"this identity sealed a checkpoint at block {event.sealed_height}; this core "
            f"started from block {core.state.sealed_height}"
        )


def on_replica_diverged(
    core: CoreContext, header: ev.BlockHeader, event: ev.ReplicaDiverged
) -> None:
    """The Registry's verdict: at ``event.height`` this member committed to another state than
    a majority of its cluster. It gets no key from now on (the Registry zeroed its confidence
    without a ``WorkerEndorsed``), and if it is this worker it stops serving: its state is not
    the cluster's. A report without a majority (``majority`` empty) changes nothing."""
    if not any(event.majority):
        return
    _revoke(core, event.worker)
    known = core.state.divergences.get(event.worker, 0)
    core.state.divergences[event.worker] = max(known, event.height)


def on_worker_flagged(core: CoreContext, header: ev.BlockHeader, event: ev.WorkerFlagged) -> None:
    _revoke(core, event.worker)
    core.state.flagged.add(event.worker)


def _revoke(core: CoreContext, worker: bytes) -> None:
    """The Registry zeroed ``worker``'s confidence without a ``WorkerEndorsed`` (flagged,
    diverged): do the same, and key it out of its cluster if it was endorsed until now."""
    was_endorsed = core.endorsed(worker)
    info = core.state.workers.get(worker)
    if info is not None:
        core.state.workers[worker] = dataclasses.replace(info, confidence=0)
    if was_endorsed:
        clusters.on_member_unendorsed(core, worker)


EGRESS_HANDLERS = {topics.TOPIC_STATE_COMMITMENT: sync.on_state_commitment}
HANDLERS = {
    ev.HeartbeatRecorded: on_heartbeat_recorded,
    ev.WorkerFlagged: on_worker_flagged,
    ev.ReplicaDiverged: on_replica_diverged,
}
