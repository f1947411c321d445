"""``veil bench rotation``: blocks from the rotation lock until every cluster is on its new epoch,
and how many commands and queries failed while they kept flowing (finality depth 2)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from veilnet.bench._registry import benchmark
from veilnet.crypto import SecretKey
from veilnet.errors import VeilnetError
from veilnet.sandbox import AgentRuntime
from veilnet.testing import Network, query_core

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "agents"
FINALITY = 2


def _query(net: Network, worker: str, contract: bytes, wallet: SecretKey) -> bool:
    """An encrypted, certified query, verified and opened; False on any typed failure."""
    try:
        return bool(query_core(net, wallet, contract, {}, worker=worker).get("ok"))
    except VeilnetError:
        return False


@benchmark("rotation")
def _bench(quick: bool) -> dict[str, Any]:
    rounds = 1 if quick else int(os.environ.get("VEIL_BENCH_ROTATIONS", "3"))
    owner = SecretKey.derive(b"\x42" * 32, "bench-owner")
    figures: dict[str, Any] = {}
    blocks_to_clusters: list[int] = []
    blocks_to_contracts: list[int] = []
    failed = calls = 0
    with AgentRuntime() as engine:
        net = Network(engine=engine, finality=FINALITY, key_window_blocks=50)
        net.bootstrap(workers=("w1", "w2", "w3"), clusters={"c1": ["w1", "w2"], "c2": ["w3"]})
        contracts = {
            "w1": net.deploy(
                owner, "js", (EXAMPLES / "counter.js").read_bytes(), cluster="c1", salt=b"\x01" * 32
            ),
            "w3": net.deploy(
                owner, "js", (EXAMPLES / "counter.js").read_bytes(), cluster="c2", salt=b"\x02" * 32
            ),
        }
        nonce = 0
        for _ in range(rounds):
            lock = net.ledger.head.number + 1
            net.ledger.lock_rotation()
            target = max(net.contract_key_info(c)[1] for c in contracts.values()) + 1
            for _ in range(40):
                for worker, contract in contracts.items():
                    nonce += 1
                    net.command(owner, contract, {"by": 1}, nonce=nonce)
                    calls += 2
                    failed += 0 if _query(net, worker, contract, owner) else 1
                net.step()
                if all(net.contract_key_info(c)[1] >= target for c in contracts.values()):
                    break
            net.settle()
            landed = [
                (b.header.number, type(e).__name__)
                for b in net.ledger.blocks[lock - 1 :]
                for e in b.events
            ]
            blocks_to_clusters.append(max(n for n, k in landed if k == "ClusterKeySet") - lock)
            blocks_to_contracts.append(max(n for n, k in landed if k == "ContractKeySet") - lock)
        for contract in contracts.values():
            for core_name in ("w1", "w2", "w3"):
                runtime = net.cores[core_name].runtimes.get(contract)
                if runtime is not None:
                    failed += sum(1 for o in runtime.outcomes.values() if not o.ok)
    figures["rotation_blocks"] = max(blocks_to_clusters)
    figures["rotation_blocks_to_contract_keys"] = max(blocks_to_contracts)
    figures["failed_calls"] = failed
    figures["calls_during_rotations"] = calls
    if not quick or os.environ.get("VEIL_BENCH_ROTATION_CHAIN") == "1":
        figures.update(_on_chain(rounds))
    return {
        "figures": figures,
        "params": {
            "finality_depth": FINALITY,
            "rotations": rounds,
            "clusters": 2,
            "workers": 3,
            "load": "one command and one encrypted query per contract per block",
            "chain": "veilnet.testing.LedgerSim (in-memory Registry/Bus model)",
            "on_chain": "chain_*: the real Registry and Bus on the embedded chain, a devnet of "
            "3 gatekeepers and 2 workers (each core in its own enclave process), one SDK client "
            "sending a command and a verified query at a time throughout each rotation",
        },
    }


def _on_chain(rounds: int) -> dict[str, Any]:
    """Rotations with three gatekeepers on the real contracts, under a steady load of verified
    SDK calls: blocks from the lock until every contract is re-keyed, and failed calls."""
    import tempfile
    import threading

    from veilnet.devnet import Devnet, DevnetOptions
    from veilnet.sdk import Client

    options = DevnetOptions(
        workers=2,
        gatekeepers=3,
        block_time=0.5,
        finality=FINALITY,
        chain="embedded",
        data_dir=Path(tempfile.mkdtemp(prefix="veil-bench-rotation-")) / ".devnet",
        gateway=False,
    )
    blocks: list[int] = []
    failed = calls = 0
    with Devnet(options) as devnet, devnet.client() as client:
        agent = client.deploy(EXAMPLES / "counter.js")
        stop = threading.Event()
        outcome = {"failed": 0, "calls": 0}

        def load() -> None:
            with Client.connect(devnet.network, allow_insecure_dev_tee=True) as loader:
                flowing = loader.agent(agent.id)
                while not stop.is_set():
                    for call in (lambda: flowing.command({"by": 1}), lambda: flowing.query({})):
                        outcome["calls"] += 1
                        try:
                            result = call()
                            if getattr(result, "ok", True) is False:
                                outcome["failed"] += 1
                        except VeilnetError:
                            outcome["failed"] += 1

        worker = threading.Thread(target=load, name="rotation-load", daemon=True)
        worker.start()
        try:
            for _ in range(rounds):
                report = client.rotate_master_key()
                blocks.append(int(report["finished_block"]) - int(report["locked_block"]))
        finally:
            stop.set()
            worker.join(timeout=120)
        failed, calls = outcome["failed"], outcome["calls"]
    return {
        "chain_rotation_blocks": max(blocks),
        "chain_failed_calls": failed,
        "chain_calls_during_rotations": calls,
    }
