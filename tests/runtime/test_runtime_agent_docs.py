"""The agent examples of ``docs/agents.md`` run as written, in both languages: the reference
cannot drift from what the sandbox and the core's ``http.fetch`` and ``llm.chat`` do."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from veilnet.sandbox import AgentRuntime
from veilnet.sandbox.interfaces import JSONValue
from veilnet.sandbox.testing import MemoryHost
from veilnet.testing.gateway import core_chat, dev_gateway
from veilnet.testing.https import LocalOrigin, core_fetcher
from veilnet.testing.network import NETWORK_SEED, TEST_TIME

DOC = Path(__file__).resolve().parents[2] / "docs" / "agents.md"
_BLOCK = re.compile(r"^```(js|python)\n(.*?)^```", re.M | re.S)
AGENT = "0x" + "ab" * 32


def _examples(section: str) -> list[tuple[str, str]]:
    """The (language, code) blocks of the ``## `` section whose title starts with ``section``."""
    parts = re.split(r"^## ", DOC.read_text(), flags=re.M)
    (text,) = [p for p in parts if p.startswith(section)]
    found = [(lang, code) for lang, code in _BLOCK.findall(text)]
    assert found, section
    return found


def _deploy(host: MemoryHost, lang: str, code: str) -> None:
    host.deploy(AGENT, "js" if lang == "js" else "py", code.encode())


@pytest.fixture(scope="module")
def origin() -> Iterator[LocalOrigin]:
    with LocalOrigin(names=("api.example.com",), api_key="doc-key", price="2718.28") as server:
        yield server


@pytest.mark.parametrize("example", _examples("`http.fetch`"), ids=lambda e: e[0])
def test_the_http_fetch_examples_run_as_documented(
    engine: AgentRuntime, origin: LocalOrigin, example: tuple[str, str]
) -> None:
    lang, code = example
    host = MemoryHost(
        engine, http_fetch=core_fetcher(origin, allowed=frozenset({"api.example.com"}))
    )
    _deploy(host, lang, code)
    host.secrets[AGENT] = {"api_key": "doc-key"}
    assert host.run(AGENT, "query", {}).result == {"status": 200, "price": "2718.28"}


@pytest.mark.parametrize("example", _examples("`llm.chat`"), ids=lambda e: e[0])
def test_the_llm_chat_examples_run_as_documented(
    engine: AgentRuntime, example: tuple[str, str]
) -> None:
    """Through the core's ``llm.chat``: a real gateway on the dev TEE, verified and sealed."""
    lang, code = example
    with dev_gateway(NETWORK_SEED, collateral_issued_at=TEST_TIME - 3600) as url:
        chat = core_chat(url, NETWORK_SEED, at=TEST_TIME)
        host = MemoryHost(engine, llm_chat=chat)
        _deploy(host, lang, code)
        answer = host.run(AGENT, "query", {"question": "Who are you?"}).result
    assert isinstance(answer, dict)
    assert answer["answer"] == "echo: Who are you?"
    assert str(answer["receipt"]).startswith("chatcmpl-")


@pytest.mark.parametrize("example", _examples("`jobs.schedule`"), ids=lambda e: e[0])
def test_the_jobs_examples_run_as_documented(
    engine: AgentRuntime, example: tuple[str, str]
) -> None:
    lang, code = example
    host = MemoryHost(engine)
    _deploy(host, lang, code)
    consumer = "0x" + "c5" * 20
    done = host.run(AGENT, "handle", {"op": "subscribe", "consumer": consumer})
    assert done.outcome.ok, done.outcome.error
    assert done.jobs == [(AGENT, 0, bytes.fromhex("c5" * 20), 10, b'{"pair":"ETH/USD"}')]
    failed = host.run(AGENT, "handle", {"op": "subscribe", "consumer": "0x12"})
    assert failed.outcome.error is not None and failed.jobs == []


@pytest.mark.parametrize("example", _examples("`evm.call`"), ids=lambda e: e[0])
def test_the_evm_call_examples_run_as_documented(
    engine: AgentRuntime, example: tuple[str, str]
) -> None:
    """Against a PriceFeed on the embedded chain, proven through the core's ``evm.call``."""
    from eth_abi.abi import encode as abi_encode

    from veilnet.chain import EmbeddedChain
    from veilnet.chain.artifacts import load_artifact
    from veilnet.chain.contracts import TxSender
    from veilnet.chain.proofs import state_witness, verify_header_rlp
    from veilnet.protocol.chain import decode_header
    from veilnet.runtime import evm

    lang, code = example
    chain = EmbeddedChain()
    client = chain.client()
    sender = TxSender(client, chain.dev_accounts[0][1], chain_id=chain.chain_id)
    bytecode = load_artifact("PriceFeed").bytecode + abi_encode(
        ["address", "bytes32", "uint256"], ["0x" + "b5" * 20, b"\x01" * 32, 10]
    )
    feed = sender.transact(None, bytecode).contract_address
    assert feed is not None
    _, encoded = verify_header_rlp(client.call("eth_getBlockByNumber", "latest", False))
    header = decode_header(encoded)

    def call(request: JSONValue) -> JSONValue:
        return evm.call(
            request,
            header=header,
            chain_id=chain.chain_id,
            witness=lambda block, address, slot: state_witness(client, block, address, slot),
        )

    host = MemoryHost(engine, evm_call=call)
    _deploy(host, lang, code)
    assert host.run(AGENT, "query", {"feed": feed.hex}).result == {"price": 0, "height": 0}


@pytest.mark.parametrize("example", _examples("Errors"), ids=lambda e: e[0])
def test_the_error_examples_run_as_documented(
    engine: AgentRuntime, example: tuple[str, str]
) -> None:
    lang, code = example
    host = MemoryHost(engine)
    _deploy(host, lang, code)
    host.deploy("0x" + "cd" * 32, "js", b"export function handle(m) { throw new Error('no'); }")
    answer = host.run(AGENT, "handle", {"other": "0x" + "cd" * 32}).result
    assert answer == {"failed": "sandbox_agent_error"}
    missing = host.run(AGENT, "handle", {"other": "0x" + "ef" * 32}).result
    assert missing == {"failed": "sandbox_agent_error"}
