"""Worker encryption keys: from TEE entropy, published signed by the identity, one per epoch.
Gatekeepers wrap keys only to the newest on chain; each dies a window after the next lands."""

from __future__ import annotations

import dataclasses

from veilnet.codec import abi_encode
from veilnet.crypto import (
    Binding,
    EnvelopeInvalid,
    SecretKey,
    UnsupportedVersion,
    open_key_envelope,
    seal_key_for,
)
from veilnet.protocol import events as ev
from veilnet.protocol import topics
from veilnet.runtime.context import CoreContext

KEY_SEED_BYTES = 32


def publish_next(core: CoreContext) -> None:
    """Publish this worker's next encryption key (drawn now, or in a replay the one drawn the
    first time), unless one it published has not landed yet.

    Called only on chain events (its endorsement, a new epoch of its cluster, a master-key
    rotation for a gatekeeper), so a replay numbers this identity's egress as the first run did.
    """
    state = core.state
    me = state.workers.get(core.address)
    if me is None or state.encryption_published > me.encryption_index:
        return
    index = me.encryption_index + 1
    key = core.keys.encryption.get(index)
    if key is None:
        key = SecretKey.generate(core.platform.random_bytes(KEY_SEED_BYTES))
        core.keys.encryption[index] = key
        core.keys_generated = True  # the host stores it sealed before it posts the key
    state.encryption_published = index
    payload = abi_encode(["uint64", "bytes"], [index, key.public.x25519])
    core.outbox.emit(core.keys.identity, core.address, topics.TOPIC_WORKER_KEY, payload)


def wrap_for(
    core: CoreContext, worker: bytes, key: SecretKey, binding: Binding
) -> tuple[int, bytes] | None:
    """``(index, envelope)``: ``key`` wrapped to the worker's newest encryption key on chain,
    or None when it has published none (nothing is ever wrapped to an identity key)."""
    info = core.state.workers.get(worker)
    if info is None or not info.encryption_key:
        return None
    return info.encryption_index, seal_key_for(info.encryption_key, key, binding=binding)


def unwrap(core: CoreContext, index: object, wrapped: object, binding: Binding) -> SecretKey | None:
    """Open what a gatekeeper wrapped to this worker's encryption key number ``index``; None if
    that key is gone (its window passed) or the envelope does not open."""
    if not isinstance(index, int) or not isinstance(wrapped, bytes):
        return None
    key = core.keys.encryption.get(index)
    if key is None:
        return None
    try:
        return open_key_envelope(key, wrapped, binding=binding)
    except (EnvelopeInvalid, UnsupportedVersion):
        return None


def note_published(core: CoreContext, header: ev.BlockHeader, event: ev.WorkerKeyPublished) -> bool:
    """A worker's next key landed: wrap to it from now on; this worker schedules its older
    keys for destruction. True if it is the worker's first key since it registered."""
    state = core.state
    worker = state.workers.get(event.worker)
    if worker is None or event.index <= worker.encryption_index:
        return False
    first = not worker.encryption_key
    state.workers[event.worker] = dataclasses.replace(
        worker, encryption_key=event.public_key, encryption_index=event.index
    )
    if event.worker == core.address:
        held = core.keys.encryption.get(event.index)
        if held is not None and held.public.x25519 != event.public_key:
            # drawn again in a replay after the first one was destroyed: not the key on chain
            del core.keys.encryption[event.index]
            core.keys_generated = True
        retire_at = header.number + core.config.key_window_blocks
        for older in sorted(core.keys.encryption):
            if older < event.index:
                state.encryption_retire.setdefault(older, retire_at)
    return first


def end_block(core: CoreContext, header: ev.BlockHeader, events: tuple[ev.ChainEvent, ...]) -> None:
    """Rotate and destroy at the end of each block. An endorsed worker publishes its first key
    at once, and its next one when its cluster moves to a new epoch (a gatekeeper: when the
    master key rotates). The trigger is the block's events as they landed, never whether a
    key arrived, so a replay emits exactly what the first run did."""
    expire(core, header)
    state = core.state
    me = state.workers.get(core.address)
    if me is None or not core.endorsed(core.address):
        return
    gatekeeper = core.address in state.gatekeepers
    due = not me.encryption_key or any(
        (isinstance(event, ev.ClusterKeySet) and event.cluster_id == me.cluster)
        or (isinstance(event, ev.MasterKeyRotated) and gatekeeper)
        for event in events
    )
    if due:
        publish_next(core)


def expire(core: CoreContext, header: ev.BlockHeader) -> None:
    """Destroy this worker's encryption keys whose successor landed more than a window ago:
    whatever was wrapped to them can never be opened again, here or anywhere."""
    state = core.state
    for index, until in sorted(state.encryption_retire.items()):
        if header.number > until:
            core.keys.encryption.pop(index, None)
            del state.encryption_retire[index]
            core.keys_generated = True  # the host replaces its sealed copy of the keys
