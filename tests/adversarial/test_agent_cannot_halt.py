"""Hostile agents against real cores: whatever a JS agent returns, stores or breaks in its own
realm, its command ends in a failure outcome on every replica, and the cores go on applying
blocks. A guest's output is the same bytes on every replica, so nothing it does may be taken
for an engine failure, which stops a replica at that block (and so its whole cluster)."""

from __future__ import annotations

import pytest

from veilnet.crypto import SecretKey
from veilnet.sandbox import AgentRuntime
from veilnet.sandbox.testing import MemoryHost
from veilnet.testing import Network

OWNER = SecretKey.derive(b"\x78" * 32, "owner")
MALLORY = SecretKey.derive(b"\x78" * 32, "mallory")

HOSTILE = {
    # JSON.stringify gives undefined for these: the envelope held the text "undefined"
    "returns a function": b"export function handle() { return () => 1; }",
    "returns a symbol": b"export function handle() { return Symbol('s'); }",
    "stores a function": b"export function handle() { state.set('k', () => 1); return 1; }",
    # the prelude shares the agent's realm: a broken builtin breaks the envelope it builds
    "breaks Array.prototype.join": (
        b"export function handle() { emit({a: 1}); Array.prototype.join = () => '}{'; return 1; }"
    ),
    # ... or the text of a host call (an array whose toJSON gives undefined)
    "breaks a host call": (
        b"export function handle() { Array.prototype.toJSON = () => undefined;"
        b" return state.get('k'); }"
    ),
}


@pytest.mark.parametrize("behaviour", sorted(HOSTILE))
def test_a_hostile_agent_fails_alone(engine: AgentRuntime, behaviour: str) -> None:
    """In the sandbox: a deterministic, typed failure (never an internal error), and the next
    invocation of the same agent starts clean."""
    host = MemoryHost(engine)
    host.deploy("bad", "js", HOSTILE[behaviour])
    for _ in range(2):
        outcome = host.run("bad", "handle", {}).outcome
        assert outcome.error is not None and outcome.error.code == "sandbox_agent_error"
        assert outcome.state_writes == {} and outcome.events == ()
    assert host.states["bad"] == {}


def test_an_agent_cannot_replace_the_prelude_entry(engine: AgentRuntime) -> None:
    """``__veil_invoke`` is not writable: an agent that assigns its own still runs through the
    prelude's (its writes buffered and checked, its result encoded by the prelude)."""
    host = MemoryHost(engine)
    host.deploy(
        "bad",
        "js",
        b"try { globalThis.__veil_invoke = function () { return 'garbage'; }; } catch (e) {}\n"
        b"export function handle() { state.set('n', 2); return 'mine'; }",
    )
    run = host.run("bad", "handle", {})
    assert run.outcome.error is None and run.result == "mine"
    assert host.states["bad"] == {"n": b"2"}


def test_hostile_commands_leave_the_cluster_running(network: Network) -> None:
    """Both replicas apply the block of every hostile command (each a failure outcome, the
    same on both), then a command of a well-behaved agent after them."""
    sent = []
    for index, behaviour in enumerate(sorted(HOSTILE)):
        contract = network.deploy(MALLORY, "js", HOSTILE[behaviour], salt=bytes([index]) * 32)
        sent.append((contract, network.command(MALLORY, contract, {}, nonce=index + 1)))
    good = network.deploy(OWNER, "js", b"export function handle(m) { return m.n * 2; }")
    seq = network.command(OWNER, good, {"n": 21}, nonce=1)
    network.settle()
    head = network.ledger.head.number
    for name in ("w1", "w2"):
        core = network.cores[name]
        assert core.head is not None and core.head.number == head
        for contract, command in sent:
            record = core.runtimes[contract].outcomes[command]
            assert not record.ok and record.error is not None
            assert record.error.code == "sandbox_agent_error"
        applied = core.runtimes[good].outcomes[seq]
        assert applied.ok and applied.result == 42
    w1, w2 = network.cores["w1"], network.cores["w2"]
    assert w1.state_root() == w2.state_root()
