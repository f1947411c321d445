"""``veil bench runtime``: catch-up replay speed, and restart from a checkpoint vs full replay.
A JS counter agent takes N commands; a fresh core replays the finalized log from genesis."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from veilnet.bench._registry import benchmark
from veilnet.crypto import SecretKey
from veilnet.runtime import EnclaveCore
from veilnet.sandbox import AgentRuntime
from veilnet.testing import Network

COMMANDS_PER_BLOCK = 100
CHECKPOINT_EVERY = 1000
"""Commands between checkpoints; restart replays at most this many (the worst case is measured)."""
EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "agents"


def _sizes(quick: bool) -> list[int]:
    if quick:
        return [300]
    raw = os.environ.get("VEIL_BENCH_RUNTIME_SIZES", "10000,100000")
    return [int(x) for x in raw.split(",") if x]


def _label(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 and n >= 1000 else str(n)


def _measure(engine: AgentRuntime, commands: int) -> dict[str, float]:
    owner = SecretKey.derive(b"\x42" * 32, "bench-owner")
    net = Network(engine=engine)
    net.bootstrap(workers=("w1",), clusters={"c1": ["w1"]})
    contract = net.deploy(owner, "js", (EXAMPLES / "counter.js").read_bytes())
    live = net.cores["w1"]
    assert net.config is not None
    for nonce in range(1, commands + 1):  # the log only: no core applies these blocks now
        net.command(owner, contract, {"by": 1}, nonce=nonce)
        if nonce % COMMANDS_PER_BLOCK == 0:
            net.ledger.mine()
    net.ledger.mine()
    blocks = net.ledger.blocks
    sealed = live.sealed_identity()

    def fresh() -> EnclaveCore:
        return EnclaveCore.boot(
            config=net.config,  # type: ignore[arg-type]
            platform=net.platforms["w1"],
            engine=engine,
            verifier=live.verifier,
            sealed_identity=sealed,
        )

    core = fresh()
    worst_case = commands - (commands % CHECKPOINT_EVERY or CHECKPOINT_EVERY) + 1
    checkpoint_block = None
    checkpoint = b""
    start = time.perf_counter()
    for block in blocks:
        core.apply_block(block)
        applied = sum(1 for e in block.events if type(e).__name__ == "Command")
        if applied and checkpoint_block is None and _count(core, contract) >= worst_case - 1:
            checkpoint_block = block.header.number
            pause = time.perf_counter()
            checkpoint = core.checkpoint()
            start += time.perf_counter() - pause  # checkpointing is not replay time
    full_replay = time.perf_counter() - start
    if _count(core, contract) != commands:
        raise RuntimeError("replay lost commands")
    start = time.perf_counter()
    restarted = EnclaveCore.restore(
        checkpoint,
        config=net.config,
        platform=net.platforms["w1"],
        engine=engine,
        verifier=live.verifier,
    )
    for block in blocks:
        if checkpoint_block is not None and block.header.number > checkpoint_block:
            restarted.apply_block(block)
    restart = time.perf_counter() - start
    if restarted.state_root() != core.state_root():
        raise RuntimeError("restart diverged from full replay")
    return {
        "replay_per_s": commands / full_replay,
        "full_replay_s": full_replay,
        "restart_s": restart,
    }


def _count(core: EnclaveCore, contract: bytes) -> int:
    runtime = core.runtimes.get(contract)
    raw = runtime.state.values.get("count") if runtime else None
    return int(raw) if raw else 0


@benchmark("runtime")
def _bench(quick: bool) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    with AgentRuntime() as engine:
        for size in _sizes(quick):
            result = _measure(engine, size)
            label = _label(size)
            figures.setdefault("replay_commands_per_s", round(result["replay_per_s"], 1))
            figures[f"replay_commands_per_s_{label}"] = round(result["replay_per_s"], 1)
            figures[f"restart_from_checkpoint_{label}_s"] = round(result["restart_s"], 3)
            figures[f"full_replay_{label}_s"] = round(result["full_replay_s"], 3)
    return {
        "figures": figures,
        "params": {
            "agent": "examples/agents/counter.js",
            "sizes": _sizes(quick),
            "commands_per_block": COMMANDS_PER_BLOCK,
            "checkpoint_every_commands": CHECKPOINT_EVERY,
            "restart_measures": "restore newest checkpoint + replay up to checkpoint_every commands (worst case)",
        },
    }
