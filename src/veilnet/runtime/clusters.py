"""Clusters: membership, key epochs derived from the master key, shares wrapped to members.
Gatekeepers derive and wrap; members unwrap; every replica advances the same egress counters."""

from __future__ import annotations

import dataclasses
from typing import Any

from veilnet.codec import CodecError, abi_encode, decode, encode
from veilnet.crypto import (
    Binding,
    EnvelopeInvalid,
    SecretKey,
    UnsupportedVersion,
    open_key_envelope,
    seal_key_for,
)
from veilnet.protocol import envelopes as proto
from veilnet.protocol import events as ev
from veilnet.protocol import topics
from veilnet.runtime import contracts
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
    core.state.clusters[event.cluster_id] = ClusterInfo(owner=event.owner)
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
            [cluster_id, epoch, key.address.hex, key.public.x25519],
        )
    core.outbox.emit(master, origin, topics.TOPIC_CLUSTER_KEY, payload)
    for member in cluster.members:
        share_cluster_key(core, cluster_id, member, epochs=[epoch], master=master, origin=origin)


def keyed_for_rotation(core: CoreContext, rotation: int) -> bool:
    return any(rotation in c.master_rotation.values() for c in core.state.clusters.values())


def share_cluster_key(
    core: CoreContext,
    cluster_id: bytes,
    member: bytes,
    *,
    epochs: list[int],
    master: SecretKey | None = None,
    origin: bytes | None = None,
) -> None:
    """Gatekeepers: wrap cluster keys of ``epochs`` to a member (one message for all),
    sent from the current master origin unless another (new) one is given."""
    state = core.state
    if origin is None:
        if state.master is None:
            return
        origin, master = state.master.key_address, core.master_key()
    worker = state.workers.get(member)
    if master is None or worker is None:
        core.outbox.emit(None, origin, topics.TOPIC_CLUSTER_KEY_SHARE, b"")
        return
    cluster = state.clusters[cluster_id]
    shares = []
    # a flagged identity (caught running twice) still gets its message, so the master origin's
    # numbering stays whole, but no key in it
    for epoch in [] if member in state.flagged else epochs:
        source = core.keys.masters.get(cluster.master_rotation.get(epoch, -1))
        if source is None:
            continue
        key = source.child("cluster", cluster_id, epoch)
        binding = cluster_binding(core, member, cluster_id, epoch)
        shares.append([epoch, seal_key_for(worker.hpke_key, key, binding=binding)])
    payload = encode([cluster_id, member, shares])
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
    served_before = core.serves(event.cluster_id)  # before joining: membership makes it True
    cluster = state.clusters[event.cluster_id] = dataclasses.replace(
        cluster, members=(*cluster.members, event.worker)
    )
    _set_worker_cluster(core, event.worker, event.cluster_id)
    if event.worker == core.address and cluster.has_history and not served_before:
        state.resync_required = True
    if state.master is not None and cluster.master_rotation:
        share_cluster_key(
            core, event.cluster_id, event.worker, epochs=sorted(cluster.master_rotation)
        )


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
    for contract_id, contract in list(state.contracts.items()):
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
        cluster_id, member, shares = payload
    except (CodecError, TypeError, ValueError):
        return
    if member != core.address or not isinstance(shares, list):
        return
    newly = False
    for item in shares:
        try:
            epoch, wrapped = item
            binding = cluster_binding(core, core.address, cluster_id, int(epoch))
            key = open_key_envelope(core.keys.identity, wrapped, binding=binding)
        except (EnvelopeInvalid, UnsupportedVersion, TypeError, ValueError):
            continue
        if (cluster_id, int(epoch)) not in core.keys.cluster_keys:
            core.keys.cluster_keys[(cluster_id, int(epoch))] = key
            newly = True
    if newly:
        if state.resync_required and state.resync_keyring is None:
            state.resync_keyring = core.keys.export()
        core.keys_arrived.append(cluster_id)  # the dispatcher applies what was held back


def expire_epochs(core: CoreContext, header: ev.BlockHeader) -> None:
    """Destroy cluster keys whose successor epoch was keyed more than a window ago."""
    for cluster_id, epoch in list(core.keys.cluster_keys):
        cluster = core.state.clusters.get(cluster_id)
        if cluster is None:
            continue
        successor = min((k for k in cluster.epochs if k > epoch), default=None)
        if successor is None:
            continue
        if header.number > cluster.epochs[successor].keyed_at + core.config.key_window_blocks:
            core.keys.forget_cluster_epoch(cluster_id, epoch)


HANDLERS = {
    ev.ClusterCreated: on_cluster_created,
    ev.ClusterWorkerAdded: on_worker_added,
    ev.ClusterWorkerRemoved: on_worker_removed,
    ev.ClusterKeySet: on_cluster_key_set,
}
EGRESS_HANDLERS = {topics.TOPIC_CLUSTER_KEY_SHARE: on_cluster_key_share}
