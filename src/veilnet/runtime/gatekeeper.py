"""Gatekeeper duties: the master key, its history for new gatekeepers, endorsing registrations.
Every replica runs these (to keep egress numbering equal); only key holders produce messages."""

from __future__ import annotations

import dataclasses
from typing import Any

from veilnet.codec import CodecError, abi_encode, decode, encode
from veilnet.crypto import Address, Binding, SecretKey
from veilnet.errors import VeilnetError
from veilnet.protocol import envelopes as proto
from veilnet.protocol import events as ev
from veilnet.protocol import topics
from veilnet.protocol.registration import registration_report_data
from veilnet.runtime import clusters, collateral, encryption
from veilnet.runtime.context import CoreContext
from veilnet.runtime.records import MasterKeyInfo, WorkerInfo, WorkerStanding


def on_gatekeeper_added(
    core: CoreContext, header: ev.BlockHeader, event: ev.GatekeeperAdded
) -> None:
    state = core.state
    if event.gatekeeper in state.gatekeepers:
        return
    state.gatekeepers.append(event.gatekeeper)
    if state.master is None and len(state.gatekeepers) == 1:
        state.first_gatekeeper_block = header.hash
        if event.gatekeeper == core.address:
            master = core.keys.masters.get(0)  # drawn in an earlier run, kept sealed
            if master is None:
                master = SecretKey.generate(core.platform.random_bytes(32))
                core.keys.masters[0] = master
                core.keys_generated = True
            payload = abi_encode(["address", "bytes"], [master.address.hex, master.public.x25519])
            core.outbox.emit(core.keys.identity, core.address, topics.TOPIC_MASTER_KEY, payload)
    elif state.master is not None:
        send_master_history(core, event.gatekeeper)


def on_gatekeeper_removed(
    core: CoreContext, header: ev.BlockHeader, event: ev.GatekeeperRemoved
) -> None:
    if event.gatekeeper in core.state.gatekeepers:
        core.state.gatekeepers.remove(event.gatekeeper)


def on_master_key_set(core: CoreContext, header: ev.BlockHeader, event: ev.MasterKeySet) -> None:
    state = core.state
    if state.master is not None:
        return
    state.master = MasterKeyInfo(
        rotation=0, key_address=event.key_address, public_key=event.public_key
    )
    state.master_addresses[0] = event.key_address
    mine = core.keys.masters.get(0)
    if mine is not None and mine.address.raw != event.key_address:
        core.keys.masters.pop(0)  # another gatekeeper's key landed first
        state.diverged.append("master key landed from another gatekeeper")
    endorse_pending(core, header)
    for cluster_id in list(state.clusters):
        if state.clusters[cluster_id].current_epoch == 0:
            clusters.key_cluster(core, cluster_id)


def endorse_pending(core: CoreContext, header: ev.BlockHeader) -> None:
    """Judge every pending registration and re-attestation whose collateral is on chain
    (registration order): the PCCS's as a gatekeeper posted it where the network names a PCCS,
    else the registrant's (``collateral.for_judging``). An accepted quote is endorsed until
    its collateral expires; a refused re-attestation is answered with confidence 0, which ends
    the endorsement."""
    state = core.state
    if state.master is None:
        return
    for address, worker in list(state.workers.items()):
        if worker.standing not in (WorkerStanding.PENDING, WorkerStanding.REATTESTING):
            continue
        if collateral.for_judging(core, worker.quote_hash, worker.collateral_hash) is None:
            continue
        reattesting = worker.standing is WorkerStanding.REATTESTING
        judged = WorkerStanding.ENDORSED if reattesting else WorkerStanding.JUDGED
        state.workers[address] = dataclasses.replace(worker, standing=judged)
        verdict = judge(core, address, worker, header)
        if verdict is None and not reattesting:
            collateral.judged(core, worker.quote_hash)  # refused: no verdict will land
            continue
        confidence, valid_until = (0, 0) if verdict is None else verdict
        state.workers[address] = dataclasses.replace(state.workers[address], endorsing=True)
        payload = abi_encode(
            ["address", "uint8", "bytes32", "uint64"],
            [Address(address).hex, confidence, worker.registration, valid_until],
        )
        core.outbox.emit(core.master_key(), state.master.key_address, topics.TOPIC_ENDORSE, payload)


def rejudge_in_flight(core: CoreContext, header: ev.BlockHeader) -> None:
    """The master key rotated: verdicts sent from the old one and not landed yet will be
    refused by the Registry, so every core judges those quotes again, under the new key."""
    state = core.state
    for address, worker in list(state.workers.items()):
        if not worker.endorsing:
            continue
        # back to where ``endorse_pending`` found it
        standing = (
            WorkerStanding.REATTESTING
            if worker.standing is WorkerStanding.ENDORSED
            else WorkerStanding.PENDING
        )
        state.workers[address] = dataclasses.replace(worker, standing=standing, endorsing=False)
    endorse_pending(core, header)


def judge(
    core: CoreContext, address: bytes, worker: WorkerInfo, header: ev.BlockHeader
) -> tuple[int, int] | None:
    """(confidence level, valid until) to endorse with, or None. Pure function of chain data
    and time: the endorsement holds until the collateral it was judged under expires."""
    if worker.measurement not in core.state.measurements:
        return None
    report_data = registration_report_data(
        worker=address,
        operator=worker.operator,
        hpke_key=worker.hpke_key,
        chain_id=core.config.chain_id,
        registry=core.config.registry,
        # the gatekeeper's own: a host that built its worker's enclave from another
        # configuration (policy, root, Registry, parameters) gets no endorsement
        config_digest=core.config.config_digest,
        attested_hash=worker.attested_hash,  # one of the chain's last 256 blocks at the time
    )
    judged_under = collateral.for_judging(core, worker.quote_hash, worker.collateral_hash)
    if judged_under is None:
        return None
    try:
        verdict = core.verifier(
            quote=worker.quote,
            collateral=judged_under,
            at=header.timestamp,
            report_data=report_data,
        )
    except VeilnetError:
        return None
    if not verdict.accepted or verdict.measurement != worker.measurement:
        return None
    if not 1 <= verdict.confidence <= core.config.max_confidence_level:
        return None
    if verdict.valid_until <= header.timestamp:
        return None
    return verdict.confidence, verdict.valid_until


def master_binding(core: CoreContext, target: bytes, rotation: int) -> Binding:
    return Binding(
        chain_id=core.config.chain_id,
        target=target,
        epoch=rotation,
        purpose=proto.PURPOSE_MASTER_KEY,
    )


def send_master_history(core: CoreContext, gatekeeper: bytes) -> None:
    """Every gatekeeper sends a new one the master key history, wrapped to its key."""
    worker = core.state.workers.get(gatekeeper)
    if worker is None or not core.is_gatekeeper() or gatekeeper == core.address:
        return
    if not core.endorsed(gatekeeper):  # its endorsement sends the history (registry)
        return
    for rotation, key in sorted(core.keys.masters.items()):
        binding = master_binding(core, gatekeeper, rotation)
        wrapped = encryption.wrap_for(core, gatekeeper, key, binding)
        if wrapped is None:
            return  # sent when its first encryption key lands (``on_worker_key_published``)
        payload = encode(["history", gatekeeper, rotation, *wrapped])
        core.outbox.emit(core.keys.identity, core.address, topics.TOPIC_MASTER_KEY_SHARE, payload)


def unwrap_master(core: CoreContext, stored: bytes, rotation: int) -> SecretKey | None:
    """Open a master key wrapped to this gatekeeper (``encode([key number, envelope])``)."""
    try:
        value: Any = decode(stored)
        index, wrapped = value
    except (CodecError, TypeError, ValueError):
        return None
    return encryption.unwrap(core, index, wrapped, master_binding(core, core.address, rotation))


def on_worker_key_published(
    core: CoreContext, header: ev.BlockHeader, event: ev.WorkerKeyPublished
) -> None:
    """A worker's next encryption key landed. Its first one (since it registered) gets what
    could not be wrapped to it before: every keyed epoch of its cluster, and the master
    history if it is a gatekeeper. Every replica runs this, so the numbering stays equal."""
    if not encryption.note_published(core, header, event):
        return
    state = core.state
    cluster_id = state.workers[event.worker].cluster
    if cluster_id is not None:
        clusters.share_every_epoch(core, cluster_id, event.worker)
    if event.worker in state.gatekeepers:
        send_master_history(core, event.worker)


def on_master_key_share(core: CoreContext, header: ev.BlockHeader, event: ev.Egress) -> None:
    """A gatekeeper wrapped a master key to this one: a proposal (kept until it lands) or the
    history (taken at once)."""
    if event.origin not in core.state.gatekeepers:
        return
    try:
        payload: Any = decode(event.payload)  # its shape is checked below
        kind, target, rotation, index, wrapped = payload
    except (CodecError, TypeError, ValueError):
        return
    if target != core.address or not isinstance(rotation, int):
        return
    stored = encode([index, wrapped])
    if kind == "proposal":
        core.state.master_shares[(rotation, event.origin)] = stored
    elif kind == "history":
        # only the key the Registry recorded for that rotation: one faulty gatekeeper must not
        # poison a new gatekeeper (and through it every late joiner) with a key of its own
        expected = core.state.master_addresses.get(rotation)
        key = unwrap_master(core, stored, rotation)
        if key is None or expected is None or key.address.raw != expected:
            core.state.diverged.append(f"master history key for rotation {rotation} refused")
            return
        core.keys.masters[rotation] = key


def expire_masters(core: CoreContext, header: ev.BlockHeader) -> None:
    """Destroy past master keys once no cluster epoch derived from one may still be used:
    each such epoch has a successor keyed more than a window ago. Late joiners get a snapshot,
    not old epochs, so nobody needs them again, and a gatekeeper compromised later yields
    none of them."""
    state = core.state
    if state.master is None:
        return
    past = [r for r in core.keys.masters if r < state.master.rotation]
    if not past:  # every worker but a gatekeeper that lived through a rotation
        return
    live = {
        source
        for cluster in state.clusters.values()
        for epoch, source in cluster.master_rotation.items()
        if not clusters.epoch_expired(core, cluster, epoch, header.number)
    }
    for rotation in past:
        if rotation not in live:
            del core.keys.masters[rotation]
            core.keys_generated = True  # the host re-stores its sealed keys without it


HANDLERS = {
    ev.GatekeeperAdded: on_gatekeeper_added,
    ev.GatekeeperRemoved: on_gatekeeper_removed,
    ev.MasterKeySet: on_master_key_set,
    ev.WorkerKeyPublished: on_worker_key_published,
}
EGRESS_HANDLERS = {topics.TOPIC_MASTER_KEY_SHARE: on_master_key_share}
