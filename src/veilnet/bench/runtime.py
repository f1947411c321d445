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
    blocks = list(zip(net.ledger.raw_blocks, net.ledger.blocks, strict=True))
    sealed = live.sealed_identity()
    verification = _verification_seconds(net, blocks)

    def fresh() -> EnclaveCore:
        booted = EnclaveCore.boot(
            config=net.config,  # type: ignore[arg-type]
            platform=net.platforms["w1"],
            engine=engine,
            verifier=live.verifier,
            sealed_identity=sealed,
        )
        booted.import_keys(net.sealed_keys["w1"])  # what its host stored: its encryption keys
        return booted

    core = fresh()
    worst_case = commands - (commands % CHECKPOINT_EVERY or CHECKPOINT_EVERY) + 1
    checkpoint_block = None
    checkpoint = b""
    start = time.perf_counter()
    steady = _Steady()
    for raw, block in blocks:
        began = time.perf_counter()
        core.apply_block(raw)
        applied = sum(1 for e in block.events if type(e).__name__ == "Command")
        steady.add(applied, time.perf_counter() - began)
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
    for raw, block in blocks:
        if checkpoint_block is not None and block.header.number > checkpoint_block:
            restarted.apply_block(raw)
    restart = time.perf_counter() - start
    if restarted.state_root() != core.state_root():
        raise RuntimeError("restart diverged from full replay")
    cluster = core.contracts[contract].cluster
    process_replay = _replay_in_enclave_process(
        net, blocks, sealed, expected=core.cluster_commitment(cluster), cluster=cluster
    )
    return {
        "replay_per_s": commands / full_replay,
        "full_replay_s": full_replay,
        "verification_s": verification,
        "restart_s": restart,
        "steady_per_s": steady.per_s,
        "process_steady_per_s": process_replay.per_s,
    }


def _verification_seconds(net: Network, blocks: list[Any]) -> float:
    """Time the core's light client alone over the log (re-hash, signature, receipts trie,
    log decoding): what replay pays for trusting nothing its host hands it."""
    from veilnet.runtime import lightclient

    assert net.config is not None
    head = None
    start = time.perf_counter()
    for raw, _ in blocks:
        head = lightclient.prove_block(net.config, head, raw).header
    return time.perf_counter() - start


class _Steady:
    """Commands per second over the blocks after the first one with commands (by then the
    agent is compiled and loaded, a one-time cost a fresh engine pays, not the interface)."""

    def __init__(self) -> None:
        self.seen_commands = False
        self.commands = 0
        self.seconds = 0.0

    def add(self, commands: int, seconds: float) -> None:
        if self.seen_commands:
            self.commands += commands
            self.seconds += seconds
        self.seen_commands = self.seen_commands or commands > 0

    @property
    def per_s(self) -> float:
        return self.commands / self.seconds if self.seconds else 0.0


def _replay_in_enclave_process(
    net: Network, blocks: list[Any], sealed: bytes, *, expected: bytes | None, cluster: bytes
) -> _Steady:
    """The same replay through ``veil enclave serve`` and its bytes-only interface.

    The enclave process builds its own dev TEE from the network seed, unseals the same identity
    and must end with the same state commitment as the in-process core.
    """
    from veilnet.protocol import enclave as wire
    from veilnet.testing.network import NETWORK_SEED
    from veilnet.worker.enclave import Enclave, ProcessEnclave

    assert net.config is not None
    config = wire.EnclaveConfig(
        chain_id=net.config.chain_id,
        registry=net.config.registry,
        bus=net.config.bus,
        chain_trust=net.config.chain_trust,
        key_window_blocks=net.config.key_window_blocks,
        commitment_interval=net.config.commitment_interval,
        heartbeat_interval=net.config.heartbeat_interval,
        max_confidence_level=net.config.max_confidence_level,
        tee="dev",
        dev_network_seed=NETWORK_SEED,
    )
    enclave = Enclave(ProcessEnclave())
    try:
        enclave.boot(
            wire.Boot(config=config, sealed_identity=sealed, sealed_keys=net.sealed_keys["w1"])
        )
        steady = _Steady()
        for raw, block in blocks:
            began = time.perf_counter()
            enclave.apply_block(raw)
            applied = sum(1 for e in block.events if type(e).__name__ == "Command")
            steady.add(applied, time.perf_counter() - began)
        found = {c.cluster_id: c.state_commitment for c in enclave.status().clusters}
    finally:
        enclave.close()
    if found.get(cluster) != expected:
        raise RuntimeError("the enclave process's replay diverged from the in-process one")
    return steady


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
            full, verify = result["full_replay_s"], result["verification_s"]
            figures.setdefault("verification_s", round(verify, 3))
            figures.setdefault("replay_commands_per_s_unverified", round(size / (full - verify), 1))
            figures.setdefault("verification_ratio", round(full / (full - verify), 3))
            in_process, process = result["steady_per_s"], result["process_steady_per_s"]
            figures.setdefault("replay_steady_commands_per_s", round(in_process, 1))
            figures.setdefault("replay_steady_commands_per_s_enclave_process", round(process, 1))
            if process:
                figures.setdefault("replay_boundary_ratio", round(in_process / process, 3))
    return {
        "figures": figures,
        "params": {
            "agent": "examples/agents/counter.js",
            "sizes": _sizes(quick),
            "commands_per_block": COMMANDS_PER_BLOCK,
            "checkpoint_every_commands": CHECKPOINT_EVERY,
            "verification": "verification_s: the core's light client alone over the whole log (header re-hash, sequencer signature, receipts trie, log decoding); verification_ratio: full replay over full replay without it (1.0 = free)",
            "restart_measures": "restore newest checkpoint + replay up to checkpoint_every commands (worst case)",
            "enclave_process": "replay_steady_*: commands/s over the blocks after the first one with commands, in-process and through veil enclave serve (bytes-only interface, its own dev TEE and engine; the same final state commitment is checked); replay_boundary_ratio: in-process over enclave process (1.0 = free)",
        },
    }
