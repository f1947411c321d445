"""The agent host API: what one invocation may read, derive, sign and call, and nothing more.
Nested agent calls are journaled and committed with the top call, or not at all."""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from veilnet.codec import CodecError, abi_encode, encode
from veilnet.crypto import Address, SecretKey, sign_text
from veilnet.errors import VeilnetError
from veilnet.protocol import envelopes as proto
from veilnet.protocol import events as ev
from veilnet.protocol import limits, topics
from veilnet.protocol.outcomes import OutcomeRecord
from veilnet.runtime import constants, evm, fetch, llm
from veilnet.runtime.context import CoreContext
from veilnet.runtime.state import StateView
from veilnet.runtime.tls import Relay
from veilnet.sandbox.errors import (
    SandboxAgentError,
    SandboxCallDepth,
    SandboxCompileError,
    SandboxError,
    SandboxTimeout,
)
from veilnet.sandbox.interfaces import (
    CallResult,
    Context,
    Entry,
    JSONValue,
    Language,
    Limits,
    Mode,
    Outcome,
)

if TYPE_CHECKING:
    from veilnet.runtime.replicated import ContractRuntime


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Committed state of one contract, copied for a query that runs outside the core lock."""

    values: StateView
    """The key-value state as of the snapshot's block (copy on write: taking it is O(1))."""
    secrets: dict[str, str]
    epoch: int
    key: SecretKey | None = None
    """The contract key of ``epoch``, taken with the snapshot: a query runs outside the core
    lock, and the block applied meanwhile may destroy that epoch's keys."""
    egress_hosts: frozenset[str] = frozenset()
    """Where its ``http.fetch`` may go, as of the snapshot's block."""


class QueryIO:
    """I/O the host lends to query and job modes; absent in command mode.

    ``relay`` carries the bytes of the agents' ``http.fetch`` (TLS records: the exchange itself
    runs in the core, ``runtime.fetch``); ``gateway`` carries sealed calls to the inference
    gateway (the core verifies it and its answers, ``runtime.llm``)."""

    def __init__(
        self,
        *,
        relay: Relay | None = None,
        gateway: llm.Channel | None = None,
        witness: evm.Witness | None = None,
    ) -> None:
        self.relay = relay
        self.gateway = gateway
        self.witness = witness
        """Fetches trie nodes and code for ``evm.call`` (the core proves them, ``runtime.evm``)."""
        self.connections = itertools.count(1)
        """Relay connection numbers: unique within the one query or job batch it serves."""


@dataclass(slots=True)
class CallJournal:
    """Writes and events of nested agent calls: committed with the top call, or not at all."""

    writes: dict[bytes, dict[str, bytes | None]] = field(default_factory=dict)
    events: list[JSONValue] = field(default_factory=list)
    jobs: list[tuple[bytes, int, bytes, int, bytes]] = field(default_factory=list)
    """Standing jobs the agents asked to set or end: (agent, cancel id or 0, consumer,
    every, payload), posted by their cluster once the command commits."""

    def merge(self, contract_id: bytes, writes: dict[str, bytes | None]) -> None:
        self.writes.setdefault(contract_id, {}).update(writes)

    def checkpoint(self) -> tuple[dict[bytes, dict[str, bytes | None]], int, int]:
        """What to go back to if a nested call fails (its caller may catch the failure)."""
        return {k: dict(v) for k, v in self.writes.items()}, len(self.events), len(self.jobs)

    def restore(self, saved: tuple[dict[bytes, dict[str, bytes | None]], int, int]) -> None:
        writes, events, jobs = saved
        self.writes = writes
        del self.events[events:]
        del self.jobs[jobs:]


def load_agent(core: CoreContext, contract_id: bytes) -> object:
    """The loaded code of a contract (cached until it is upgraded, or until it is the least
    recently used past ``MAX_LOADED_AGENTS`` or ``MAX_LOADED_AGENT_BYTES``); past the
    ``MAX_WARM_AGENTS`` most recently used, an agent keeps its code but not its instance
    (``AgentRuntime.park``)."""
    loaded = core.agents
    agent = loaded.pop(contract_id, None)  # re-inserted below: the newest use is last
    compiled = agent is None
    if agent is None:
        contract = core.state.contracts[contract_id]
        try:
            language, source = proto.unpack_code(contract.code)
        except (CodecError, ValueError) as exc:
            raise SandboxCompileError("agent code is not a packed agent") from exc
        agent = core.engine.load(Language(language), source, core.config.limits)
    loaded[contract_id] = agent
    if compiled or len(loaded) > constants.MAX_LOADED_AGENTS:  # the cache grew, or is too big
        _evict(core, loaded)
    if len(loaded) > constants.MAX_WARM_AGENTS:
        # Park the agent this use pushed out of the warm ones (counted from the newest), and
        # older ones while they still hold an instance: one left warm before (it was running,
        # or a query thread changed the cache meanwhile) is parked now. In the steady state
        # that is one park and one look at an agent already parked. Python agents hold no
        # instance: the walk goes past them.
        try:
            for key in itertools.islice(reversed(loaded), constants.MAX_WARM_AGENTS, None):
                older = loaded.get(key)
                if older is None or not core.engine.holds_instance(older):
                    continue
                if not core.engine.park(older):
                    break
        except RuntimeError:  # a query thread changed the cache meanwhile: the next use goes on
            pass
    return agent


def _evict(core: CoreContext, loaded: dict[bytes, object]) -> None:
    """Drop the least recently used loaded agents (never the newest) while there are more than
    ``MAX_LOADED_AGENTS`` or their images add up to more than ``MAX_LOADED_AGENT_BYTES``: a
    count alone would let agents with large images hold gigabytes. The sizes are summed afresh
    here, a cost far below the compile that grew the cache."""
    try:  # list() copies in one step: a query thread may be loading at the same time
        sizes = [(key, core.engine.footprint(agent)) for key, agent in list(loaded.items())]
    except RuntimeError:  # the cache changed meanwhile: the next compile checks again
        return
    count, total = len(sizes), sum(size for _, size in sizes)
    for key, size in sizes[:-1]:
        if count <= constants.MAX_LOADED_AGENTS and total <= constants.MAX_LOADED_AGENT_BYTES:
            break
        if loaded.pop(key, None) is not None:
            count, total = count - 1, total - size


def context_for(header: ev.BlockHeader, contract_id: bytes, caller: bytes, mode: Mode) -> Context:
    return Context(
        caller=Address(caller).hex if len(caller) == 20 else "0x" + caller.hex(),
        contract_id="0x" + contract_id.hex(),
        block_number=header.number,
        block_timestamp=header.timestamp,
        mode=mode,
    )


def invoke(
    core: CoreContext,
    header: ev.BlockHeader,
    contract_id: bytes,
    entry: Entry,
    payload: JSONValue,
    *,
    caller: bytes,
    seq: int,
) -> OutcomeRecord:
    """Run a command-mode entry point and commit its writes (and its nested calls' writes).

    The wall clock never decides an outcome: when the backstop fires (a machine far slower than
    the reference, or a host starving its enclave), the invocation runs again from scratch with
    fuel as its only limit, and fuel, the same on every replica, decides. Fuel stops every agent
    long before the backstop (see ``sandbox/_pymeter.py``), so the re-run ends.

    Raises:
        SandboxInternalError: the engine failed (not deterministic): the block fails.
    """
    limits = core.config.limits
    try:
        return _invoke(core, header, contract_id, entry, payload, caller, seq, limits)
    except SandboxTimeout:
        unbounded = dataclasses.replace(limits, wall_clock_s=math.inf)
        return _invoke(core, header, contract_id, entry, payload, caller, seq, unbounded)


def _invoke(
    core: CoreContext,
    header: ev.BlockHeader,
    contract_id: bytes,
    entry: Entry,
    payload: JSONValue,
    caller: bytes,
    seq: int,
    call_limits: Limits,
) -> OutcomeRecord:
    ctx = context_for(header, contract_id, caller, entry.mode)
    journal = CallJournal()
    host = AgentHost(core, header, contract_id, ctx, journal, seq=seq, limits=call_limits)
    try:
        outcome = core.engine.invoke(
            load_agent(core, contract_id), entry, payload, host, ctx, call_limits
        )
    except SandboxError as exc:  # every SandboxError is deterministic
        return OutcomeRecord.failure(exc.code, exc.message, sender=caller)
    if outcome.error is not None:
        return OutcomeRecord.failure(
            outcome.error.code, outcome.error.message, sender=caller, fuel=outcome.fuel_used
        )
    if entry.mode is Mode.COMMAND:
        journal.merge(contract_id, dict(outcome.state_writes))
        for target, writes in journal.writes.items():
            core.state.runtimes[target].state.apply(writes)
        for job in journal.jobs:
            post_agent_schedule(core, *job)
    return OutcomeRecord.success(
        sender=caller,
        result=outcome.result,
        events=(*outcome.events, *journal.events),
        fuel=outcome.fuel_used,
    )


def post_agent_schedule(
    core: CoreContext,
    contract_id: bytes,
    cancel_id: int,
    consumer: bytes,
    every: int,
    payload: bytes,
) -> None:
    """An agent's ``jobs.schedule`` / ``jobs.cancel`` of a committed command: its cluster's key
    posts it (``TOPIC_AGENT_SCHEDULE``), and the Bus sets or ends the standing job."""
    payload = abi_encode(
        ["bytes32", "uint256", "address", "uint64", "bytes"],
        [contract_id, cancel_id, Address(consumer or bytes(20)).hex, every, payload],
    )
    post_for_agent(core, contract_id, topics.TOPIC_AGENT_SCHEDULE, payload)


def post_for_agent(core: CoreContext, contract_id: bytes, topic: bytes, payload: bytes) -> None:
    """Egress about an agent from its cluster's key of the current epoch (the Bus checks that
    origin). Every member ran the same block, so every member emits the same numbered message;
    one lands."""
    contract = core.state.contracts[contract_id]
    cluster = core.state.clusters[contract.cluster]
    epoch = cluster.current_epoch
    core.outbox.emit(
        core.keys.cluster_key(contract.cluster, epoch),
        cluster.epochs[epoch].key_address,
        topic,
        payload,
    )


class AgentHost:
    """The HostAPI the core grants one invocation: committed state, deterministic randomness,
    the contract's keys, nested calls within the cluster, and I/O only in query/job modes."""

    def __init__(
        self,
        core: CoreContext,
        header: ev.BlockHeader,
        contract_id: bytes,
        ctx: Context,
        journal: CallJournal,
        *,
        seq: int,
        io: QueryIO | None = None,
        snapshot: dict[bytes, Snapshot] | None = None,
        nonce: bytes = b"",
        limits: Limits | None = None,
    ) -> None:
        self.core = core
        self.limits = limits or core.config.limits
        """The invocation's limits; nested calls inherit them (a re-run has no wall clock)."""
        self.nonce = nonce
        """Makes ``random()`` distinct per query (wallet and request id); empty for commands,
        whose randomness every replica must draw alike."""
        self.snapshot = snapshot
        self.header = header
        self.contract_id = contract_id
        self.ctx = ctx
        self.journal = journal
        self.seq = seq
        self.io = io
        self._counter = 0

    def _runtime(self) -> ContractRuntime:
        return self.core.state.runtimes[self.contract_id]

    def _key(self) -> SecretKey:
        if self.snapshot is not None and self.contract_id in self.snapshot:
            taken = self.snapshot[self.contract_id]
            if taken.key is not None:
                return taken.key
        contract = self.core.state.contracts[self.contract_id]
        epoch = contract.epoch
        if self.snapshot is not None and self.contract_id in self.snapshot:
            epoch = self.snapshot[self.contract_id].epoch
        key = self.core.keys.contract_key(contract.cluster, self.contract_id, epoch)
        if key is None:
            raise SandboxAgentError("contract key unavailable")
        return key

    def state_get(self, key: str) -> bytes | None:
        if self.snapshot is not None:
            return self.snapshot[self.contract_id].values.get(key)
        pending = self.journal.writes.get(self.contract_id, {})
        if key in pending:
            return pending[key]
        return self._runtime().state.get(key)

    def state_keys(self, prefix: str) -> list[str]:
        if self.snapshot is not None:
            return self.snapshot[self.contract_id].values.keys(prefix)
        keys = set(self._runtime().state.keys(prefix))
        for name, value in self.journal.writes.get(self.contract_id, {}).items():
            if name.startswith(prefix):
                (keys.discard if value is None else keys.add)(name)
        return sorted(keys)

    def random_bytes(self, n: int) -> bytes:
        """Private, deterministic: keyed by the contract key, the block hash and the command."""
        out = b""
        base = self._key().symmetric("random")
        while len(out) < n:
            self._counter += 1
            fields: list[object] = [self.header.hash, self.seq, self.ctx.depth, self._counter]
            out += base.mac(encode([*fields, self.nonce] if self.nonce else fields))
        return out[:n]

    def secret_get(self, name: str) -> str | None:
        if self.snapshot is not None:
            return self.snapshot[self.contract_id].secrets.get(name)
        return self._runtime().secrets.get(name)

    def derive_key(self, salt: str) -> str:
        return self._key().symmetric("derive", salt).mac(b"agent-derived-key").hex()

    def sign(self, payload: bytes) -> str:
        return sign_text(self._key(), payload).hex()

    def call(self, contract_id: str, msg: JSONValue, *, ctx: Context, fuel: int) -> CallResult:
        try:
            target = bytes.fromhex(contract_id.removeprefix("0x"))
        except ValueError as exc:
            raise SandboxAgentError("malformed contract id") from exc
        state = self.core.state
        callee = state.contracts.get(target)
        caller = state.contracts[self.contract_id]
        served = state.runtimes if self.snapshot is None else self.snapshot
        if callee is None or callee.cluster != caller.cluster or target not in served:
            raise SandboxAgentError("no such contract in this cluster", contract_id=contract_id)
        if callee.paused:
            raise SandboxAgentError("callee is paused", contract_id=contract_id)
        call_limits = self.limits
        if ctx.depth > min(call_limits.call_depth, limits.MAX_CALL_DEPTH):
            raise SandboxCallDepth("agent calls nest too deeply", kind="agent_calls")
        entry = Entry.HANDLE if ctx.mode is Mode.COMMAND else Entry(ctx.mode.value)
        nested_limits = dataclasses.replace(call_limits, fuel=max(1, min(call_limits.fuel, fuel)))
        child = AgentHost(
            self.core,
            self.header,
            target,
            ctx,
            self.journal,
            seq=self.seq,
            io=self.io,
            snapshot=self.snapshot,
            nonce=self.nonce,
            limits=self.limits,
        )
        saved = self.journal.checkpoint()
        try:
            outcome: Outcome = self.core.engine.invoke(
                load_agent(self.core, target), entry, msg, child, ctx, nested_limits
            )
        except BaseException:
            self.journal.restore(saved)
            raise
        if outcome.error is not None:
            # nothing the callee (or its own callees) did stays, caught or not
            self.journal.restore(saved)
            error = outcome.error
            details = {**error.details, "contract_id": contract_id, "fuel_used": outcome.fuel_used}
            raise type(error)(f"nested call to {contract_id} failed: {error.message}", **details)
        self.journal.events.extend(outcome.events)
        if ctx.mode is Mode.COMMAND:
            self.journal.merge(target, dict(outcome.state_writes))
        return CallResult(value=outcome.result, fuel_used=outcome.fuel_used)

    def schedule_job(self, consumer: bytes, every: int, payload: bytes) -> None:
        self.journal.jobs.append((self.contract_id, 0, consumer, every, payload))

    def cancel_job(self, schedule_id: int) -> None:
        self.journal.jobs.append((self.contract_id, schedule_id, b"", 0, b""))

    def http_fetch(self, requests: list[JSONValue]) -> list[JSONValue]:
        """Each request's response or error value; the allowlist is the snapshot's."""
        if self.ctx.mode is Mode.COMMAND or self.io is None or self.io.relay is None:
            raise SandboxAgentError("http.fetch is not available here")
        taken = self.snapshot.get(self.contract_id) if self.snapshot is not None else None
        egress = fetch.Egress(
            allowed=frozenset() if taken is None else taken.egress_hosts,
            context=self.core.egress_context,
            relay=self.io.relay,
            at=self.header.timestamp,
            plain_loopback=self.core.config.plain_http_loopback,
            connections=self.io.connections,
        )
        return fetch.fetch(requests, egress)

    def evm_call(self, request: JSONValue) -> JSONValue:
        """A read-only call at this invocation's block, over state proven in the core."""
        if self.ctx.mode is Mode.COMMAND or self.io is None or self.io.witness is None:
            raise SandboxAgentError("evm.call is not available here")
        return evm.call(
            request,
            header=self.core.executions.get(self.header.hash),
            chain_id=self.core.config.chain_id,
            witness=self.io.witness,
        )

    def llm_chat(self, request: JSONValue) -> JSONValue:
        """Only answers whose gateway receipt verified reach the agent; others are its error."""
        if self.ctx.mode is Mode.COMMAND or self.io is None or self.io.gateway is None:
            raise SandboxAgentError("llm.chat is not available here")
        core = self.core
        judge = llm.Judge(
            verifier=core.verifier,
            allowed=frozenset(core.config.gateway_measurements),
            platform=core.platform,
            trust=core.gateway_trust,
        )
        try:
            return llm.chat(request, channel=self.io.gateway, judge=judge, at=self.header.timestamp)
        except VeilnetError as exc:
            raise SandboxAgentError(f"llm.chat failed: {exc.code}: {exc.message}") from exc
