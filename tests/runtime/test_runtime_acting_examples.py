"""The agents that act (``examples/agents/price_oracle`` and ``judge``), in both languages, with
the core's real ``http.fetch`` against a local HTTPS API and its real ``llm.chat`` against a
gateway on the development TEE (an echo model stands in for the LLM)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from veilnet.sandbox import AgentRuntime
from veilnet.sandbox.testing import MemoryHost
from veilnet.testing.gateway import core_chat, dev_gateway
from veilnet.testing.https import LocalOrigin, core_fetcher
from veilnet.testing.network import NETWORK_SEED, TEST_TIME

from .conftest import EXAMPLES

AGENT = "0x" + "0a" * 32
LANGUAGES = ["js", "py"]


@pytest.fixture(scope="module")
def api() -> Iterator[LocalOrigin]:
    with LocalOrigin(names=("prices.example",), api_key="k-oracle", price="3141.59") as origin:
        yield origin


def _oracle(engine: AgentRuntime, api: LocalOrigin, language: str) -> MemoryHost:
    host = MemoryHost(engine, http_fetch=core_fetcher(api, allowed=frozenset({"prices.example"})))
    host.deploy(AGENT, language, (EXAMPLES / f"price_oracle.{language}").read_bytes())
    source = "https://prices.example/v1/price?pair=ETH-USD"
    assert host.run(AGENT, "init", {"source": source}).outcome.ok
    host.secrets[AGENT] = {"api_key": "k-oracle"}
    return host


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_price_oracle_reads_its_api_with_the_owners_secret(
    engine: AgentRuntime, api: LocalOrigin, language: str
) -> None:
    host = _oracle(engine, api, language)
    assert host.run(AGENT, "job", {"request_id": "0x01", "payload": None}).result == 3141590000
    assert host.run(AGENT, "query", {}).result == {"price": 3141590000, "decimals": 6, "block": 1}
    assert api.received[-1].headers["x-api-key"] == "k-oracle"
    consumer = "0x" + "fe" * 20
    subscribed = host.run(AGENT, "handle", {"op": "subscribe", "consumer": consumer, "every": 5})
    assert subscribed.jobs == [(AGENT, 0, bytes.fromhex("fe" * 20), 5, b"null")]
    # a wrong key: the API answers 401 and the job fails (its consumer gets a failure result)
    host.secrets[AGENT] = {"api_key": "stolen?"}
    failed = host.run(AGENT, "job", {"request_id": "0x02", "payload": None}).outcome
    assert failed.error is not None and "401" in failed.error.message


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_judge_names_the_party_the_model_said_last(engine: AgentRuntime, language: str) -> None:
    with dev_gateway(NETWORK_SEED, collateral_issued_at=TEST_TIME - 3600) as url:
        host = MemoryHost(engine, llm_chat=core_chat(url, NETWORK_SEED, at=TEST_TIME))
        host.deploy(AGENT, language, (EXAMPLES / f"judge.{language}").read_bytes())

        def rule(claim: str) -> object:
            return host.run(AGENT, "job", {"request_id": "0x01", "payload": claim}).result

        # the echo model repeats the rules and the claim: the claim's last word decides
        assert rule("The goods arrived as described, so pay the SELLER") == "seller"
        assert rule("Nothing arrived; refund the BUYER") == "buyer"
        assert rule({"claim": "late, so refund the BUYER"}) == "buyer"  # JSON payloads too
