"""Runs every example agent through a fixed script and prints one JSON digest (used in-process
and in separate worker processes by the determinism tests). Usage: python scenario_runner.py LANG"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from veilnet.sandbox import AgentRuntime, Limits
from veilnet.sandbox.testing import MemoryHost

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "agents"
OWNER = "0x" + "aa" * 20
ALICE = "0x" + "bb" * 20
BOB = "0x" + "cc" * 20
LIMITS = Limits(fuel=300_000_000)
TEST_LIMITS = Limits(fuel=100_000_000, memory_bytes=16 * 1024 * 1024, wall_clock_s=20.0)
"""Limits of the unit tests (the backstop is generous: CI machines are shared)."""


def fake_llm(request: Any) -> Any:
    question = request["messages"][-1]["content"]
    digest = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()[:8]
    return {
        "model": request["model"],
        "choices": [{"message": {"role": "assistant", "content": f"echo:{question}:{digest}"}}],
    }


SCRIPT: dict[str, list[tuple[str, str, Any, str, int]]] = {
    # (entry, payload, caller, block) per example
    "counter": [
        ("init", {"start": 10}, OWNER, 1),
        ("handle", {"by": 5}, ALICE, 2),
        ("handle", {"by": "x"}, ALICE, 2),
        ("query", {}, BOB, 3),
    ],
    "vault": [
        ("init", {}, OWNER, 1),
        ("handle", {"op": "put", "key": "k", "value": {"secret": 1}}, OWNER, 2),
        ("handle", {"op": "put", "key": "k", "value": 2}, ALICE, 2),
        ("handle", {"op": "grant", "role": "reader", "who": ALICE}, OWNER, 3),
        ("query", {"key": "k"}, ALICE, 4),
        ("query", {"key": "k"}, BOB, 4),
        ("query", {"op": "keys"}, OWNER, 4),
    ],
    "auction": [
        ("init", {"ends_at_block": 10, "reserve": 5}, OWNER, 1),
        ("handle", {"op": "bid", "amount": 7}, ALICE, 2),
        ("handle", {"op": "bid", "amount": 9}, BOB, 3),
        ("handle", {"op": "close"}, OWNER, 4),
        ("query", {"op": "my_bid"}, BOB, 5),
        ("handle", {"op": "close"}, OWNER, 11),
        ("query", {}, ALICE, 12),
    ],
    "assistant": [
        ("init", {"persona": "You are terse."}, OWNER, 1),
        ("handle", {"op": "note", "text": "likes tea"}, OWNER, 2),
        ("query", {"question": "what do I like?"}, OWNER, 3),
        ("handle", {"op": "note", "text": "x", "fetch": True}, OWNER, 4),
    ],
}


def run_example(runtime: AgentRuntime, name: str, language: str) -> dict[str, Any]:
    net = MemoryHost(runtime, limits=LIMITS, llm_chat=fake_llm)
    net.deploy(name, language, (EXAMPLES / f"{name}.{language}").read_bytes())
    steps = []
    for entry, payload, caller, block in SCRIPT[name]:
        out = net.run(name, entry, payload, caller=caller, block_number=block).outcome
        steps.append(
            {
                "entry": entry,
                "result": out.result,
                "events": list(out.events),
                "fuel": out.fuel_used,
                "error": out.error.code if out.error else None,
                "writes": {
                    k: (v.decode() if v is not None else None) for k, v in out.state_writes.items()
                },
                "state": net.state_digest(),
            }
        )
    return {"steps": steps, "state": net.state_digest()}


def run_all(runtime: AgentRuntime, language: str) -> dict[str, Any]:
    return {name: run_example(runtime, name, language) for name in SCRIPT}


if __name__ == "__main__":
    with AgentRuntime(default_limits=LIMITS) as rt:
        print(json.dumps(run_all(rt, sys.argv[1]), sort_keys=True))
