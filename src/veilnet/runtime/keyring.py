"""Key custody inside the core: identity, master-key history, cluster and contract keys by epoch.
Kept apart from replicated state; a key leaves the enclave only sealed."""

from __future__ import annotations

from typing import Any

from veilnet.codec import decode, encode
from veilnet.crypto import QuerySession, SecretKey, SymmetricKey
from veilnet.errors import VeilnetError
from veilnet.protocol import envelopes as proto
from veilnet.runtime.constants import MAX_MEMOISED_CONTRACT_KEYS, MAX_MEMOISED_QUERY_SESSIONS
from veilnet.runtime.errors import CheckpointInvalid
from veilnet.runtime.interfaces import Platform

SEAL_SEED_BYTES = 32


class KeyRing:
    """Secret keys this enclave holds. Everything here is private to one worker."""

    __slots__ = (
        "_contract_keys",
        "_sessions",
        "cluster_keys",
        "encryption",
        "identity",
        "masters",
        "proposals",
    )

    def __init__(self, identity: SecretKey) -> None:
        self.identity = identity
        self.masters: dict[int, SecretKey] = {}
        """Master key history by rotation number (gatekeepers only)."""
        self.proposals: dict[int, SecretKey] = {}
        """This gatekeeper's own proposal per rotation (kept until the rotation resolves)."""
        self.cluster_keys: dict[tuple[bytes, int], SecretKey] = {}
        self.encryption: dict[int, SecretKey] = {}
        """This worker's encryption keys by number (``veilnet.runtime.encryption``)."""
        self._contract_keys: dict[tuple[bytes, int, bytes], SecretKey] = {}
        self._sessions: dict[tuple[bytes, int, bytes, bytes, bytes], QuerySession] = {}

    def cluster_key(self, cluster_id: bytes, epoch: int) -> SecretKey | None:
        return self.cluster_keys.get((cluster_id, epoch))

    def contract_key(self, cluster_id: bytes, contract_id: bytes, epoch: int) -> SecretKey | None:
        memo = (cluster_id, epoch, contract_id)
        found = self._contract_keys.get(memo)
        if found is not None:
            return found
        cluster = self.cluster_keys.get((cluster_id, epoch))
        if cluster is None:
            return None
        if len(self._contract_keys) >= MAX_MEMOISED_CONTRACT_KEYS:
            self._contract_keys.clear()
        found = self._contract_keys[memo] = cluster.child("contract", contract_id)
        return found

    def query_session(
        self,
        cluster_id: bytes,
        contract_id: bytes,
        epoch: int,
        envelope: bytes,
        ephemeral_key: bytes,
        *,
        chain_id: int,
    ) -> QuerySession | None:
        """The contract key's session with a client's query key, from the sealed secret its
        requests carry (memoised: a client sends many queries under one certificate). None if
        the epoch's key is not held.

        Raises:
            EnvelopeInvalid / UnsupportedVersion / KeyInvalid: as ``worker_session``.
        """
        memo = (cluster_id, epoch, contract_id, ephemeral_key, envelope)
        found = self._sessions.get(memo)
        if found is not None:
            return found
        key = self.contract_key(cluster_id, contract_id, epoch)
        if key is None:
            return None
        found = proto.worker_session(
            key, envelope, ephemeral_key, chain_id=chain_id, contract_id=contract_id, epoch=epoch
        )
        if len(self._sessions) >= MAX_MEMOISED_QUERY_SESSIONS:
            del self._sessions[next(iter(self._sessions))]
        self._sessions[memo] = found
        return found

    def savepoint(self) -> tuple[Any, ...]:
        """Copies of the key maps, for ``restore`` after a failed block."""
        return (
            dict(self.masters),
            dict(self.proposals),
            dict(self.cluster_keys),
            dict(self.encryption),
        )

    def restore(self, saved: tuple[Any, ...]) -> None:
        """Back to ``savepoint()``; memoised contract keys and sessions are dropped."""
        masters, proposals, cluster_keys, encryption = saved
        self.masters, self.proposals, self.cluster_keys = masters, proposals, cluster_keys
        self.encryption = encryption
        self._contract_keys = {}
        self._sessions = {}

    def forget_cluster_epoch(self, cluster_id: bytes, epoch: int) -> None:
        """Destroy an old epoch's key (forward secrecy once its window has passed)."""
        self.cluster_keys.pop((cluster_id, epoch), None)
        for memo in [m for m in self._contract_keys if m[:2] == (cluster_id, epoch)]:
            del self._contract_keys[memo]
        for session in [m for m in self._sessions if m[:2] == (cluster_id, epoch)]:
            del self._sessions[session]

    def export(self, sealer: SymmetricKey, *, clusters: bool = True) -> bytes:
        """Every key, each sealed under ``sealer``; ``clusters=False`` leaves out the cluster
        keys (the ones forward secrecy destroys)."""
        return encode(
            {
                "masters": [[r, k.seal(sealer, aad=b"master")] for r, k in self.masters.items()],
                "proposals": [
                    [r, k.seal(sealer, aad=b"proposal")] for r, k in self.proposals.items()
                ],
                "encryption": [
                    [i, k.seal(sealer, aad=b"encryption")] for i, k in self.encryption.items()
                ],
                "clusters": [
                    [c, e, k.seal(sealer, aad=b"cluster" + c)]
                    for (c, e), k in (self.cluster_keys.items() if clusters else ())
                ],
            }
        )

    def import_(self, blob: bytes, sealer: SymmetricKey) -> None:
        """Inverse of ``export`` under the same sealer; raises on any mismatch."""
        value: Any = decode(blob)
        if not isinstance(value, dict):
            raise ValueError("malformed keyring")
        for rotation, sealed in value["masters"]:
            self.masters[int(rotation)] = SecretKey.unseal(sealer, sealed, aad=b"master")
        for rotation, sealed in value["proposals"]:
            self.proposals[int(rotation)] = SecretKey.unseal(sealer, sealed, aad=b"proposal")
        for index, sealed in value["encryption"]:
            self.encryption[int(index)] = SecretKey.unseal(sealer, sealed, aad=b"encryption")
        for cluster, epoch, sealed in value["clusters"]:
            self.cluster_keys[(cluster, int(epoch))] = SecretKey.unseal(
                sealer, sealed, aad=b"cluster" + cluster
            )


def fresh_sealer(platform: Platform, aad: bytes) -> tuple[bytes, SymmetricKey]:
    """A sealing key drawn from TEE entropy for one export, and that key sealed to the
    platform. Nothing long-lived derives it: whoever later learns the identity key (or any
    other key) opens no checkpoint or key blob written before."""
    seed = platform.random_bytes(SEAL_SEED_BYTES)
    return platform.seal(seed, aad), SymmetricKey.generate(seed)


def opened_sealer(platform: Platform, wrapped: bytes, aad: bytes) -> SymmetricKey:
    """Inverse of ``fresh_sealer``; raises what ``Platform.unseal`` raises."""
    return SymmetricKey.generate(platform.unseal(wrapped, aad))


def seal_keyring(keys: KeyRing, platform: Platform, aad: bytes, *, clusters: bool = True) -> bytes:
    """``keys.export`` under a fresh sealer, with that sealer wrapped to the platform."""
    wrapped, sealer = fresh_sealer(platform, aad)
    return encode([wrapped, keys.export(sealer, clusters=clusters)])


def open_keyring(keys: KeyRing, platform: Platform, blob: bytes, aad: bytes) -> None:
    """Inverse of ``seal_keyring`` into ``keys``.

    Raises:
        CheckpointInvalid: the blob does not open here (another identity, platform or purpose).
    """
    try:
        value: Any = decode(blob)
        wrapped, exported = value
        keys.import_(exported, opened_sealer(platform, wrapped, aad))
    except (ValueError, TypeError, KeyError, VeilnetError) as exc:
        raise CheckpointInvalid("the sealed keys do not open for this identity") from exc
