"""Late join by state snapshot: a member seals its cluster's state at a commitment height to a
joiner, which takes it only if it equals what a majority of the cluster committed to on chain.

Theory of operation
-------------------
A worker added to a cluster that has history (``ClusterWorkerAdded``) is *syncing*: every
replica records it (``ReplicatedState.syncing``), the gatekeepers move the cluster to a new
epoch and give the joiner that epoch and later ones only, never the keys that protected what was
sent before it joined. The joiner holds back every event of the cluster from its join on.

Members post commitments at fixed heights (``commitments``); while someone syncs, every replica
reads those posts back from the Bus and forms its own verdict per height: the value a strict
majority of the cluster's synced members posted. At each commitment height a member also
captures the cluster's state. A joiner's host fetches that capture from any member (sealed to
the joiner's encryption key, so hosts carry it blind) and hands it to the joiner's core, which
recomputes the commitment from it under the epoch key it holds and compares it with the
verdict. Only then does it take the state and apply the events it held back after that height.
Its first own commitment that lands ends its sync.

What a snapshot carries is everything of the cluster that only a member computes or that the
joiner held back: the cluster's epochs, its contracts' records and private states, its
schedules and the egress counters of its epoch keys. The commitment covers all of it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final

from veilnet.codec import (
    CodecError,
    Oversized,
    abi_decode,
    decode,
    encode,
    encode_array,
    encode_piece,
)
from veilnet.codec.constants import BULK_MAX_ITEMS, BULK_MAX_SIZE
from veilnet.crypto import Binding, SecretKey
from veilnet.errors import VeilnetError
from veilnet.protocol import events as ev
from veilnet.protocol.errors import SnapshotRefused
from veilnet.runtime import contracts, encryption
from veilnet.runtime.context import CoreContext
from veilnet.runtime.records import ClusterInfo, ContractInfo, EpochInfo, ScheduleInfo, SyncInfo
from veilnet.runtime.replicated import from_plain, plain_digest, to_plain

PURPOSE_SNAPSHOT: Final = "state-snapshot"
MAX_VERDICTS_PER_CLUSTER: Final = 8
"""Verdicts (and heights still counting posts) kept per cluster while someone syncs: a joiner
needs only a recent one."""
SNAPSHOT_VERSION: Final = 1


# ---- joining ----------------------------------------------------------------------------


def on_joined(core: CoreContext, header: ev.BlockHeader, member: bytes, cluster_id: bytes) -> int:
    """``member`` joined ``cluster_id``, which has history: it syncs. Returns the first epoch
    it may be given (the caller keys that epoch for the cluster)."""
    cluster = core.state.clusters[cluster_id]
    from_epoch = max([cluster.current_epoch, *cluster.master_rotation]) + 1
    core.state.syncing[member] = SyncInfo(
        cluster=cluster_id, joined_at=header.number, from_epoch=from_epoch
    )
    if member == core.address:
        core.state.snapshot_due[cluster_id] = header.number
        core.state.buffered.setdefault(cluster_id, ())
    return from_epoch


def first_epoch_for(core: CoreContext, member: bytes, cluster_id: bytes) -> int:
    """The oldest epoch of ``cluster_id`` that may be wrapped to ``member``: from its join on
    if it syncs, else the current one (a member that was there holds the older ones already,
    and one that joined before any history has nothing older to read)."""
    syncing = core.state.syncing.get(member)
    if syncing is not None and syncing.cluster == cluster_id:
        return syncing.from_epoch
    return core.state.clusters[cluster_id].current_epoch


def on_left(core: CoreContext, member: bytes) -> None:
    """``member`` left its cluster (removed, re-registered): it no longer syncs."""
    info = core.state.syncing.pop(member, None)
    if info is None:
        return
    if member == core.address:
        core.state.snapshot_due.pop(info.cluster, None)
    _forget_if_idle(core, info.cluster)


def awaiting(core: CoreContext, cluster_id: bytes) -> bool:
    return cluster_id in core.state.snapshot_due


# ---- verdicts from the commitments members post -----------------------------------------


def on_state_commitment(core: CoreContext, header: ev.BlockHeader, event: ev.Egress) -> None:
    """A member's commitment landed (the Bus logs every post it takes). While its cluster has
    a syncing member, count it toward that height's verdict, as the Registry would accept it."""
    state = core.state
    try:
        cluster_id, height, commitment = abi_decode(["bytes32", "uint64", "bytes32"], event.payload)
    except CodecError:
        return
    syncing = state.syncing.get(event.origin)
    if syncing is not None and syncing.cluster == cluster_id:
        del state.syncing[event.origin]  # its first commitment: it has the cluster's state
        _forget_if_idle(core, cluster_id)
        return
    cluster = state.clusters.get(cluster_id)
    if cluster is None or not _has_syncing(core, cluster_id) or height >= header.number:
        return
    if event.origin not in cluster.members or not core.endorsed(event.origin):
        return
    if (cluster_id, height) in state.verdicts or commitment == bytes(32):
        return
    posts = state.commitment_posts.get((cluster_id, height), ())
    if any(poster == event.origin for poster, _ in posts):
        return
    posts = state.commitment_posts[(cluster_id, height)] = (*posts, (event.origin, commitment))
    heights = sorted(h for c, h in state.commitment_posts if c == cluster_id)
    for old in heights[:-MAX_VERDICTS_PER_CLUSTER]:  # members that never agree: bounded
        del state.commitment_posts[(cluster_id, old)]
    synced = [m for m in cluster.members if m not in state.syncing]
    votes = sum(1 for _, value in posts if value == commitment)
    if votes * 2 <= len(synced):
        return
    state.verdicts[(cluster_id, height)] = commitment
    for key in [k for k in state.commitment_posts if k[0] == cluster_id and k[1] <= height]:
        del state.commitment_posts[key]
    kept = sorted(h for c, h in state.verdicts if c == cluster_id)
    for old in kept[:-MAX_VERDICTS_PER_CLUSTER]:
        del state.verdicts[(cluster_id, old)]


def _has_syncing(core: CoreContext, cluster_id: bytes) -> bool:
    return any(info.cluster == cluster_id for info in core.state.syncing.values())


def _forget_if_idle(core: CoreContext, cluster_id: bytes) -> None:
    """Nobody syncs into ``cluster_id`` any more: drop its posts, verdicts and capture."""
    state = core.state
    if _has_syncing(core, cluster_id):
        return
    for key in [k for k in state.commitment_posts if k[0] == cluster_id]:
        del state.commitment_posts[key]
    for key in [k for k in state.verdicts if k[0] == cluster_id]:
        del state.verdicts[key]
    state.snapshots.pop(cluster_id, None)


# ---- what a snapshot holds, and the commitment over it ----------------------------------


def _origins(cluster: ClusterInfo) -> list[bytes]:
    return sorted({info.key_address for info in cluster.epochs.values()})


def cluster_plain(core: CoreContext, cluster_id: bytes) -> dict[str, Any]:
    """The cluster's state as plain values: what a snapshot carries."""
    state = core.state
    ids = _contract_ids(core, cluster_id)
    runtimes = []
    for cid in ids:
        runtime = state.runtimes.get(cid)
        if runtime is not None:
            data: dict[str, Any] = {
                "kv": sorted(runtime.state.values.items()),
                "digest": runtime.state.digest,
            }
            data.update(runtime.meta_plain())
            runtimes.append([cid, data])
    return {
        "v": SNAPSHOT_VERSION,
        "cluster": cluster_id,
        **_cluster_records(core, cluster_id, ids),
        "contracts": [[cid, to_plain(state.contracts[cid])] for cid in ids],
        "runtimes": runtimes,
    }


def _contract_ids(core: CoreContext, cluster_id: bytes) -> list[bytes]:
    return sorted(cid for cid, info in core.state.contracts.items() if info.cluster == cluster_id)


def _cluster_records(core: CoreContext, cluster_id: bytes, ids: list[bytes]) -> dict[str, Any]:
    state = core.state
    cluster = state.clusters[cluster_id]
    members = set(ids)
    return {
        "epochs": to_plain(cluster.epochs),
        "current_epoch": cluster.current_epoch,
        "has_history": cluster.has_history,
        "schedules": [
            [sid, to_plain(info)]
            for sid, info in sorted(state.schedules.items())
            if info.contract_id in members
        ],
        "counters": [[o, state.counters[o]] for o in _origins(cluster) if o in state.counters],
    }


_RECORD_KEYS: Final = ("epochs", "current_epoch", "has_history", "schedules", "counters")
_META_KEYS: Final = ("nonces", "recent", "outcomes", "secrets")


def live_commitment(core: CoreContext, key: SecretKey, cluster_id: bytes, height: int) -> bytes:
    """``commitment_over`` the cluster's live state, from digests kept between blocks: a
    contract's record digest until the record is replaced, a runtime's until it changes, the
    key-value digest always (it is kept incrementally). Costs O(contracts) per call."""
    state = core.state
    ids = _contract_ids(core, cluster_id)
    rows = []
    kept = core.commitment_rows
    for cid in ids:
        info = state.contracts[cid]
        runtime = state.runtimes.get(cid)
        kv, meta = (b"", b"") if runtime is None else (runtime.state.digest, runtime.meta_digest())
        row = kept.get(cid)
        if row is None or row[0] is not info or row[2] != kv or row[3] != meta:
            # records are frozen and replaced on change: the digest holds while the object does
            record = row[1] if row is not None and row[0] is info else plain_digest(to_plain(info))
            row = kept[cid] = (info, record, kv, meta, encode_piece([cid, record, kv, meta]))
        rows.append(row[4])
    records = plain_digest(_cluster_records(core, cluster_id, ids))
    return _mac(key, cluster_id, height, rows, records)


def commitment_over(key: SecretKey, height: int, plain: dict[str, Any]) -> bytes:
    """The keyed commitment to ``cluster_plain`` at ``height`` (as ``live_commitment``): per
    contract the digests of its record, its key-value state and the rest of its runtime, then
    a digest of the cluster's epochs, schedules and counters."""
    runtimes = dict(plain["runtimes"])
    rows = []
    for cid, info in plain["contracts"]:
        data = runtimes.get(cid)
        if data is None:
            rows.append(encode_piece([cid, plain_digest(info), b"", b""]))
        else:
            meta = plain_digest({k: data[k] for k in _META_KEYS})
            rows.append(encode_piece([cid, plain_digest(info), data["digest"], meta]))
    records = plain_digest({k: plain[k] for k in _RECORD_KEYS})
    return _mac(key, plain["cluster"], height, rows, records)


def _mac(
    key: SecretKey, cluster_id: bytes, height: int, rows: list[bytes], records: bytes
) -> bytes:
    """The MAC over ``encode([cluster_id, height, rows, records])``, spliced from the rows'
    encodings (``rows``: each row's ``encode_piece``): the same bytes, without encoding every
    row again for each commitment."""
    if 5 + 5 * len(rows) > BULK_MAX_ITEMS:  # what encode() would count and refuse
        raise Oversized("value has too many items")
    pieces = [encode_piece(cluster_id), encode_piece(height), encode_array(rows)]
    pieces.append(encode_piece(records))
    return key.symmetric("commitment").mac(encode_array(pieces, versioned=True))


def capture(core: CoreContext, cluster_id: bytes, height: int) -> None:
    """At a commitment height, a member keeps the cluster's state for a syncing joiner."""
    if _has_syncing(core, cluster_id):
        core.state.snapshots[cluster_id] = (height, cluster_plain(core, cluster_id))


# ---- the member's side: a capture sealed to the joiner -----------------------------------


def snapshot_binding(core: CoreContext, joiner: bytes, cluster_id: bytes, height: int) -> Binding:
    return Binding(
        chain_id=core.config.chain_id,
        target=joiner + cluster_id,
        epoch=height,
        purpose=PURPOSE_SNAPSHOT,
    )


def export_snapshot(core: CoreContext, joiner: bytes) -> bytes:
    """The newest capture of ``joiner``'s cluster, sealed under a fresh key that is wrapped to
    the joiner's encryption key: ``[cluster, height, index, wrapped, sealed state]``.

    Raises:
        SnapshotRefused: the joiner does not sync, this worker does not serve its cluster or
            has captured nothing yet, or the joiner has no encryption key on chain.
    """
    info = core.state.syncing.get(joiner)
    if info is None:
        raise SnapshotRefused("that worker is not waiting for a snapshot", reason="not_syncing")
    if not core.serves(info.cluster) or awaiting(core, info.cluster):
        raise SnapshotRefused("this worker does not hold the cluster's state", reason="no_state")
    captured = core.state.snapshots.get(info.cluster)
    if captured is None:
        raise SnapshotRefused("no commitment height captured yet", reason="not_captured")
    height, plain = captured
    carrier = SecretKey.generate(core.platform.random_bytes(32))
    wrapped = encryption.wrap_for(
        core, joiner, carrier, snapshot_binding(core, joiner, info.cluster, height)
    )
    if wrapped is None:
        raise SnapshotRefused("the joiner has no encryption key yet", reason="no_key")
    aad = _aad(info.cluster, height)
    body = carrier.symmetric("snapshot").seal(encode(plain, max_items=BULK_MAX_ITEMS), aad=aad)
    return encode([info.cluster, height, *wrapped, body])


def _aad(cluster_id: bytes, height: int) -> bytes:
    return b"veil/v1/snapshot" + cluster_id + height.to_bytes(8, "big")


# ---- the joiner's side -------------------------------------------------------------------


def import_snapshot(core: CoreContext, blob: bytes) -> int:
    """Take a member's snapshot if it is what the cluster committed to; then apply the events
    held back after its height. Returns that height.

    Raises:
        SnapshotRefused: not waiting for one, malformed, sealed to another key, of a height
            before the join or without a verdict yet, or not equal to the verdict. Nothing
            changes.
    """
    state = core.state
    try:
        value: Any = decode(blob, max_size=BULK_MAX_SIZE, max_items=BULK_MAX_ITEMS)
        cluster_id, height, index, wrapped, body = value
    except (CodecError, TypeError, ValueError) as exc:
        raise SnapshotRefused("not a snapshot", reason="malformed") from exc
    if not isinstance(cluster_id, bytes) or not isinstance(height, int):
        raise SnapshotRefused("not a snapshot", reason="malformed")
    joined = state.snapshot_due.get(cluster_id)
    if joined is None:
        raise SnapshotRefused("this worker waits for no snapshot of it", reason="not_due")
    if height < joined or state.head is None or height > state.head.number:
        raise SnapshotRefused("a snapshot from before the join or ahead", reason="height")
    verdict = state.verdicts.get((cluster_id, height))
    if verdict is None:
        raise SnapshotRefused("no verdict for that height yet", reason="no_verdict")
    carrier = encryption.unwrap(
        core, index, wrapped, snapshot_binding(core, core.address, cluster_id, height)
    )
    if carrier is None or not isinstance(body, bytes):
        raise SnapshotRefused("the snapshot is not sealed to this worker", reason="sealed")
    try:
        opened = carrier.symmetric("snapshot").open(body, aad=_aad(cluster_id, height))
        plain: Any = decode(opened, max_size=BULK_MAX_SIZE, max_items=BULK_MAX_ITEMS)
        epoch = int(plain["current_epoch"])
    except (VeilnetError, CodecError, TypeError, ValueError, KeyError) as exc:
        raise SnapshotRefused("the snapshot does not open", reason="malformed") from exc
    # only an epoch keyed for its join or later: a state from before it is under an older one
    key = core.keys.cluster_key(cluster_id, epoch)
    if key is None:
        raise SnapshotRefused("no key for the snapshot's epoch", reason="epoch")
    try:
        taken = _rebuild(core, cluster_id, plain)
    except (VeilnetError, CodecError, TypeError, ValueError, KeyError) as exc:
        raise SnapshotRefused("the snapshot is malformed", reason="malformed") from exc
    if commitment_over(key, height, plain) != verdict:
        raise SnapshotRefused("the snapshot differs from the cluster's verdict", reason="verdict")
    _install(core, cluster_id, taken)
    held = state.buffered.pop(cluster_id, ())
    del state.snapshot_due[cluster_id]
    later = tuple((h, e) for h, e in held if h.number > height)
    if later:
        state.buffered[cluster_id] = later
    core.query_snapshots.pop(cluster_id, None)
    core.keys_arrived.append(cluster_id)  # the dispatcher applies what was held back
    return height


@dataclasses.dataclass(slots=True)
class _Taken:
    current_epoch: int
    epochs: dict[int, EpochInfo]
    has_history: bool
    contracts: dict[bytes, ContractInfo]
    schedules: dict[int, ScheduleInfo]
    counters: dict[bytes, int]
    runtimes: dict[bytes, Any]


def _rebuild(core: CoreContext, cluster_id: bytes, plain: Any) -> _Taken:
    """Typed values from a snapshot's plain form, each contract state rebuilt under its key
    and its digest recomputed here (the sender's figure is replaced, never trusted)."""
    if not isinstance(plain, dict) or plain.get("v") != SNAPSHOT_VERSION:
        raise ValueError("unknown snapshot version")
    if plain["cluster"] != cluster_id:
        raise ValueError("a snapshot of another cluster")
    epochs = from_plain(dict[int, EpochInfo], plain["epochs"])
    contracts_ = dict(from_plain(list[tuple[bytes, ContractInfo]], plain["contracts"]))
    if any(info.cluster != cluster_id for info in contracts_.values()):
        raise ValueError("a contract of another cluster")
    schedules = dict(from_plain(list[tuple[int, ScheduleInfo]], plain["schedules"]))
    if any(info.contract_id not in contracts_ for info in schedules.values()):
        raise ValueError("a schedule of another cluster")
    counters = dict(from_plain(list[tuple[bytes, int]], plain["counters"]))
    runtimes: dict[bytes, Any] = {}
    for item in plain["runtimes"]:
        cid, data = item
        contract = contracts_[cid]
        key = core.keys.contract_key(cluster_id, cid, contract.epoch)
        if key is None:
            raise ValueError("no key for a contract's epoch")
        runtime = contracts.new_runtime(core, cid, key)
        runtime.state.apply({str(k): bytes(v) for k, v in data["kv"]})
        data["digest"] = runtime.state.digest  # the commitment is recomputed from this state
        runtime.load_meta(data)
        runtimes[cid] = runtime
    return _Taken(
        current_epoch=int(plain["current_epoch"]),
        epochs=epochs,
        has_history=bool(plain["has_history"]),
        contracts=contracts_,
        schedules=schedules,
        counters=counters,
        runtimes=runtimes,
    )


def _install(core: CoreContext, cluster_id: bytes, taken: _Taken) -> None:
    """Replace what this worker held of the cluster (frozen at its join) by the snapshot's."""
    state = core.state
    cluster = state.clusters[cluster_id]
    state.clusters[cluster_id] = dataclasses.replace(
        cluster,
        epochs=taken.epochs,
        current_epoch=taken.current_epoch,
        has_history=taken.has_history,
    )
    for cid in [c for c, info in state.contracts.items() if info.cluster == cluster_id]:
        del state.contracts[cid]
        state.runtimes.pop(cid, None)
        core.agents.pop(cid, None)
    state.contracts.update(taken.contracts)
    for sid in [s for s, info in state.schedules.items() if info.contract_id in taken.contracts]:
        del state.schedules[sid]
    state.schedules.update(taken.schedules)
    state.counters.update(taken.counters)
    state.runtimes.update(taken.runtimes)
