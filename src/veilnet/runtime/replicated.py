"""The one replicated-state object of a core, and the conversions derived from its declaration.
Checkpoint export and import, the state root and block rollback all walk the same fields.

Theory of operation
-------------------
Every field of ``ReplicatedState`` carries a scope in its metadata:

- ``REPLICATED``: equal on every replica of a cluster; in the state root and in checkpoints.
- ``LOCAL``: this worker's own bookkeeping (events held back for a key or a snapshot); in
  checkpoints, not in the state root.
- ``TRANSIENT``: neither: rebuilt after a restart, but still rolled back with a failed block.

A new field is declared here once; ``to_plain`` / ``from_plain`` derive its encoding from its type
hint. Records are frozen, containers hold records or immutable values, so a savepoint is a shallow
copy of the containers; contract key-value state is journaled instead (``state.Journal``), since
copying it per block would cost O(state).
"""

from __future__ import annotations

import bisect
import dataclasses
import enum
import functools
import hashlib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Union

from veilnet.codec import (
    Oversized,
    Record,
    decode_record,
    encode,
    encode_array,
    encode_map,
    encode_piece,
)
from veilnet.codec.constants import BULK_MAX_ITEMS
from veilnet.protocol.events import BlockHeader, ChainEvent
from veilnet.protocol.outcomes import OutcomeRecord
from veilnet.runtime import constants
from veilnet.runtime.records import (
    ClusterInfo,
    ContractInfo,
    MasterKeyInfo,
    RotationState,
    ScheduleInfo,
    SyncInfo,
    WorkerInfo,
)
from veilnet.runtime.state import ContractState, Journal

__all__ = ["LOCAL", "REPLICATED", "TRANSIENT", "ContractRuntime", "ReplicatedState"]

REPLICATED: Final = "replicated"
LOCAL: Final = "local"
TRANSIENT: Final = "transient"


_IN_ROOT: Final = types.MappingProxyType({"scope": REPLICATED})
_OWN: Final = types.MappingProxyType({"scope": LOCAL})
_RUN: Final = types.MappingProxyType({"scope": TRANSIENT})


class ContractRuntime:
    """Private per-contract data of a member replica: state, sender nonces, outcomes, secrets.

    Every change goes through a method, so the block journal can undo it.
    """

    __slots__ = (
        "_journal",
        "_meta",
        "_pieces",
        "nonces",
        "outcomes",
        "recent",
        "secrets",
        "state",
    )

    def __init__(self, state: ContractState, journal: Journal) -> None:
        self.state = state
        self._journal = journal
        self._meta: bytes | None = None
        self._pieces: dict[int, tuple[OutcomeRecord, bytes]] = {}
        """Per seq, the outcome ``meta_digest`` last encoded and its piece of the list."""
        self.nonces: dict[bytes, int] = {}
        """Per sender, the floor: no nonce at or below it applies (again)."""
        self.recent: dict[bytes, tuple[int, ...]] = {}
        """Per sender, the nonces above its floor already used (sorted)."""
        self.outcomes: dict[int, OutcomeRecord] = {}
        self.secrets: dict[str, str] = {}

    def _note(self) -> None:
        self._meta = None  # about to change: the digest is computed again when asked
        if not self._journal.wants(self):  # copy once per block, not once per change
            return
        nonces, outcomes, secrets = dict(self.nonces), dict(self.outcomes), dict(self.secrets)
        recent = dict(self.recent)

        def restore() -> None:
            self.nonces, self.outcomes, self.secrets = nonces, outcomes, secrets
            self.recent = recent
            self._meta = None

        self._journal.note_object(self, restore)

    def meta_plain(self, *, outcomes: bool = True) -> dict[str, Any]:
        """Everything of this runtime but the key-value state, as plain values: what a
        snapshot carries and the cluster commitment covers (``sync``). Without ``outcomes``:
        all but those."""
        plain: dict[str, Any] = {
            "nonces": sorted(self.nonces.items()),
            "recent": [[s, list(n)] for s, n in sorted(self.recent.items())],
            "secrets": sorted(self.secrets.items()),
        }
        if outcomes:
            plain["outcomes"] = [[s, o.to_bytes()] for s, o in self.outcomes.items()]
        return plain

    def load_meta(self, plain: Mapping[str, Any]) -> None:
        """Inverse of ``meta_plain``, into a fresh runtime (a checkpoint, a snapshot).

        Raises:
            TypeError, ValueError, KeyError: ``plain`` is not of that shape.
        """
        self.nonces = {bytes(s): int(n) for s, n in plain["nonces"]}
        self.recent = {bytes(s): tuple(sorted(int(x) for x in n)) for s, n in plain["recent"]}
        self.outcomes = {int(s): OutcomeRecord.from_bytes(o) for s, o in plain["outcomes"]}
        self.secrets = {str(n): str(v) for n, v in plain["secrets"]}
        self._meta = None

    def meta_digest(self) -> bytes:
        """SHA-256 of ``meta_plain``'s encoding (``plain_digest``), kept until the next change
        (commitments and the first query after a block ask). Each outcome's piece of the
        encoding is kept while its record is the same object (records are frozen), so a
        block re-encodes the outcomes it recorded, not the thousands kept before."""
        if self._meta is None:
            self._meta = hashlib.sha256(self._meta_encoding()).digest()
        return self._meta

    def _meta_encoding(self) -> bytes:
        """``encode(self.meta_plain(), max_items=BULK_MAX_ITEMS)``, spliced from pieces."""
        kept, fresh, outcomes = self._pieces, {}, []
        for seq, outcome in self.outcomes.items():
            found = kept.get(seq)
            if found is None or found[0] is not outcome:
                found = (outcome, encode_piece([seq, outcome.to_bytes()]))
            fresh[seq] = found
            outcomes.append(found[1])
        self._pieces = fresh
        # what encode() would count and refuse: the map, its four lists, every item in them
        items = 5 + 3 * (len(self.nonces) + len(self.outcomes) + len(self.secrets))
        items += sum(3 + len(used) for used in self.recent.values())
        if items > BULK_MAX_ITEMS:
            raise Oversized("value has too many items")
        pieces = {
            key: encode_piece(value, max_items=BULK_MAX_ITEMS)
            for key, value in self.meta_plain(outcomes=False).items()
        }
        pieces["outcomes"] = encode_array(outcomes)
        return encode_map(pieces, versioned=True)

    def nonce_used(self, sender: bytes, nonce: int) -> bool:
        """Whether ``nonce`` may not apply: at or below the floor, a window or more below the
        highest used, or used already."""
        floor = self.nonces.get(sender, -1)
        recent = self.recent.get(sender, ())
        highest = recent[-1] if recent else floor
        if nonce <= max(floor, highest - constants.COMMAND_NONCE_WINDOW):
            return True
        # the list is sorted and up to MAX_RECENT_NONCES long: a scan per command showed
        at = bisect.bisect_left(recent, nonce)
        return at < len(recent) and recent[at] == nonce

    def use_nonce(self, sender: bytes, nonce: int) -> None:
        """Mark ``nonce`` used; the floor rises to keep the window and the list bounded."""
        self._note()
        used = list(self.recent.get(sender, ()))
        if used and nonce < used[-1]:
            bisect.insort(used, nonce)
        else:  # the common case: a wallet's nonces rise
            used.append(nonce)
        floor = self.nonces.get(sender, -1)
        # the oldest go: past the cap, and a window or more below the highest (never the highest)
        cut = max(
            len(used) - constants.MAX_RECENT_NONCES,
            bisect.bisect_right(used, used[-1] - constants.COMMAND_NONCE_WINDOW),
        )
        if cut > 0:
            floor = used[cut - 1]
            del used[:cut]
        self.nonces[sender] = floor
        self.recent[sender] = tuple(used)

    def set_secret(self, name: str, value: str) -> None:
        self._note()
        self.secrets[name] = value

    def record_outcome(self, seq: int, outcome: OutcomeRecord) -> None:
        """Keep ``outcome`` for its sender; the oldest are dropped past the per-contract cap."""
        self._note()
        self.outcomes[seq] = outcome
        while len(self.outcomes) > constants.MAX_OUTCOMES_PER_CONTRACT:
            del self.outcomes[next(iter(self.outcomes))]


def plain_digest(value: Any) -> bytes:
    """SHA-256 of a plain value's canonical encoding (bulk bounds: the core made it)."""
    return hashlib.sha256(encode(value, max_items=BULK_MAX_ITEMS)).digest()


Buffered = tuple[tuple[BlockHeader, ChainEvent], ...]


@dataclass(slots=True, kw_only=True)
class ReplicatedState:
    """Everything a core knows from the chain, in one place (keys live in the ``KeyRing``)."""

    head: BlockHeader | None = field(default=None, metadata=_IN_ROOT)
    counters: dict[bytes, int] = field(default_factory=dict, metadata=_IN_ROOT)
    """Egress sequence per origin (the Outbox numbers from these)."""
    measurements: set[bytes] = field(default_factory=set, metadata=_IN_ROOT)
    gatekeepers: list[bytes] = field(default_factory=list, metadata=_IN_ROOT)
    workers: dict[bytes, WorkerInfo] = field(default_factory=dict, metadata=_IN_ROOT)
    collaterals: dict[bytes, bytes] = field(default_factory=dict, metadata=_IN_ROOT)
    master: MasterKeyInfo | None = field(default=None, metadata=_IN_ROOT)
    master_addresses: dict[int, bytes] = field(default_factory=dict, metadata=_IN_ROOT)
    """Rotation → address of that rotation's master key, as the Registry recorded it: the only
    master keys a gatekeeper accepts from another (history shares are checked against it)."""
    first_gatekeeper_block: bytes | None = field(default=None, metadata=_IN_ROOT)
    rotation: RotationState = field(default_factory=RotationState, metadata=_IN_ROOT)
    master_shares: dict[tuple[int, bytes], bytes] = field(default_factory=dict, metadata=_IN_ROOT)
    """(rotation, proposer) → this gatekeeper's wrapped share of the proposed key."""
    clusters: dict[bytes, ClusterInfo] = field(default_factory=dict, metadata=_IN_ROOT)
    contracts: dict[bytes, ContractInfo] = field(default_factory=dict, metadata=_IN_ROOT)
    runtimes: dict[bytes, ContractRuntime] = field(default_factory=dict, metadata=_IN_ROOT)
    """Private state of the contracts this worker serves (sealed in checkpoints)."""
    flagged: set[bytes] = field(default_factory=set, metadata=_IN_ROOT)
    """Worker identities the Registry caught running twice: they get no key, ever again."""
    divergences: dict[bytes, int] = field(default_factory=dict, metadata=_IN_ROOT)
    """Worker → the newest height at which the Registry found its state commitment against
    its cluster's majority (``ReplicaDiverged``); cleared when it registers again."""
    schedules: dict[int, ScheduleInfo] = field(default_factory=dict, metadata=_IN_ROOT)
    """Standing jobs by schedule id (``JobScheduled`` until ``ScheduleCancelled``)."""
    pccs_for: dict[bytes, bytes] = field(default_factory=dict, metadata=_IN_ROOT)
    """Quote hash → hash of the collateral a gatekeeper fetched from the network's PCCS for it
    (the first post that landed), until its verdict lands (``collateral``)."""
    syncing: dict[bytes, SyncInfo] = field(default_factory=dict, metadata=_IN_ROOT)
    """Members that joined a cluster with history and wait for a snapshot (``sync``)."""
    commitment_posts: dict[tuple[bytes, int], tuple[tuple[bytes, bytes], ...]] = field(
        default_factory=dict, metadata=_IN_ROOT
    )
    """(cluster, height) → (member, commitment) posted, kept only while the cluster has a
    syncing member and no verdict for that height formed."""
    verdicts: dict[tuple[bytes, int], bytes] = field(default_factory=dict, metadata=_IN_ROOT)
    """(cluster, height) → the commitment a strict majority of its synced members posted: what
    a joiner checks a snapshot of that height against (the newest few, while anyone syncs)."""
    buffered: dict[bytes, Buffered] = field(default_factory=dict, metadata=_OWN)
    """Per cluster, events held back until this member receives the key they need."""
    snapshot_due: dict[bytes, int] = field(default_factory=dict, metadata=_OWN)
    """Cluster → block this worker joined it at, while it waits for the cluster's state: every
    event of the cluster is held back (``buffered``) until a checked snapshot arrives."""
    pccs_sent: set[bytes] = field(default_factory=set, metadata=_OWN)
    """Quote hashes this gatekeeper posted PCCS collateral for (so it posts each once)."""
    sealed_height: int = field(default=0, metadata=_OWN)
    """Head of the newest checkpoint this identity sealed (or was restored from); heartbeats
    carry it, so a core restored from an older one sees a newer figure on chain and stops."""
    encryption_published: int = field(default=0, metadata=_OWN)
    """Number of the newest encryption key this worker published (it may not have landed)."""
    encryption_retire: dict[int, int] = field(default_factory=dict, metadata=_OWN)
    """This worker's encryption key number → the block after which it is destroyed (a window
    after its successor landed)."""
    snapshots: dict[bytes, tuple[int, Any]] = field(default_factory=dict, metadata=_RUN)
    """Cluster → (height, plain state) captured at its newest commitment height while a member
    syncs, for ``sync.export_snapshot`` (a restart captures again at the next height)."""
    jobs: list[Any] = field(default_factory=list, metadata=_RUN)
    """Job requests of served agents waiting to run (``jobs.PendingJob``): not sealed, since
    every member answers them and the consumer takes the first valid result."""
    diverged: list[str] = field(default_factory=list, metadata=_RUN)
    """What this replica saw land that differs from what it computed (for slashing later)."""

    def savepoint(self) -> ReplicatedState:
        """A copy to roll back to: containers copied, records (frozen) shared."""
        return ReplicatedState(
            **{f.name: _shallow(getattr(self, f.name)) for f in dataclasses.fields(self)}
        )


def _shallow(value: Any) -> Any:
    if isinstance(value, dict | list | set):
        return value.copy()
    return value


def fields_in(scope: str, *more: str) -> list[dataclasses.Field[Any]]:
    """The fields of ``ReplicatedState`` in the given scopes, in declaration order."""
    scopes = {scope, *more}
    return [f for f in dataclasses.fields(ReplicatedState) if f.metadata["scope"] in scopes]


_HINTS: Final = typing.get_type_hints(ReplicatedState)


def hint_of(name: str) -> Any:
    return _HINTS[name]


@functools.cache
def _hints_of(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


# ---- plain values: what canonical encoding carries ------------------------------------------


def to_plain(value: Any) -> Any:
    """Records, enums and containers → canonical-codec values (deterministic order)."""
    if isinstance(value, enum.Enum):  # before int and str: IntEnum and StrEnum are both
        return value.value
    if value is None or isinstance(value, bool | int | str | bytes):
        return value
    if isinstance(value, Record):
        return value.to_bytes()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return [[to_plain(k), to_plain(v)] for k, v in value.items()]
    if isinstance(value, set | frozenset):
        return sorted(to_plain(v) for v in value)
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    raise TypeError(f"no plain form for {type(value).__name__}")


def from_plain(hint: Any, plain: Any) -> Any:
    """Inverse of ``to_plain`` for a value of type ``hint``.

    Raises:
        TypeError, ValueError, KeyError: ``plain`` is not of that shape.
    """
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (Union, types.UnionType):
        if plain is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return from_plain(inner, plain)
    if hint is Any:
        return plain
    if origin in (dict, Mapping, typing.Mapping):
        key_hint, value_hint = args
        return {from_plain(key_hint, k): from_plain(value_hint, v) for k, v in plain}
    if origin in (set, frozenset):
        return {from_plain(args[0], v) for v in plain}
    if origin is list:
        return [from_plain(args[0], v) for v in plain]
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_plain(args[0], v) for v in plain)
        if len(plain) != len(args):
            raise ValueError("tuple of the wrong length")
        return tuple(from_plain(a, v) for a, v in zip(args, plain, strict=True))
    if isinstance(hint, type):
        if issubclass(hint, enum.Enum):
            return hint(plain)
        if issubclass(hint, BlockHeader):
            return BlockHeader.from_bytes(plain)
        if issubclass(hint, ChainEvent):
            event = decode_record(plain)
            if not isinstance(event, ChainEvent):
                raise TypeError("not a chain event")
            return event
        if dataclasses.is_dataclass(hint):
            hints = _hints_of(hint)
            if not isinstance(plain, dict) or set(plain) != {
                f.name for f in dataclasses.fields(hint)
            }:
                raise ValueError(f"malformed {hint.__name__}")
            return hint(**{name: from_plain(hints[name], v) for name, v in plain.items()})
        if hint in (bytes, int, str, bool):
            if type(plain) is not hint:
                raise TypeError(f"expected {hint.__name__}")
            return plain
    raise TypeError(f"no plain form for {hint!r}")
