"""An agent whose ``init`` fails on its workers: every member pauses it at once and its cluster
key reports it, the Bus pauses it for everyone, and only its outcomes stay readable."""

from __future__ import annotations

import pytest

from veilnet.codec import abi_decode
from veilnet.protocol import topics
from veilnet.runtime.contracts import INIT_SEQ
from veilnet.runtime.errors import ContractPaused
from veilnet.sandbox import AgentRuntime
from veilnet.testing import Network, query_core

from .conftest import OWNER

SOURCES = {
    "js": b"export function init(a) { throw new Error('no start given'); }\n"
    b"export function handle(m) { state.set('n', 1); return 1; }\n"
    b"export function query(q) { return 'q'; }\n",
    "py": b"def init(a):\n    raise ValueError('no start given')\n\n"
    b"def handle(m):\n    state.set('n', 1)\n    return 1\n\n"
    b"def query(q):\n    return 'q'\n",
}


@pytest.mark.parametrize("language", ["js", "py"])
def test_a_failed_init_pauses_the_agent_on_every_member_and_on_chain(
    engine: AgentRuntime, language: str
) -> None:
    net = Network(engine=engine)
    net.bootstrap()
    contract = net.deploy(OWNER, language, SOURCES[language])
    for name in ("w1", "w2"):
        outcome = net.cores[name].runtimes[contract].outcomes[INIT_SEQ]
        assert outcome.error is not None and outcome.error.code == "sandbox_agent_error"
        assert net.cores[name].contracts[contract].paused
    (report,) = [m for m in net.posted if m.topic == topics.TOPIC_INIT_FAILED]  # one lands
    agent, code = abi_decode(["bytes32", "string"], report.payload)
    assert (agent, code) == (contract, "sandbox_agent_error")
    assert net.ledger.contracts[contract].paused  # the Bus paused it for everyone
    # the owner still reads why; anything else is refused while it is paused
    answer = query_core(net, OWNER, contract, INIT_SEQ, kind="outcome")
    assert answer["status"] == "applied" and answer["ok"] is False
    assert "no start given" in answer["error"]["message"]
    with pytest.raises(ContractPaused):
        query_core(net, OWNER, contract, {})
