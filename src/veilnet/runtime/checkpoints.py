"""Checkpoints, the state root and the sealed identity, all derived from ``ReplicatedState``.
Each checkpoint is sealed under its own key from TEE entropy (wrapped to the platform)."""

from __future__ import annotations

import hashlib
from typing import Any, Final

from veilnet.codec import decode, encode
from veilnet.codec.constants import BULK_MAX_ITEMS, BULK_MAX_SIZE
from veilnet.crypto import SecretKey, SymmetricKey
from veilnet.errors import VeilnetError
from veilnet.runtime import contracts
from veilnet.runtime.config import CoreConfig
from veilnet.runtime.context import CoreContext
from veilnet.runtime.errors import CheckpointInvalid
from veilnet.runtime.interfaces import Platform
from veilnet.runtime.keyring import fresh_sealer, opened_sealer
from veilnet.runtime.replicated import (
    LOCAL,
    REPLICATED,
    ContractRuntime,
    ReplicatedState,
    fields_in,
    from_plain,
    hint_of,
    to_plain,
)

CHECKPOINT_VERSION: Final = 8
"""2: one ``ReplicatedState`` object, typed outcomes, enum lifecycles. 3: the sealed height
(rollback anchor) and flagged identities. 4: the master-key address of every rotation, and
the window of used command nonces per sender. 5: replica divergence verdicts. 6: sealed under
a key drawn for each checkpoint, not one derived from the identity. 7: late join by snapshot
(syncing members, the verdicts formed for them, the snapshot a joiner waits for). 8: contract
entries no longer sealed one by one inside the sealed body, and their digest kept: restoring a
million entries costs their decoding only."""


# ---- the sealed identity -------------------------------------------------------------------


def _wrap_sealer(wrap: bytes) -> SymmetricKey:
    return SecretKey.derive(wrap[:32], "identity-wrap").symmetric("seal")


def seal_identity(identity: SecretKey, platform: Platform, config: CoreConfig) -> bytes:
    """The identity key sealed to this platform (the host stores it next to checkpoints)."""
    wrap = platform.random_bytes(32)
    sealed = identity.seal(_wrap_sealer(wrap), aad=config.identity_aad)
    return platform.seal(wrap + sealed, config.identity_aad)


def unseal_identity(blob: bytes, platform: Platform, config: CoreConfig) -> SecretKey:
    """Inverse of ``seal_identity``. Raises CheckpointInvalid."""
    try:
        seed_blob = platform.unseal(blob, config.identity_aad)
        return SecretKey.unseal(_wrap_sealer(seed_blob), seed_blob[32:], aad=config.identity_aad)
    except (VeilnetError, ValueError) as exc:
        raise CheckpointInvalid("sealed identity does not open here") from exc


# ---- state <-> plain values ----------------------------------------------------------------


def _runtime_plain(runtime: ContractRuntime, *, sealed: bool) -> Any:
    """A contract's private data. For a checkpoint (``sealed``: the whole body is sealed) the
    entries in any order with their digest; for the state root, sorted and without it."""
    entries: Any
    if sealed:
        entries = [[k, v] for k, v in runtime.state.values.items()]
    else:
        entries = [[k, v] for k, v in sorted(runtime.state.values.items())]
    return {
        "entries": entries,
        "digest": runtime.state.digest if sealed else b"",
        **runtime.meta_plain(),
    }


def export_state(core: CoreContext, *, scopes: tuple[str, ...], sealed: bool) -> dict[str, Any]:
    """The fields of the given scopes as plain values (contract entries sealed if asked)."""
    state = core.state
    out: dict[str, Any] = {}
    for f in fields_in(*scopes):
        if f.name == "runtimes":
            out[f.name] = [
                [cid, _runtime_plain(rt, sealed=sealed)]
                for cid, rt in sorted(state.runtimes.items())
            ]
        else:
            out[f.name] = to_plain(getattr(state, f.name))
    return out


def import_state(core: CoreContext, plain: dict[str, Any]) -> ReplicatedState:
    """A ``ReplicatedState`` from ``export_state(scopes=(REPLICATED, LOCAL), sealed=True)``."""
    expected = {f.name for f in fields_in(REPLICATED, LOCAL)}
    if set(plain) != expected:
        raise CheckpointInvalid("checkpoint fields do not match this core's state")
    values = {
        name: from_plain(hint_of(name), value)
        for name, value in plain.items()
        if name != "runtimes"
    }
    state = ReplicatedState(**values)
    for cid, data in plain["runtimes"]:
        contract = state.contracts[cid]
        key = core.keys.contract_key(contract.cluster, cid, contract.epoch)
        if key is None:
            raise CheckpointInvalid("checkpoint lacks a contract's key")
        runtime = contracts.new_runtime(core, cid, key)
        runtime.state.load(data["entries"], data["digest"])
        runtime.load_meta(data)
        state.runtimes[cid] = runtime
    return state


def state_root(core: CoreContext) -> bytes:
    """Digest of the replicated state replicas of one cluster must agree on.

    Leaves out what is private to one worker: the ``LOCAL`` and ``TRANSIENT`` fields and the
    egress counters of worker identities (each worker numbers only its own messages).
    """
    plain = export_state(core, scopes=(REPLICATED,), sealed=False)
    plain["counters"] = [[o, n] for o, n in plain["counters"] if o not in core.state.workers]
    return hashlib.sha256(encode(plain, max_items=BULK_MAX_ITEMS)).digest()


# ---- checkpoints ---------------------------------------------------------------------------


def _checkpoint_aad(core: CoreContext) -> bytes:
    return b"veil/v1/checkpoint" + core.config.identity_aad + core.address


def checkpoint(core: CoreContext) -> bytes:
    """The whole core state, sealed under a key drawn for this checkpoint alone, that key
    sealed to the platform. Keys rotate with every checkpoint: a leaked identity key (or a
    leaked later checkpoint key) opens no checkpoint the host kept from before.

    From now on this core's heartbeats name this checkpoint's head as the newest sealed one,
    so the host must store it durably before it applies the next block.
    """
    if core.state.head is not None:
        # never lower: heartbeats name the newest checkpoint this identity ever sealed
        core.state.sealed_height = max(core.state.sealed_height, core.state.head.number)
    wrapped_key, sealer = fresh_sealer(core.platform, _checkpoint_aad(core))
    body = encode(
        {
            "v": CHECKPOINT_VERSION,
            "chain_id": core.config.chain_id,
            "registry": core.config.registry,
            "config_digest": core.config.config_digest,
            "identity": core.address,
            "keys": core.keys.export(sealer),
            "state": export_state(core, scopes=(REPLICATED, LOCAL), sealed=True),
        },
        max_items=BULK_MAX_ITEMS,  # an agent's state may hold millions of entries
    )
    return encode(
        {
            "identity": seal_identity(core.keys.identity, core.platform, core.config),
            "key": wrapped_key,
            "body": sealer.seal(body, aad=_checkpoint_aad(core)),
        }
    )


def split_checkpoint(blob: bytes) -> tuple[bytes, bytes, bytes]:
    """(sealed identity, sealed checkpoint key, sealed body) of a checkpoint, decoded once.
    Raises CheckpointInvalid."""
    try:
        outer: Any = decode(blob, max_size=BULK_MAX_SIZE)
    except (VeilnetError, ValueError) as exc:
        raise CheckpointInvalid("checkpoint does not open or is malformed") from exc
    if not isinstance(outer, dict) or set(outer) != {"identity", "key", "body"}:
        raise CheckpointInvalid("malformed checkpoint (or one from before version 6)")
    identity, key, body = outer["identity"], outer["key"], outer["body"]
    if not (isinstance(identity, bytes) and isinstance(key, bytes) and isinstance(body, bytes)):
        raise CheckpointInvalid("malformed checkpoint")
    return identity, key, body


def restore_into(core: CoreContext, sealed_key: bytes, sealed_body: bytes) -> None:
    """Load a checkpoint's keys and state into a freshly booted ``core`` of the same identity.

    Raises:
        CheckpointInvalid: it does not open, is of another version or network, or is malformed.
    """
    try:
        sealer = opened_sealer(core.platform, sealed_key, _checkpoint_aad(core))
        body: Any = decode(
            sealer.open(sealed_body, aad=_checkpoint_aad(core)),
            max_size=BULK_MAX_SIZE,
            max_items=BULK_MAX_ITEMS,
        )
        if not isinstance(body, dict) or body.get("v") != CHECKPOINT_VERSION:
            raise CheckpointInvalid("unknown checkpoint version")
        if body["chain_id"] != core.config.chain_id or body["registry"] != core.config.registry:
            raise CheckpointInvalid("checkpoint belongs to another network")
        if body["config_digest"] != core.config.config_digest:
            # a host may not carry state made under one configuration into another
            raise CheckpointInvalid("checkpoint was made under another enclave configuration")
        core.keys.import_(body["keys"], sealer)
        core.set_state(import_state(core, body["state"]))
    except CheckpointInvalid:
        raise
    except (VeilnetError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointInvalid("checkpoint does not open or is malformed") from exc


__all__ = [
    "CHECKPOINT_VERSION",
    "checkpoint",
    "restore_into",
    "seal_identity",
    "split_checkpoint",
    "state_root",
    "unseal_identity",
]
