"""Block application is all-or-nothing: whatever raises inside a block leaves the core unchanged.
Each case fails mid-block, after earlier events of the same block already changed state."""

from __future__ import annotations

import json
from typing import Any

import pytest

from veilnet.codec import encode
from veilnet.crypto import SymmetricKey
from veilnet.protocol import envelopes as proto
from veilnet.runtime import EnclaveCore
from veilnet.runtime.checkpoints import export_state
from veilnet.runtime.replicated import LOCAL, REPLICATED
from veilnet.sandbox import AgentRuntime
from veilnet.sandbox.errors import SandboxInternalError
from veilnet.sandbox.interfaces import Context, Entry, HostAPI, JSONValue, Language, Limits, Outcome
from veilnet.testing import Network
from veilnet.testing.network import cluster_id_of

from .conftest import ALICE, EXAMPLES, OWNER


class FaultyEngine:
    """The real engine, except that it raises ``fault`` on the chosen call (only while armed)."""

    def __init__(self, inner: AgentRuntime) -> None:
        self.inner = inner
        self.fault: BaseException | None = None
        self.on: str = "invoke"
        self.after = 0
        """Calls to let through before raising (so earlier events of the block take effect)."""

    def _maybe_raise(self, where: str) -> None:
        if self.fault is None or where != self.on:
            return
        if self.after > 0:
            self.after -= 1
            return
        fault, self.fault = self.fault, None
        raise fault

    def load(self, language: Language, code: bytes, limits: Limits | None = None) -> Any:
        self._maybe_raise("load")
        return self.inner.load(language, code, limits)

    def holds_instance(self, agent: Any) -> bool:
        return bool(self.inner.holds_instance(agent))

    def park(self, agent: Any) -> bool:
        return bool(self.inner.park(agent))

    def footprint(self, agent: Any) -> int:
        return int(self.inner.footprint(agent))

    def invoke(
        self,
        agent: Any,
        entry: Entry,
        payload: JSONValue,
        host: HostAPI,
        ctx: Context,
        limits: Limits | None = None,
    ) -> Outcome:
        self._maybe_raise("invoke")
        return self.inner.invoke(agent, entry, payload, host, ctx, limits)


@pytest.fixture(scope="module")
def faulty(engine: AgentRuntime) -> FaultyEngine:
    return FaultyEngine(engine)


@pytest.fixture(scope="module")
def net(faulty: FaultyEngine) -> Network:
    network = Network(engine=faulty)
    network.bootstrap()
    return network


@pytest.fixture(scope="module")
def counter(net: Network) -> bytes:
    return net.deploy(OWNER, "py", (EXAMPLES / "counter.py").read_bytes(), init={"start": 0})


_FIXED = SymmetricKey.generate(bytes(32))


def _body(core: EnclaveCore) -> bytes:
    """What a checkpoint seals, before sealing (a checkpoint's key is drawn afresh each time)."""
    return encode(export_state(core._core, scopes=(REPLICATED, LOCAL), sealed=True))


def _fingerprint(core: EnclaveCore) -> tuple[bytes, bytes, bytes]:
    return core.state_root(), _body(core), core.keys.export(_FIXED)


FAULTS = {
    # (the wall-clock backstop is not a fault: the core re-runs the command, test_runtime_hostile.py)
    "sandbox_internal": SandboxInternalError("engine crashed"),
    "runtime_error": RuntimeError("a bug in a system"),
    "memory_error": MemoryError(),
    "keyboard_interrupt": KeyboardInterrupt(),
}


def _mine_with_fault(
    net: Network, faulty: FaultyEngine, fault: BaseException, *, on: str, after: int
) -> None:
    """Mine the pending events into one block; w1 fails on it, is checked, then retries."""
    block = net.ledger.mine()
    w1 = net.cores["w1"]
    before = _fingerprint(w1)
    faulty.fault, faulty.on, faulty.after = fault, on, after
    with pytest.raises(type(fault)):
        w1.apply_block(block)
    faulty.fault = None
    assert _fingerprint(w1) == before, "a failed block changed the core"
    assert w1.head is not None and w1.head.number == block.fields.number - 1
    # The same core takes the same block again: no need to throw it away.
    for name in sorted(net.cores):
        for message in net.cores[name].apply_block(block):
            net.ledger.post(message)
    net.settle()


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_failure_in_a_command_rolls_back_the_block(
    net: Network, faulty: FaultyEngine, counter: bytes, fault: str
) -> None:
    start = net.cores["w1"].runtimes[counter].state.values.get("count")
    nonce = 10 * (sorted(FAULTS).index(fault) + 1)
    net.command(ALICE, counter, {"by": 1}, nonce=nonce)
    net.command(ALICE, counter, {"by": 2}, nonce=nonce + 1)
    # The first command runs and writes; the second raises.
    _mine_with_fault(net, faulty, FAULTS[fault], on="invoke", after=1)
    w1, w2 = net.cores["w1"], net.cores["w2"]
    assert w1.state_root() == w2.state_root()
    expected = (json.loads(start) if start else 0) + 3
    assert w1.runtimes[counter].state.values["count"] == str(expected).encode()


@pytest.mark.parametrize("fault", ["sandbox_internal", "runtime_error", "keyboard_interrupt"])
def test_failure_while_keying_a_new_contract_rolls_back_the_block(
    net: Network, faulty: FaultyEngine, counter: bytes, fault: str
) -> None:
    nonce = 100 + 10 * sorted(FAULTS).index(fault)
    net.command(ALICE, counter, {"by": 1}, nonce=nonce)  # applied first, in the same block
    contract_id = net.ledger.deploy_contract(
        sender=OWNER.address.raw,
        salt=bytes([0x40 + sorted(FAULTS).index(fault)]) * 32,
        cluster_id=cluster_id_of("c1"),
        code=proto.pack_code("py", (EXAMPLES / "counter.py").read_bytes()),
        init_args=bytes([proto.INIT_PUBLIC_TAG]) + b'{"start": 5}',
    )
    # Keying the new contract (its cluster is keyed) runs init, which loads its code: fail there.
    _mine_with_fault(net, faulty, FAULTS[fault], on="load", after=0)
    w1, w2 = net.cores["w1"], net.cores["w2"]
    assert w1.state_root() == w2.state_root()
    assert w1.runtimes[contract_id].state.values["count"] == b"5"
    assert w1.runtimes[contract_id].outcomes[-1].ok
