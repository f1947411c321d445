"""Master-key rotation: lock, proposals wrapped to every gatekeeper, confirmation, switch-over.
The lifecycle is ``RotationPhase`` with the transition table below; other events are ignored."""

from __future__ import annotations

from typing import Final

from veilnet.codec import abi_encode, encode
from veilnet.crypto import SecretKey
from veilnet.protocol import events as ev
from veilnet.protocol import topics
from veilnet.protocol.rotation import prove_possession
from veilnet.runtime import clusters, encryption
from veilnet.runtime.context import CoreContext
from veilnet.runtime.gatekeeper import master_binding, rejudge_in_flight, unwrap_master
from veilnet.runtime.records import MasterKeyInfo, RotationPhase, RotationState

IDLE, LOCKED, PROPOSED = RotationPhase.IDLE, RotationPhase.LOCKED, RotationPhase.PROPOSED

TRANSITIONS: Final[dict[tuple[RotationPhase, type[ev.ChainEvent]], RotationPhase]] = {
    # The Registry takes the lock only when none is held; a new lock simply starts over.
    (IDLE, ev.RotationLocked): LOCKED,
    (LOCKED, ev.RotationLocked): LOCKED,
    (PROPOSED, ev.RotationLocked): LOCKED,
    # The first proposal to land wins; later ones (and ones for another rotation) are ignored.
    (LOCKED, ev.RotationProposed): PROPOSED,
    # A rotation ends by switching to the new key or by an abort, from any phase.
    (IDLE, ev.MasterKeyRotated): IDLE,
    (LOCKED, ev.MasterKeyRotated): IDLE,
    (PROPOSED, ev.MasterKeyRotated): IDLE,
    (IDLE, ev.RotationAborted): IDLE,
    (LOCKED, ev.RotationAborted): IDLE,
    (PROPOSED, ev.RotationAborted): IDLE,
}


def next_phase(phase: RotationPhase, event: ev.ChainEvent) -> RotationPhase | None:
    """The phase after ``event``, or None when the event does not apply in ``phase``."""
    return TRANSITIONS.get((phase, type(event)))


def on_rotation_locked(core: CoreContext, header: ev.BlockHeader, event: ev.RotationLocked) -> None:
    state = core.state
    if next_phase(state.rotation.phase, event) is None:
        return
    state.rotation = RotationState(phase=LOCKED, rotation=event.rotation, attempt=event.attempt)
    if not core.is_gatekeeper():
        return
    # TEE entropy, not a derivation: whoever learns a gatekeeper identity must not learn the
    # keys it proposes. A replay reuses the proposal (or winning key) it sealed the first time.
    proposal = core.keys.proposals.get(event.rotation) or core.keys.masters.get(event.rotation)
    if proposal is None:
        proposal = SecretKey.generate(core.platform.random_bytes(32))
        core.keys_generated = True
    core.keys.proposals[event.rotation] = proposal
    for other in state.gatekeepers:
        if other == core.address or not core.endorsed(other):
            continue
        binding = master_binding(core, other, event.rotation)
        wrapped = encryption.wrap_for(core, other, proposal, binding)
        if wrapped is None:
            continue  # no encryption key yet: it cannot confirm, and needs no proposal
        payload = encode(["proposal", other, event.rotation, *wrapped])
        core.outbox.emit(core.keys.identity, core.address, topics.TOPIC_MASTER_KEY_SHARE, payload)
    payload = abi_encode(
        ["uint256", "address", "bytes", "bytes"],
        [event.rotation, proposal.address.hex, proposal.public.x25519, _proof(core, proposal)],
    )
    core.outbox.emit(core.keys.identity, core.address, topics.TOPIC_ROTATION_PROPOSE, payload)
    if len(state.gatekeepers) == 1:
        # A sole gatekeeper's proposal completes the rotation in the same transaction, so
        # the new epoch's cluster keys can follow it in the same block: one on-chain hop.
        core.keys.masters[event.rotation] = proposal
        for cluster_id in list(state.clusters):
            clusters.key_cluster(
                core,
                cluster_id,
                rotation=event.rotation,
                master=proposal,
                origin=proposal.address.raw,
            )


def on_rotation_proposed(
    core: CoreContext, header: ev.BlockHeader, event: ev.RotationProposed
) -> None:
    state = core.state
    if state.rotation.rotation != event.rotation or next_phase(state.rotation.phase, event) is None:
        return
    state.rotation = RotationState(
        phase=PROPOSED,
        rotation=event.rotation,
        proposer=event.proposer,
        key_address=event.key_address,
        attempt=state.rotation.attempt,
    )
    if len(state.gatekeepers) == 1 and not clusters.keyed_for_rotation(core, event.rotation):
        held = core.keys.masters.get(event.rotation)
        for cluster_id in list(state.clusters):
            clusters.key_cluster(
                core, cluster_id, rotation=event.rotation, master=held, origin=event.key_address
            )
    if not core.is_gatekeeper() or event.proposer == core.address:
        return  # the proposal is the proposer's own confirmation
    key: SecretKey | None = None
    wrapped = state.master_shares.get((event.rotation, event.proposer))
    if wrapped is not None:
        key = unwrap_master(core, wrapped, event.rotation)
    if key is None or key.address.raw != event.key_address:
        return
    core.keys.masters[event.rotation] = key
    payload = abi_encode(
        ["uint256", "address", "bytes", "bytes"],
        [event.rotation, key.address.hex, key.public.x25519, _proof(core, key)],
    )
    core.outbox.emit(core.keys.identity, core.address, topics.TOPIC_ROTATION_CONFIRM, payload)


def _proof(core: CoreContext, key: SecretKey) -> bytes:
    """The new key's signature for this attempt and this gatekeeper: the Registry counts a
    proposal or confirmation only from a gatekeeper that really holds the key."""
    return prove_possession(
        key,
        chain_id=core.config.chain_id,
        registry=core.config.registry,
        attempt=core.state.rotation.attempt,
        gatekeeper=core.address,
    )


def on_master_key_rotated(
    core: CoreContext, header: ev.BlockHeader, event: ev.MasterKeyRotated
) -> None:
    state = core.state
    state.master = MasterKeyInfo(
        rotation=event.rotation, key_address=event.key_address, public_key=event.public_key
    )
    state.master_addresses[event.rotation] = event.key_address
    state.rotation = RotationState()
    core.keys.proposals.pop(event.rotation, None)
    state.master_shares = {k: v for k, v in state.master_shares.items() if k[0] > event.rotation}
    mine = core.keys.masters.get(event.rotation)
    if mine is not None and mine.address.raw != event.key_address:
        core.keys.masters.pop(event.rotation)
    if not clusters.keyed_for_rotation(core, event.rotation):
        for cluster_id in list(state.clusters):
            clusters.key_cluster(core, cluster_id)
    rejudge_in_flight(core, header)


def on_rotation_aborted(
    core: CoreContext, header: ev.BlockHeader, event: ev.RotationAborted
) -> None:
    state = core.state
    state.rotation = RotationState()
    core.keys.proposals.pop(event.rotation, None)
    if state.master is None or state.master.rotation != event.rotation:
        core.keys.masters.pop(event.rotation, None)


HANDLERS = {
    ev.RotationLocked: on_rotation_locked,
    ev.RotationProposed: on_rotation_proposed,
    ev.MasterKeyRotated: on_master_key_rotated,
    ev.RotationAborted: on_rotation_aborted,
}
