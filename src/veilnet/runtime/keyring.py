"""Key custody inside the core: identity, master-key history, cluster and contract keys by epoch.
Kept apart from replicated state, so a resync from genesis can carry keys; leaves only sealed."""

from __future__ import annotations

from typing import Any

from veilnet.codec import decode, encode
from veilnet.crypto import SecretKey, SymmetricKey


class KeyRing:
    """Secret keys this enclave holds. Everything here is private to one worker."""

    __slots__ = ("cluster_keys", "identity", "masters", "proposals")

    def __init__(self, identity: SecretKey) -> None:
        self.identity = identity
        self.masters: dict[int, SecretKey] = {}
        """Master key history by rotation number (gatekeepers only)."""
        self.proposals: dict[int, SecretKey] = {}
        """This gatekeeper's own proposal per rotation (kept until the rotation resolves)."""
        self.cluster_keys: dict[tuple[bytes, int], SecretKey] = {}

    @property
    def sealer(self) -> SymmetricKey:
        return self.identity.symmetric("checkpoint")

    def cluster_key(self, cluster_id: bytes, epoch: int) -> SecretKey | None:
        return self.cluster_keys.get((cluster_id, epoch))

    def contract_key(self, cluster_id: bytes, contract_id: bytes, epoch: int) -> SecretKey | None:
        cluster = self.cluster_keys.get((cluster_id, epoch))
        if cluster is None:
            return None
        return cluster.child("contract", contract_id)

    def forget_cluster_epoch(self, cluster_id: bytes, epoch: int) -> None:
        """Destroy an old epoch's key (forward secrecy once its window has passed)."""
        self.cluster_keys.pop((cluster_id, epoch), None)

    def export(self) -> bytes:
        """Every key, each sealed under the identity's checkpoint key (not under itself)."""
        sealer = self.sealer
        return encode(
            {
                "masters": [[r, k.seal(sealer, aad=b"master")] for r, k in self.masters.items()],
                "proposals": [
                    [r, k.seal(sealer, aad=b"proposal")] for r, k in self.proposals.items()
                ],
                "clusters": [
                    [c, e, k.seal(sealer, aad=b"cluster" + c)]
                    for (c, e), k in self.cluster_keys.items()
                ],
            }
        )

    def import_(self, blob: bytes) -> None:
        """Inverse of ``export`` for the same identity; raises on any mismatch."""
        sealer = self.sealer
        value: Any = decode(blob)
        if not isinstance(value, dict):
            raise ValueError("malformed keyring")
        for rotation, sealed in value["masters"]:
            self.masters[int(rotation)] = SecretKey.unseal(sealer, sealed, aad=b"master")
        for rotation, sealed in value["proposals"]:
            self.proposals[int(rotation)] = SecretKey.unseal(sealer, sealed, aad=b"proposal")
        for cluster, epoch, sealed in value["clusters"]:
            self.cluster_keys[(cluster, int(epoch))] = SecretKey.unseal(
                sealer, sealed, aad=b"cluster" + cluster
            )
