"""Every example agent, in JavaScript and in Python, through the same script on the real engines."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pytest

from veilnet.sandbox import AgentRuntime

RUNNER = runpy.run_path(str(Path(__file__).with_name("scenario_runner.py")))


@pytest.fixture(scope="module")
def outcomes(runtime: AgentRuntime) -> dict[str, dict[str, Any]]:
    return {lang: RUNNER["run_all"](runtime, lang) for lang in ("js", "py")}


def _steps(outcomes: dict[str, Any], language: str, name: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = outcomes[language][name]["steps"]
    return steps


def test_counter(outcomes: dict[str, Any], language: str) -> None:
    init, inc, bad, query = _steps(outcomes, language, "counter")
    assert init["error"] is None and init["writes"] == {"count": "10"}
    assert inc["result"] == 15
    assert inc["events"] == [{"type": "counted", "count": 15, "by": 5, "caller": "0x" + "bb" * 20}]
    assert bad["error"] == "sandbox_agent_error" and bad["writes"] == {}
    assert bad["state"] == inc["state"]
    assert query["result"] == {"count": 15, "block": 3} and query["writes"] == {}


def test_vault_acl(outcomes: dict[str, Any], language: str) -> None:
    _init, put, intruder, grant, read, denied, keys = _steps(outcomes, language, "vault")
    assert put["events"] == [{"type": "put", "key": "k"}]
    assert intruder["error"] == "sandbox_agent_error" and intruder["state"] == put["state"]
    assert grant["error"] is None
    assert read["result"] == {"secret": 1}
    assert denied["error"] == "sandbox_agent_error"
    assert keys["result"] == ["k"]


def test_sealed_bid_auction(outcomes: dict[str, Any], language: str) -> None:
    _init, bid_a, _bid_b, early, mine, close, status = _steps(outcomes, language, "auction")
    assert "amount" not in bid_a["events"][0]
    assert early["error"] == "sandbox_agent_error"
    assert mine["result"] == 9
    assert close["result"] == {"winner": "0x" + "cc" * 20, "price": 7}
    assert status["result"]["closed"] is True and status["result"]["bids"] == 2


def test_ai_agent_calls_llm_in_query_mode(outcomes: dict[str, Any], language: str) -> None:
    _init, note, ask, _ = _steps(outcomes, language, "assistant")
    assert note["result"] == 1
    assert ask["result"]["answer"].startswith("echo:what do I like?:")
    assert ask["result"]["model"] == "default"


def test_both_languages_agree(outcomes: dict[str, Any]) -> None:
    def strip(doc: dict[str, Any]) -> list[Any]:
        return [
            {k: v for k, v in s.items() if k != "fuel"} for ex in doc.values() for s in ex["steps"]
        ]

    assert strip(outcomes["js"]) == strip(outcomes["py"])


def test_llm_not_available_in_command_mode(net: Any, language: str) -> None:
    code = {
        "js": b"export function handle(c) { return llm.chat({messages: []}); }",
        "py": b"def handle(c):\n    return llm.chat({'messages': []})\n",
    }[language]
    net.deploy("a", language, code)
    out = net.run("a", "handle", {}).outcome
    assert out.error is not None and out.error.code == "sandbox_forbidden"
