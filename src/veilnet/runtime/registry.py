"""The registry view: allowed measurements, worker registrations, endorsements, collateral.
Every replica keeps it from Registry events; gatekeepers judge registrations from it."""

from __future__ import annotations

import dataclasses
import zlib

from veilnet.crypto import keccak
from veilnet.protocol import events as ev
from veilnet.protocol import limits, topics
from veilnet.runtime import clusters, collateral, gatekeeper
from veilnet.runtime.context import CoreContext
from veilnet.runtime.records import WorkerInfo, WorkerStanding


def on_measurement(core: CoreContext, header: ev.BlockHeader, event: ev.MeasurementSet) -> None:
    if event.allowed:
        core.state.measurements.add(event.measurement)
    elif event.measurement in core.state.measurements:
        core.state.measurements.discard(event.measurement)
        clusters.on_measurement_revoked(core, event.measurement)


def on_worker_registered(
    core: CoreContext, header: ev.BlockHeader, event: ev.WorkerRegistered
) -> None:
    """A (re-)registration starts from nothing: pending until its collateral is on chain, and
    no earlier divergence verdict held against it (its cluster membership ended on chain)."""
    core.state.divergences.pop(event.worker, None)
    previous = core.state.workers.get(event.worker)
    core.state.workers[event.worker] = WorkerInfo(
        operator=event.operator,
        hpke_key=event.hpke_key,
        tee_kind=event.tee_kind,
        measurement=event.measurement,
        quote_hash=event.quote_hash,
        collateral_hash=event.collateral_hash,
        quote=event.quote,
        attested_hash=event.attested_hash,
        registration=event.registration,
        # no key until it publishes one anew; numbers go on, as they do on chain
        encryption_index=0 if previous is None else previous.encryption_index,
    )
    if event.worker == core.address:
        _publish_collateral(core, event.collateral_hash)
    gatekeeper.endorse_pending(core, header)


def _publish_collateral(core: CoreContext, collateral_hash: bytes) -> None:
    """This worker's own (re-)registration landed: publish the collateral it names, so that
    gatekeepers can judge its quote."""
    own = core.platform.collateral()
    if keccak(own) == collateral_hash:
        core.outbox.emit(
            core.keys.identity, core.address, topics.TOPIC_COLLATERAL, zlib.compress(own, 9)
        )


def on_worker_reattested(
    core: CoreContext, header: ev.BlockHeader, event: ev.WorkerReattested
) -> None:
    """A fresh quote of the same registration: judged once its collateral is on chain. An
    endorsed worker stays endorsed meanwhile (``REATTESTING``); any other starts over as
    ``PENDING``."""
    worker = core.state.workers.get(event.worker)
    if worker is None:
        return
    standing = (
        WorkerStanding.REATTESTING
        if worker.standing in (WorkerStanding.ENDORSED, WorkerStanding.REATTESTING)
        else WorkerStanding.PENDING
    )
    core.state.workers[event.worker] = dataclasses.replace(
        worker,
        quote=event.quote,
        quote_hash=event.quote_hash,
        collateral_hash=event.collateral_hash,
        attested_hash=event.attested_hash,
        registration=event.registration,
        standing=standing,
    )
    if event.worker == core.address:
        _publish_collateral(core, event.collateral_hash)
    gatekeeper.endorse_pending(core, header)


def expire_endorsements(core: CoreContext, since: int) -> None:
    """Members whose endorsement expired between the previous block's time (``since``) and
    this one's lose their keys now: their clusters move to a new epoch without them."""
    lapsed: set[bytes] = set()
    for address in sorted(core.state.workers):
        worker = core.state.workers[address]
        if worker.confidence > 0 and since < worker.valid_until <= core.now:
            if worker.cluster is None:
                continue
            if address == core.address:
                clusters.stop_serving(core, worker.cluster)
            lapsed.add(worker.cluster)
    for cluster_id in sorted(lapsed):  # one new epoch per cluster, however many lapsed
        clusters.rekey(core, cluster_id)


def on_worker_endorsed(core: CoreContext, header: ev.BlockHeader, event: ev.WorkerEndorsed) -> None:
    worker = core.state.workers.get(event.worker)
    if worker is None or worker.registration != event.registration:
        return
    was_endorsed = core.endorsed(event.worker)
    standing = worker.standing
    if standing not in (WorkerStanding.PENDING, WorkerStanding.REATTESTING):  # a pending one
        # is still judged when its collateral lands, exactly once, whatever landed before
        standing = WorkerStanding.ENDORSED if event.confidence > 0 else WorkerStanding.JUDGED
    core.state.workers[event.worker] = dataclasses.replace(
        worker,
        confidence=event.confidence,
        standing=standing,
        valid_until=event.valid_until,
        endorsing=False,
    )
    collateral.judged(core, worker.quote_hash)  # the verdict on this quote landed
    now_endorsed = core.endorsed(event.worker)
    if was_endorsed and not now_endorsed:
        clusters.on_member_unendorsed(core, event.worker)
    elif now_endorsed and not was_endorsed and event.worker in core.state.gatekeepers:
        gatekeeper.send_master_history(core, event.worker)  # added before it was endorsed


def on_collateral(core: CoreContext, header: ev.BlockHeader, event: ev.Egress) -> None:
    """A worker published the collateral its registration names: judge it once it is here."""
    worker = core.state.workers.get(event.origin)
    if worker is None:
        return
    try:
        posted = collateral.bounded_decompress(event.payload, limits.MAX_COLLATERAL_BYTES)
    except ValueError:
        return
    if keccak(posted) == worker.collateral_hash:
        core.state.collaterals[worker.collateral_hash] = posted
        gatekeeper.endorse_pending(core, header)


def on_pccs_collateral(core: CoreContext, header: ev.BlockHeader, event: ev.Egress) -> None:
    """A gatekeeper posted what the network's PCCS serves for a quote: judge it now."""
    if collateral.on_pccs_collateral(core, header, event):
        gatekeeper.endorse_pending(core, header)


HANDLERS = {
    ev.MeasurementSet: on_measurement,
    ev.WorkerRegistered: on_worker_registered,
    ev.WorkerEndorsed: on_worker_endorsed,
    ev.WorkerReattested: on_worker_reattested,
}
EGRESS_HANDLERS = {
    topics.TOPIC_COLLATERAL: on_collateral,
    topics.TOPIC_PCCS_COLLATERAL: on_pccs_collateral,
}
