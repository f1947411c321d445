"""Clusters: membership, key epochs derived from the master key, shares wrapped to members.
Gatekeepers derive and wrap; members unwrap; every replica advances the same egress counters."""

from __future__ import annotations

import dataclasses
from typing import Any, Final

from veilnet.codec import CodecError, abi_encode, decode, encode
from veilnet.crypto import Binding, SecretKey
from veilnet.protocol import envelopes as proto
from veilnet.protocol import events as ev
from veilnet.protocol import topics
from veilnet.runtime import contracts, encryption, sync
from veilnet.runtime.context import CoreContext
from veilnet.runtime.records import ClusterInfo, EpochInfo


def cluster_binding(core: CoreContext, member: bytes, cluster_id: bytes, epoch: int) -> Binding:
    return Binding(
        chain_id=core.config.chain_id,
        target=member + cluster_id,
        epoch=epoch,
        purpose=proto.PURPOSE_CLUSTER_KEY,
    )


def on_cluster_created(core: CoreContext, header: ev.BlockHeader, event: ev.ClusterCreated) -> None:
    if event.cluster_id in core.state.clusters:
        return
    core.state.clusters[event.cluster_id] = ClusterInfo(owner=event.owner, suite=event.suite)
    if core.state.master is not None:
        key_cluster(core, event.cluster_id)


def key_cluster(
    core: CoreContext,
    cluster_id: bytes,
    *,
    rotation: int | None = None,
    master: SecretKey | None = None,
    origin: bytes | None = None,
) -> None:
    """Gatekeepers: publish the cluster key of the next epoch, derived from a master key,
    and wrap it to every member. Others only advance that master origin's counter.

    Without ``rotation`` the current master is used; with it, the given (new) master.
    """
    state = core.state
    if rotation is None:
        if state.master is None:
            return
        rotation, origin, master = (
            state.master.rotation,
            state.master.key_address,
            core.master_key(),
        )
    if origin is None:
        raise ValueError("a new master's origin is needed to key a cluster with it")
    cluster = state.clusters[cluster_id]
    epoch = max([cluster.current_epoch, *cluster.master_rotation]) + 1
    cluster = state.clusters[cluster_id] = dataclasses.replace(
        cluster, master_rotation={**cluster.master_rotation, epoch: rotation}
    )
    payload = b""
    if master is not None:
        key = master.child("cluster", cluster_id, epoch)
        payload = abi_encode(
            ["bytes32", "uint64", "address", "bytes"],
            [cluster_id, epoch, key.address.hex, cluster.published_key(key)],
        )
    core.outbox.emit(master, origin, topics.TOPIC_CLUSTER_KEY, payload)
    for member in cluster.members:
        share_cluster_key(core, cluster_id, member, epochs=[epoch], master=master, origin=origin)


def keyed_for_rotation(core: CoreContext, rotation: int) -> bool:
    return any(rotation in c.master_rotation.values() for c in core.state.clusters.values())


SHARES_PER_MESSAGE: Final = {32: 72, 1216: 6}
"""Wrapped keys per share message, by the recipient's key length (X25519, ML-KEM-768+X25519):
an entry is about 107 or 1195 bytes, so a message stays under ``limits.MAX_EGRESS_PAYLOAD``
(checked by a test with real envelopes)."""


def share_cluster_key(
    core: CoreContext,
    cluster_id: bytes,
    member: bytes,
    *,
    epochs: list[int],
    master: SecretKey | None = None,
    origin: bytes | None = None,
) -> None:
    """Gatekeepers: wrap cluster keys of ``epochs`` to a member, sent from the current master
    origin unless another (new) one is given: ``[cluster, member, shares, part, parts]``, split
    into as many messages as the member's key type needs. A member that joined a cluster with
    history (``sync``) gets no epoch from before its join.

    How many messages is a function of replicated state only (the epochs, the member's key),
    so every replica numbers the master origin alike, holder of the master or not.
    """
    state = core.state
    if origin is None:
        if state.master is None:
            return
        origin, master = state.master.key_address, core.master_key()
    worker = state.workers.get(member)
    # a member not endorsed at this block (never, no longer, flagged for running twice, its
    # measurement revoked) or without an encryption key yet still gets its message, so the
    # master origin's numbering stays whole, but no key in it
    if worker is None or not worker.encryption_key or not core.endorsed(member):
        epochs = []
    syncing = state.syncing.get(member)
    if syncing is not None and syncing.cluster == cluster_id:
        epochs = [e for e in epochs if e >= syncing.from_epoch]
    per_message = SHARES_PER_MESSAGE.get(len(worker.encryption_key), 1) if worker else 1
    parts = [epochs[i : i + per_message] for i in range(0, len(epochs), per_message)] or [[]]
    cluster = state.clusters[cluster_id]
    for part, chunk in enumerate(parts):
        if master is None:
            core.outbox.emit(None, origin, topics.TOPIC_CLUSTER_KEY_SHARE, b"")
            continue
        shares = []
        for epoch in chunk:
            source = core.keys.masters.get(cluster.master_rotation.get(epoch, -1))
            if source is None:
                continue
            key = source.child("cluster", cluster_id, epoch)
            binding = cluster_binding(core, member, cluster_id, epoch)
            wrapped = encryption.wrap_for(core, member, key, binding)
            if wrapped is not None:  # always, for a member that made it past the filter above
                shares.append([epoch, *wrapped])
        payload = encode([cluster_id, member, shares, part, len(parts)])
        core.outbox.emit(master, origin, topics.TOPIC_CLUSTER_KEY_SHARE, payload)


def _set_worker_cluster(core: CoreContext, worker: bytes, cluster_id: bytes | None) -> None:
    info = core.state.workers.get(worker)
    if info is not None:
        core.state.workers[worker] = dataclasses.replace(info, cluster=cluster_id)


def on_worker_added(
    core: CoreContext, header: ev.BlockHeader, event: ev.ClusterWorkerAdded
) -> None:
    state = core.state
    cluster = state.clusters.get(event.cluster_id)
    if cluster is None or event.worker in cluster.members:
        return
    cluster = state.clusters[event.cluster_id] = dataclasses.replace(
        cluster, members=(*cluster.members, event.worker)
    )
    _set_worker_cluster(core, event.worker, event.cluster_id)
    if cluster.has_history and cluster.master_rotation:
        # what was sent before it joined stays closed to it: the cluster moves to a new epoch,
        # and the joiner gets the state from a member as a snapshot (``sync``)
        sync.on_joined(core, header, event.worker, event.cluster_id)
        rekey(core, event.cluster_id)
    else:
        share_every_epoch(core, event.cluster_id, event.worker)


def share_every_epoch(core: CoreContext, cluster_id: bytes, member: bytes) -> None:
    """Gatekeepers: every keyed epoch of the cluster a member may have, to one that has none
    (it joined, or its first encryption key landed)."""
    cluster = core.state.clusters.get(cluster_id)
    if cluster is not None and cluster.master_rotation:
        share_cluster_key(core, cluster_id, member, epochs=sorted(cluster.master_rotation))


def on_worker_removed(
    core: CoreContext, header: ev.BlockHeader, event: ev.ClusterWorkerRemoved
) -> None:
    state = core.state
    cluster = state.clusters.get(event.cluster_id)
    if cluster is None or event.worker not in cluster.members:
        return
    state.clusters[event.cluster_id] = dataclasses.replace(
        cluster, members=tuple(m for m in cluster.members if m != event.worker)
    )
    _set_worker_cluster(core, event.worker, None)
    sync.on_left(core, event.worker)
    if event.worker == core.address:
        stop_serving(core, event.cluster_id)
    # one that lost its eligibility was keyed out when it did (the Registry's eviction, which
    # follows, would otherwise cost a second epoch)
    if core.endorsed(event.worker):
        rekey(core, event.cluster_id)


def rekey(core: CoreContext, cluster_id: bytes) -> None:
    """Move a keyed cluster to a new epoch, wrapped only to the members endorsed now: whoever
    left (removed, re-registered, de-endorsed, revoked) never learns it, and contract keys
    follow when it lands (``on_cluster_key_set``)."""
    cluster = core.state.clusters.get(cluster_id)
    if core.state.master is not None and cluster is not None and cluster.master_rotation:
        key_cluster(core, cluster_id)


def stop_serving(core: CoreContext, cluster_id: bytes) -> None:
    """This worker left a cluster (or may no longer hold its keys): forget the keys of every
    epoch keyed so far, drop the contract states and what was held back."""
    state = core.state
    cluster = state.clusters.get(cluster_id)
    if cluster is None:
        return
    for held, epoch in list(core.keys.cluster_keys):
        if held == cluster_id and epoch <= cluster.current_epoch:
            core.keys.forget_cluster_epoch(cluster_id, epoch)
    for contract_id, contract in state.contracts.items():
        if contract.cluster == cluster_id:
            state.runtimes.pop(contract_id, None)
            core.agents.pop(contract_id, None)
    state.buffered.pop(cluster_id, None)
    core.query_snapshots.pop(cluster_id, None)


def on_member_unendorsed(core: CoreContext, worker: bytes) -> None:
    """A member lost its endorsement (confidence 0, flagged, re-registered): re-key its
    cluster without it; if it is this worker, stop serving."""
    info = core.state.workers.get(worker)
    cluster_id = None if info is None else info.cluster
    if cluster_id is None:
        return
    if worker == core.address:
        stop_serving(core, cluster_id)
    rekey(core, cluster_id)


def on_measurement_revoked(core: CoreContext, measurement: bytes) -> None:
    """Members running a revoked measurement hold no key from now on: every cluster with one
    moves to a new epoch without them (in cluster-id order, the same on every replica)."""
    state = core.state
    for cluster_id in sorted(state.clusters):
        cluster = state.clusters[cluster_id]
        running = [
            m
            for m in cluster.members
            if m in state.workers and state.workers[m].measurement == measurement
        ]
        if not running:
            continue
        if core.address in running:
            stop_serving(core, cluster_id)
        rekey(core, cluster_id)


def on_cluster_key_set(core: CoreContext, header: ev.BlockHeader, event: ev.ClusterKeySet) -> None:
    state = core.state
    cluster = state.clusters.get(event.cluster_id)
    if cluster is None or event.epoch <= cluster.current_epoch:
        return
    epoch_info = EpochInfo(
        key_address=event.key_address, public_key=event.public_key, keyed_at=header.number
    )
    state.clusters[event.cluster_id] = dataclasses.replace(
        cluster, epochs={**cluster.epochs, event.epoch: epoch_info}, current_epoch=event.epoch
    )
    held = core.keys.cluster_key(event.cluster_id, event.epoch)
    if held is not None and held.address.raw != event.key_address:
        state.diverged.append(f"cluster key mismatch for epoch {event.epoch}")
    # in id order: a joiner's records came from a snapshot, in another insertion order
    for contract_id, contract in sorted(state.contracts.items()):
        if contract.cluster == event.cluster_id:
            contracts.key_contract(core, header, contract_id)


def on_cluster_key_share(core: CoreContext, header: ev.BlockHeader, event: ev.Egress) -> None:
    """A gatekeeper wrapped cluster keys to this member: keep the new ones, then apply what was
    held back for want of them."""
    state = core.state
    if state.master is None or event.origin != state.master.key_address:
        return  # shares come only from the current master origin
    try:
        payload: Any = decode(event.payload)  # its shape is checked below
        cluster_id, member, shares, part, parts = payload
    except (CodecError, TypeError, ValueError):
        return
    if member != core.address or not isinstance(shares, list):
        return
    if not isinstance(part, int) or not isinstance(parts, int):
        return
    newly = False
    for item in shares:
        try:
            epoch, index, wrapped = item
            binding = cluster_binding(core, core.address, cluster_id, int(epoch))
        except (TypeError, ValueError):
            continue
        key = encryption.unwrap(core, index, wrapped, binding)
        if key is None:
            continue
        # only the key the Registry recorded for that epoch (its ClusterKeySet lands before
        # any share of it): a share of any other key is refused, not stored
        recorded = recorded_key_address(core, cluster_id, int(epoch))
        if recorded is None or recorded != key.address.raw:
            state.diverged.append(f"cluster key share for epoch {int(epoch)} refused")
            continue
        if (cluster_id, int(epoch)) not in core.keys.cluster_keys:
            core.keys.cluster_keys[(cluster_id, int(epoch))] = key
            newly = True
    if newly:
        core.keys_arrived.append(cluster_id)  # the dispatcher applies what was held back


def recorded_key_address(core: CoreContext, cluster_id: bytes, epoch: int) -> bytes | None:
    """The key address the Registry recorded for a cluster epoch: applied, or held back (a
    serving member holds its epoch's ``ClusterKeySet`` until the share that keys it lands)."""
    cluster = core.state.clusters.get(cluster_id)
    info = None if cluster is None else cluster.epochs.get(epoch)
    if info is not None:
        return info.key_address
    for _, event in core.state.buffered.get(cluster_id, ()):
        if isinstance(event, ev.ClusterKeySet) and event.epoch == epoch:
            return event.key_address
    return None


def epoch_expired(core: CoreContext, cluster: ClusterInfo, epoch: int, number: int) -> bool:
    """Whether ``epoch``'s successor was keyed more than a window before block ``number``:
    nothing may use that epoch's key any more."""
    successor = min((k for k in cluster.epochs if k > epoch), default=None)
    if successor is None:
        return False
    return number > cluster.epochs[successor].keyed_at + core.config.key_window_blocks


def expire_epochs(core: CoreContext, header: ev.BlockHeader) -> None:
    """Destroy cluster keys whose successor epoch was keyed more than a window ago."""
    for cluster_id, epoch in list(core.keys.cluster_keys):
        cluster = core.state.clusters.get(cluster_id)
        if cluster is not None and epoch_expired(core, cluster, epoch, header.number):
            core.keys.forget_cluster_epoch(cluster_id, epoch)


HANDLERS = {
    ev.ClusterCreated: on_cluster_created,
    ev.ClusterWorkerAdded: on_worker_added,
    ev.ClusterWorkerRemoved: on_worker_removed,
    ev.ClusterKeySet: on_cluster_key_set,
}
EGRESS_HANDLERS = {topics.TOPIC_CLUSTER_KEY_SHARE: on_cluster_key_share}
