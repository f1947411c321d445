"""Contract state: an in-enclave key-value map per contract with an incrementally kept digest.
The digest is a keyed sum of entry MACs (O(1) per write); commitments built on it leak nothing."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from veilnet.codec import encode
from veilnet.crypto import SymmetricKey

_MOD = 2**256


class ContractState:
    """Committed key-value state of one contract, with a running keyed digest.

    The digest is ``sum(MAC(k, contract || name || value)) mod 2^256`` over all entries; adding,
    replacing and deleting adjust it in O(1). Only holders of the commitment key can compute
    entry MACs, so the sum cannot be steered by outsiders.
    """

    __slots__ = ("_digest", "_mac_key", "contract_id", "values")

    def __init__(self, contract_id: bytes, mac_key: SymmetricKey) -> None:
        self.contract_id = contract_id
        self.values: dict[str, bytes] = {}
        self._mac_key = mac_key
        self._digest = 0

    def _entry(self, name: str, value: bytes) -> int:
        return int.from_bytes(self._mac_key.mac(encode([self.contract_id, name, value])), "big")

    def get(self, name: str) -> bytes | None:
        return self.values.get(name)

    def keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self.values if k.startswith(prefix))

    def apply(self, writes: Mapping[str, bytes | None]) -> None:
        """Commit a batch of writes (``None`` deletes) in order."""
        for name, value in writes.items():
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
        self._mac_key = mac_key
        self._digest = 0
        values, self.values = self.values, {}
        self.apply(dict(sorted(values.items())))

    def export_sealed(self, state_key: SymmetricKey) -> list[list[bytes]]:
        """Entries as ``[MAC(name), seal(name || value)]``, values AEAD-sealed and names hidden."""
        out = []
        for name in sorted(self.values):
            hidden = state_key.mac(name.encode())
            sealed = state_key.seal(
                encode([name, self.values[name]]), aad=self.contract_id + hidden
            )
            out.append([hidden, sealed])
        return out

    def import_sealed(self, state_key: SymmetricKey, entries: Iterable[list[bytes]]) -> None:
        from veilnet.codec import decode

        batch: dict[str, bytes | None] = {}
        for hidden, sealed in entries:
            plain = decode(state_key.open(sealed, aad=self.contract_id + hidden))
            if not (isinstance(plain, list) and len(plain) == 2):
                raise ValueError("malformed state entry")
            name, value = plain
            if not isinstance(name, str) or not isinstance(value, bytes):
                raise ValueError("malformed state entry")
            batch[name] = value
        self.apply(batch)
