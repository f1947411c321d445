"""Contract state: an in-enclave key-value map per contract with an incrementally kept digest.
The digest is a keyed sum of entry MACs (O(1) per write); a journal undoes a failed block."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from veilnet.codec import encode
from veilnet.crypto import SymmetricKey

_MOD = 2**256
_ABSENT = object()
_UNKEPT = object()


class Journal:
    """Undo information for the contract states written during one block.

    Only the first write of a name in a block records its old value, so rollback costs what the
    block wrote, not the size of the state. Outside ``begin`` … ``commit`` nothing is recorded.
    """

    __slots__ = ("_active", "_restorers", "_states")

    def __init__(self) -> None:
        self._active = False
        self._states: dict[ContractState, tuple[dict[str, object], SymmetricKey, int]] = {}
        self._restorers: dict[int, Callable[[], None]] = {}

    @property
    def active(self) -> bool:
        return self._active

    def begin(self) -> None:
        self._active = True
        self._states = {}
        self._restorers = {}

    def commit(self) -> None:
        self._active = False
        self._states = {}
        self._restorers = {}

    def wants(self, owner: object) -> bool:
        """Whether ``owner`` must still be saved in this block (saving it twice is waste)."""
        return self._active and id(owner) not in self._restorers

    def note_object(self, owner: object, restore: Callable[[], None]) -> None:
        """Keep ``restore`` (which puts ``owner`` back as it is now) unless one is kept already."""
        if self._active:
            self._restorers.setdefault(id(owner), restore)

    def rollback(self) -> None:
        """Put every state written since ``begin`` back as it was, then stop recording."""
        for state, (old_values, mac_key, digest) in self._states.items():
            for name, old in old_values.items():
                if old is _ABSENT:
                    state.values.pop(name, None)
                else:
                    state.values[name] = old  # type: ignore[assignment]
            state._mac_key, state._digest = mac_key, digest
        for restore in self._restorers.values():
            restore()
        self.commit()

    def _saved(self, state: ContractState) -> dict[str, object] | None:
        if not self._active:
            return None
        saved = self._states.get(state)
        if saved is None:
            saved = self._states[state] = ({}, state._mac_key, state._digest)
        return saved[0]

    def note_write(self, state: ContractState, name: str) -> None:
        saved = self._saved(state)
        if saved is not None and name not in saved:
            saved[name] = state.values.get(name, _ABSENT)

    def note_rekey(self, state: ContractState) -> None:
        self._saved(state)


class ContractState:
    """Committed key-value state of one contract, with a running keyed digest.

    The digest is ``sum(MAC(k, contract || name || value)) mod 2^256`` over all entries; adding,
    replacing and deleting adjust it in O(1). Only holders of the commitment key can compute
    entry MACs, so the sum cannot be steered by outsiders.
    """

    __slots__ = ("_digest", "_journal", "_mac_key", "_view", "_views", "contract_id", "values")

    def __init__(
        self, contract_id: bytes, mac_key: SymmetricKey, *, journal: Journal | None = None
    ) -> None:
        self.contract_id = contract_id
        self.values: dict[str, bytes] = {}
        self._mac_key = mac_key
        self._digest = 0
        self._journal = journal if journal is not None else Journal()
        self._views: weakref.WeakSet[StateView] = weakref.WeakSet()
        self._view: StateView | None = None

    def view(self) -> StateView:
        """This state as it is now, for a reader outside the core lock (queries, jobs): O(1),
        however large the state, and unchanged by the blocks applied while it is read. Views
        taken with no write between them are one object: a cluster of many agents, most of
        them idle in a block, takes new views of the written ones only."""
        view = self._view
        if view is None:
            view = self._view = StateView(self.values)
            self._views.add(view)
        return view

    def _entry(self, name: str, value: bytes) -> int:
        return int.from_bytes(self._mac_key.mac(encode([self.contract_id, name, value])), "big")

    def get(self, name: str) -> bytes | None:
        return self.values.get(name)

    def keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self.values if k.startswith(prefix))

    def apply(self, writes: Mapping[str, bytes | None]) -> None:
        """Commit a batch of writes (``None`` deletes) in order."""
        views = list(self._views) if self._views else ()
        if writes:
            self._view = None  # taken before these writes: the next reader needs a new one
        for name, value in writes.items():
            self._journal.note_write(self, name)
            for view in views:
                view.keep(name)  # before the write: a reader may be between its two lookups
            old = self.values.get(name)
            if old is not None:
                self._digest = (self._digest - self._entry(name, old)) % _MOD
            if value is None:
                self.values.pop(name, None)
            else:
                self.values[name] = value
                self._digest = (self._digest + self._entry(name, value)) % _MOD

    @property
    def digest(self) -> bytes:
        return self._digest.to_bytes(32, "big")

    def rekey(self, mac_key: SymmetricKey) -> None:
        """Switch the commitment key (a new key epoch) and recompute the digest."""
        self._journal.note_rekey(self)
        self._mac_key = mac_key
        self._digest = sum(self._entry(n, v) for n, v in self.values.items()) % _MOD

    def load(self, entries: Iterable[list[Any]], digest: bytes) -> None:
        """Take a fresh state's entries and digest from a checkpoint this core sealed itself
        (AEAD under a key only this enclave opens), so neither is recomputed: restoring a
        million entries costs their decoding, not a million MACs.

        Raises:
            ValueError: an entry is not ``[str, bytes]`` or the digest not 32 bytes.
        """
        if self.values or len(digest) != 32:
            raise ValueError("load() fills a fresh state with a 32-byte digest")
        values: dict[str, bytes] = {}
        for name, value in entries:
            if not isinstance(name, str) or not isinstance(value, bytes):
                raise ValueError("malformed state entry")
            values[name] = value
        self.values = values
        self._view = None
        self._digest = int.from_bytes(digest, "big")


class StateView:
    """A contract state as it was when ``ContractState.view`` took it, read while blocks go on.

    Copy on write: the live map is shared, and every later first write of a name saves the old
    value here first (``keep``). A read looks at the live map, then at what was kept, in that
    order; the writer keeps, then writes. So whichever way a read and a write interleave, the
    read returns the value of when the view was taken (CPython's dict operations are atomic
    under the GIL). A rolled-back block needs nothing more: what it wrote was kept before.
    """

    __slots__ = ("__weakref__", "_kept", "_live")

    def __init__(self, live: dict[str, bytes]) -> None:
        self._live = live
        self._kept: dict[str, object] = {}

    def keep(self, name: str) -> None:
        if name not in self._kept:
            self._kept[name] = self._live.get(name, _ABSENT)

    def get(self, name: str) -> bytes | None:
        value = self._live.get(name)
        kept = self._kept.get(name, _UNKEPT)
        if kept is _UNKEPT:
            return value
        return None if kept is _ABSENT else kept  # type: ignore[return-value]

    def keys(self, prefix: str) -> list[str]:
        """Names under ``prefix``, sorted, as of the view."""
        live = list(self._live)  # one atomic copy each, the live map first (see above)
        kept = dict(self._kept)
        names = {k for k in live if k.startswith(prefix) and k not in kept}
        names.update(k for k, v in kept.items() if v is not _ABSENT and k.startswith(prefix))
        return sorted(names)
