"""An in-memory ``HostAPI`` and a tiny contract harness for tests, examples and benchmarks.
Deterministic (hash-based randomness, HMAC stand-ins for keys); the real one is the runtime's."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field

from veilnet.sandbox._json import JSONValue
from veilnet.sandbox._runtime import AgentRuntime, LoadedAgent
from veilnet.sandbox.errors import SandboxCallDepth, SandboxError
from veilnet.sandbox.interfaces import CallResult, Context, Entry, Limits, Mode, Outcome

LLMHandler = Callable[[JSONValue], JSONValue]
HTTPHandler = Callable[[list[JSONValue]], list[JSONValue]]


def _no_llm(_request: JSONValue) -> JSONValue:
    raise RuntimeError("no llm_chat handler configured on this MemoryHost")


def _no_evm(_request: JSONValue) -> JSONValue:
    raise RuntimeError("no evm_call handler configured on this MemoryHost")


def _no_http(_requests: list[JSONValue]) -> list[JSONValue]:
    raise RuntimeError("no http_fetch handler configured on this MemoryHost")


@dataclass(slots=True)
class Invocation:
    """What ``MemoryHost.run`` returns: the top outcome plus every nested call's events."""

    outcome: Outcome
    events: list[tuple[str, JSONValue]]
    jobs: list[tuple[str, int, bytes, int, bytes]] = field(default_factory=list)
    """Standing jobs a successful command asked to set or end (``_Journal.jobs``)."""

    @property
    def result(self) -> JSONValue:
        return self.outcome.result


@dataclass(slots=True)
class _Journal:
    writes: dict[str, dict[str, bytes | None]] = field(default_factory=dict)
    events: list[tuple[str, JSONValue]] = field(default_factory=list)
    jobs: list[tuple[str, int, bytes, int, bytes]] = field(default_factory=list)
    """(contract, cancel id or 0, consumer, every, payload) the invocation asked for."""


class MemoryHost:
    """Contracts, state and secrets in memory; runs invocations all-or-nothing.

    ``run`` commits the writes of a successful command (and of the nested calls it made) and
    nothing on failure; queries and jobs never commit.
    """

    def __init__(
        self,
        runtime: AgentRuntime,
        *,
        seed: bytes = b"veilnet-testing",
        limits: Limits | None = None,
        llm_chat: LLMHandler = _no_llm,
        http_fetch: HTTPHandler = _no_http,
        evm_call: LLMHandler = _no_evm,
    ) -> None:
        self.runtime = runtime
        self.seed = seed
        self.limits = limits or runtime.default_limits
        self.llm_chat = llm_chat
        self.http_fetch = http_fetch
        self.evm_call = evm_call
        self.agents: dict[str, LoadedAgent] = {}
        self.states: dict[str, dict[str, bytes]] = {}
        self.secrets: dict[str, dict[str, str]] = {}

    def deploy(self, contract_id: str, language: str, code: bytes) -> LoadedAgent:
        agent = self.runtime.load(language, code, self.limits)
        self.agents[contract_id] = agent
        self.states.setdefault(contract_id, {})
        return agent

    def state_digest(self) -> str:
        """sha256 over every contract's committed state, in sorted order."""
        digest = hashlib.sha256()
        for contract in sorted(self.states):
            for key in sorted(self.states[contract]):
                for part in (contract.encode(), key.encode(), self.states[contract][key]):
                    digest.update(len(part).to_bytes(4, "big") + part)
        return digest.hexdigest()

    def run(
        self,
        contract_id: str,
        entry: Entry | str,
        payload: JSONValue,
        *,
        caller: str = "0x" + "11" * 20,
        block_number: int = 1,
        block_timestamp: int = 1_700_000_000,
    ) -> Invocation:
        entry = Entry(entry)
        ctx = Context(
            caller=caller,
            contract_id=contract_id,
            block_number=block_number,
            block_timestamp=block_timestamp,
            mode=entry.mode,
        )
        journal = _Journal()
        host = _ContractHost(self, journal, ctx)
        outcome = self.runtime.invoke(
            self.agents[contract_id], entry, payload, host, ctx, self.limits
        )
        if outcome.ok:
            journal.events[:0] = [(contract_id, event) for event in outcome.events]
            if entry.mode is Mode.COMMAND:
                self._merge(journal, contract_id, dict(outcome.state_writes))
                for contract, writes in journal.writes.items():
                    state = self.states.setdefault(contract, {})
                    for key, value in writes.items():
                        if value is None:
                            state.pop(key, None)
                        else:
                            state[key] = value
            return Invocation(outcome=outcome, events=journal.events, jobs=journal.jobs)
        return Invocation(outcome=outcome, events=[])

    @staticmethod
    def _merge(journal: _Journal, contract: str, writes: dict[str, bytes | None]) -> None:
        journal.writes.setdefault(contract, {}).update(writes)


class _ContractHost:
    """The ``HostAPI`` of one invocation of one contract, reading through the journal."""

    def __init__(self, net: MemoryHost, journal: _Journal, ctx: Context) -> None:
        self.net = net
        self.journal = journal
        self.ctx = ctx
        self._counter = 0

    def _pending(self) -> dict[str, bytes | None]:
        return self.journal.writes.get(self.ctx.contract_id, {})

    def state_get(self, key: str) -> bytes | None:
        pending = self._pending()
        if key in pending:
            return pending[key]
        return self.net.states.get(self.ctx.contract_id, {}).get(key)

    def state_keys(self, prefix: str) -> list[str]:
        keys = {k for k in self.net.states.get(self.ctx.contract_id, {}) if k.startswith(prefix)}
        for key, value in self._pending().items():
            if key.startswith(prefix):
                if value is None:
                    keys.discard(key)
                else:
                    keys.add(key)
        return sorted(keys)

    def random_bytes(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            self._counter += 1
            material = b"|".join(
                [
                    self.net.seed,
                    self.ctx.contract_id.encode(),
                    str(self.ctx.block_number).encode(),
                    str(self.ctx.depth).encode(),
                    str(self._counter).encode(),
                ]
            )
            out += hashlib.sha256(material).digest()
        return out[:n]

    def secret_get(self, name: str) -> str | None:
        return self.net.secrets.get(self.ctx.contract_id, {}).get(name)

    def _contract_key(self) -> bytes:
        return hashlib.sha256(
            self.net.seed + b"|contract|" + self.ctx.contract_id.encode()
        ).digest()

    def derive_key(self, salt: str) -> str:
        return hmac.new(
            self._contract_key(), b"derive|" + salt.encode(), hashlib.sha256
        ).hexdigest()

    def sign(self, payload: bytes) -> str:
        return hmac.new(self._contract_key(), b"sign|" + payload, hashlib.sha256).hexdigest()

    def call(self, contract_id: str, msg: JSONValue, *, ctx: Context, fuel: int) -> CallResult:
        agent = self.net.agents.get(contract_id)
        if agent is None:
            from veilnet.sandbox.errors import SandboxAgentError

            raise SandboxAgentError("no such contract in this cluster", contract_id=contract_id)
        if ctx.depth > self.net.limits.call_depth:
            raise SandboxCallDepth("agent calls nest too deeply", kind="agent_calls")
        entry = Entry.HANDLE if ctx.mode is Mode.COMMAND else Entry(ctx.mode.value)
        limits = self.net.limits
        import dataclasses

        nested_limits = dataclasses.replace(limits, fuel=max(1, min(limits.fuel, fuel)))
        child = _ContractHost(self.net, self.journal, ctx)
        journal = self.journal
        saved = (
            {k: dict(v) for k, v in journal.writes.items()},
            len(journal.events),
            len(journal.jobs),
        )
        outcome = self.net.runtime.invoke(agent, entry, msg, child, ctx, nested_limits)
        if outcome.error is not None:
            # as the core does: nothing of a failed callee stays, and its fuel is charged
            journal.writes = saved[0]
            del journal.events[saved[1] :]
            del journal.jobs[saved[2] :]
            error: SandboxError = outcome.error
            details = {**error.details, "fuel_used": outcome.fuel_used}
            raise type(error)(f"nested call to {contract_id} failed: {error.message}", **details)
        self.journal.events.extend((contract_id, event) for event in outcome.events)
        if ctx.mode is Mode.COMMAND:
            MemoryHost._merge(self.journal, contract_id, dict(outcome.state_writes))
        return CallResult(value=outcome.result, fuel_used=outcome.fuel_used)

    def schedule_job(self, consumer: bytes, every: int, payload: bytes) -> None:
        self.journal.jobs.append((self.ctx.contract_id, 0, consumer, every, payload))

    def cancel_job(self, schedule_id: int) -> None:
        self.journal.jobs.append((self.ctx.contract_id, schedule_id, b"", 0, b""))

    def http_fetch(self, requests: list[JSONValue]) -> list[JSONValue]:
        return self.net.http_fetch(requests)

    def evm_call(self, request: JSONValue) -> JSONValue:
        return self.net.evm_call(request)

    def llm_chat(self, request: JSONValue) -> JSONValue:
        return self.net.llm_chat(request)
