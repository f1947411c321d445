"""Agent contracts: deployment, keying per cluster epoch, init, commands, secrets, outcomes.
Only members of a contract's cluster keep its private state; every replica keeps its record."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from typing import Any

from veilnet.codec import CodecError, abi_encode, decode
from veilnet.crypto import Binding, SecretKey, open_envelope, peek_envelope
from veilnet.errors import VeilnetError
from veilnet.protocol import envelopes as proto
from veilnet.protocol import events as ev
from veilnet.protocol import limits, topics
from veilnet.protocol.hosts import normalize_host
from veilnet.protocol.outcomes import OutcomeRecord
from veilnet.runtime import agents
from veilnet.runtime.context import CoreContext
from veilnet.runtime.errors import (
    CommandRejected,
    CommandReplayed,
    ContractPaused,
    InitInvalid,
    KeyEpochExpired,
    NotAuthorized,
    NotReady,
)
from veilnet.runtime.records import ContractInfo, EpochInfo
from veilnet.runtime.replicated import ContractRuntime
from veilnet.runtime.state import ContractState
from veilnet.sandbox.interfaces import Entry, JSONValue

INIT_SEQ = -1
"""The outcome slot of a contract's init (commands use their Bus sequence numbers)."""


def on_deployed(core: CoreContext, header: ev.BlockHeader, event: ev.ContractDeployed) -> None:
    state = core.state
    if event.contract_id in state.contracts or event.cluster_id not in state.clusters:
        return
    state.contracts[event.contract_id] = ContractInfo(
        cluster=event.cluster_id,
        owner=event.owner,
        controller=event.controller,
        code_hash=event.code_hash,
        code=event.code,
        init_args=event.init_args,
    )
    cluster = state.clusters[event.cluster_id]
    state.clusters[event.cluster_id] = dataclasses.replace(cluster, has_history=True)
    if cluster.current_epoch > 0:
        key_contract(core, header, event.contract_id)


def new_runtime(core: CoreContext, contract_id: bytes, key: SecretKey) -> ContractRuntime:
    state = ContractState(contract_id, key.symmetric("state-digest"), journal=core.journal)
    return ContractRuntime(state, core.journal)


def key_contract(core: CoreContext, header: ev.BlockHeader, contract_id: bytes) -> None:
    """Move a contract to its cluster's current epoch; members post its new public key."""
    state = core.state
    contract = state.contracts[contract_id]
    cluster = state.clusters[contract.cluster]
    epoch = cluster.current_epoch
    if contract.epoch >= epoch:
        return
    contract = state.contracts[contract_id] = dataclasses.replace(
        contract,
        epoch=epoch,
        epochs={
            **contract.epochs,
            epoch: EpochInfo(key_address=b"", public_key=b"", keyed_at=header.number),
        },
    )
    member = core.serves(contract.cluster)
    key = core.keys.contract_key(contract.cluster, contract_id, epoch) if member else None
    cluster_key = core.keys.cluster_key(contract.cluster, epoch) if member else None
    payload = b""
    if key is not None:
        payload = abi_encode(
            ["bytes32", "uint64", "address", "bytes"],
            [contract_id, epoch, key.address.hex, cluster.published_key(key)],
        )
    core.outbox.emit(
        cluster_key, cluster.epochs[epoch].key_address, topics.TOPIC_CONTRACT_KEY, payload
    )
    if not member:
        return
    if contract.cluster in state.snapshot_due:
        return  # a fresh runtime here would not be the cluster's state: the snapshot brings it
    if key is None:
        raise NotReady("a serving replica applied a keyed event without its key")
    runtime = state.runtimes.get(contract_id)
    if runtime is None:
        runtime = state.runtimes[contract_id] = new_runtime(core, contract_id, key)
    else:
        runtime.state.rekey(key.symmetric("state-digest"))
    if not contract.initialized:
        state.contracts[contract_id] = dataclasses.replace(contract, initialized=True)
        run_init(core, header, contract_id, runtime)


def on_key_set(core: CoreContext, header: ev.BlockHeader, event: ev.ContractKeySet) -> None:
    state = core.state
    contract = state.contracts.get(event.contract_id)
    if contract is None or event.epoch not in contract.epochs:
        return
    info = dataclasses.replace(
        contract.epochs[event.epoch], key_address=event.key_address, public_key=event.public_key
    )
    state.contracts[event.contract_id] = dataclasses.replace(
        contract, epochs={**contract.epochs, event.epoch: info}
    )
    key = core.keys.contract_key(contract.cluster, event.contract_id, event.epoch)
    if key is not None and key.address.raw != event.key_address:
        state.diverged.append(f"contract key mismatch for epoch {event.epoch}")


def _update(core: CoreContext, contract_id: bytes, **changes: object) -> None:
    contract = core.state.contracts.get(contract_id)
    if contract is not None:
        core.state.contracts[contract_id] = dataclasses.replace(contract, **changes)  # type: ignore[arg-type]


def on_paused(core: CoreContext, header: ev.BlockHeader, event: ev.ContractPaused) -> None:
    _update(core, event.contract_id, paused=event.paused)


def on_egress_host_set(core: CoreContext, header: ev.BlockHeader, event: ev.EgressHostSet) -> None:
    contract = core.state.contracts.get(event.contract_id)
    if contract is None:
        return
    hosts = set(contract.egress_hosts)
    # The Bus stores names as given; only the normal form can ever match a request.
    name = normalize_host(event.host)
    if name is None or name != event.host:
        return
    (hosts.add if event.allowed else hosts.discard)(name)
    _update(core, event.contract_id, egress_hosts=tuple(sorted(hosts)))


def on_upgraded(core: CoreContext, header: ev.BlockHeader, event: ev.ContractUpgraded) -> None:
    if event.contract_id in core.state.contracts:
        _update(core, event.contract_id, code=event.code, code_hash=event.code_hash)
        core.agents.pop(event.contract_id, None)


def on_owner_changed(
    core: CoreContext, header: ev.BlockHeader, event: ev.ContractOwnerChanged
) -> None:
    _update(core, event.contract_id, owner=event.owner)


def on_controller_changed(
    core: CoreContext, header: ev.BlockHeader, event: ev.ContractControllerChanged
) -> None:
    _update(core, event.contract_id, controller=event.controller)


def run_init(
    core: CoreContext, header: ev.BlockHeader, contract_id: bytes, runtime: ContractRuntime
) -> None:
    contract = core.state.contracts[contract_id]
    args: JSONValue = {}
    raw = contract.init_args
    try:
        if raw[:1] == bytes([proto.INIT_PUBLIC_TAG]):
            args = json.loads(raw[1:].decode()) if len(raw) > 1 else {}
        elif raw:
            cluster_key = core.keys.cluster_key(contract.cluster, contract.epoch)
            if cluster_key is None:
                raise NotReady("no cluster key for init")
            binding = Binding(
                chain_id=core.config.chain_id,
                target=contract.cluster,
                epoch=peek_envelope(raw).epoch,
                purpose=proto.PURPOSE_INIT,
            )
            older = core.keys.cluster_key(contract.cluster, binding.epoch) or cluster_key
            args = json.loads(open_envelope(older, raw, binding=binding).decode())
    except VeilnetError as exc:
        outcome = OutcomeRecord.failure(exc.code, exc.message)
    except ValueError as exc:
        outcome = OutcomeRecord.failure(InitInvalid.code, str(exc))
    else:
        outcome = agents.invoke(
            core, header, contract_id, Entry.INIT, args, caller=contract.owner, seq=INIT_SEQ
        )
    runtime.record_outcome(INIT_SEQ, outcome)
    if outcome.error is not None:
        init_failed(core, contract_id, outcome.error.code)


def init_failed(core: CoreContext, contract_id: bytes, code: str) -> None:
    """An agent whose ``init`` failed is paused here at once (no command runs on a state its
    init never made), and its cluster key reports it (``TOPIC_INIT_FAILED``): the Bus pauses
    it for everyone and says why. The owner may upgrade the code and resume it."""
    _update(core, contract_id, paused=True)
    payload = abi_encode(["bytes32", "string"], [contract_id, code[: topics.MAX_ERROR_CODE]])
    agents.post_for_agent(core, contract_id, topics.TOPIC_INIT_FAILED, payload)


def on_command(core: CoreContext, header: ev.BlockHeader, event: ev.Command) -> None:
    state = core.state
    contract = state.contracts.get(event.contract_id)
    if contract is None:
        return
    cluster = state.clusters[contract.cluster]
    if not cluster.has_history:
        state.clusters[contract.cluster] = dataclasses.replace(cluster, has_history=True)
    if not core.serves(contract.cluster):
        return
    runtime = state.runtimes.get(event.contract_id)
    if runtime is None:
        return
    runtime.record_outcome(event.seq, execute_command(core, header, event, contract, runtime))


def execute_command(
    core: CoreContext,
    header: ev.BlockHeader,
    event: ev.Command,
    contract: ContractInfo,
    runtime: ContractRuntime,
) -> OutcomeRecord:
    sender = event.sender
    if contract.paused:
        return OutcomeRecord.failure(ContractPaused.code, "contract is paused", sender=sender)
    try:
        epoch = peek_envelope(event.payload).epoch
        key = contract_key_at(core, header, event.contract_id, contract, epoch)
        plain = open_envelope(
            key,
            event.payload,
            binding=proto.command_binding(core.config.chain_id, event.contract_id, epoch),
        )
        command = proto.CommandPlaintext.from_bytes(plain, max_size=limits.MAX_COMMAND_PLAINTEXT)
    except VeilnetError as exc:
        return OutcomeRecord.failure(exc.code, exc.message, sender=sender)
    if command.sender != sender:
        return OutcomeRecord.failure(
            CommandRejected.code, "envelope was made for another sender", sender=sender
        )
    if runtime.nonce_used(sender, command.nonce):
        return OutcomeRecord.failure(CommandReplayed.code, "nonce already used", sender=sender)
    runtime.use_nonce(sender, command.nonce)
    if command.kind == "secret":
        return set_secret(contract, runtime, sender, command.body)
    if command.kind != "call":
        return OutcomeRecord.failure(CommandRejected.code, "unknown command kind", sender=sender)
    try:
        msg = json.loads(command.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return OutcomeRecord.failure(CommandRejected.code, "body is not JSON", sender=sender)
    return agents.invoke(
        core, header, event.contract_id, Entry.HANDLE, msg, caller=sender, seq=event.seq
    )


def set_secret(
    contract: ContractInfo, runtime: ContractRuntime, sender: bytes, body: bytes
) -> OutcomeRecord:
    if sender != contract.owner:
        return OutcomeRecord.failure(
            NotAuthorized.code, "only the owner sets secrets", sender=sender
        )
    pair: Any = None
    with contextlib.suppress(CodecError):
        pair = decode(body)
    name, value = pair if isinstance(pair, list) and len(pair) == 2 else (None, None)
    if not isinstance(name, str) or not isinstance(value, str):
        return OutcomeRecord.failure(
            CommandRejected.code, "secret must be [name, value]", sender=sender
        )
    runtime.set_secret(name, value)
    return OutcomeRecord.success(sender=sender, result={"secret": name}, events=(), fuel=0)


def contract_key_at(
    core: CoreContext,
    header: ev.BlockHeader,
    contract_id: bytes,
    contract: ContractInfo,
    epoch: int,
) -> SecretKey:
    """The contract key of ``epoch``, if that epoch is within its window."""
    if epoch not in contract.epochs:
        raise KeyEpochExpired("envelope names an epoch this contract was never keyed at")
    successor = min((k for k in contract.epochs if k > epoch), default=None)
    if successor is not None:
        expires = contract.epochs[successor].keyed_at + core.config.key_window_blocks
        if header.number > expires:
            raise KeyEpochExpired("the key epoch's window has passed", epoch=epoch)
    key = core.keys.contract_key(contract.cluster, contract_id, epoch)
    if key is None:
        raise KeyEpochExpired("the key of this epoch is no longer held", epoch=epoch)
    return key


HANDLERS = {
    ev.ContractDeployed: on_deployed,
    ev.ContractKeySet: on_key_set,
    ev.ContractPaused: on_paused,
    ev.ContractUpgraded: on_upgraded,
    ev.EgressHostSet: on_egress_host_set,
    ev.ContractOwnerChanged: on_owner_changed,
    ev.ContractControllerChanged: on_controller_changed,
    ev.Command: on_command,
}
