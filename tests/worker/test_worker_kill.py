"""Kill -9 a worker process at random points during a command stream, again and again: after each
restart it resumes from its newest checkpoint; in the end every replica has the same commitment
and every command was applied exactly once."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import time
from pathlib import Path

import httpx
import pytest

from veilnet.chain import AnvilChain, Network, deploy
from veilnet.testing import require_tool
from veilnet.worker import bootstrap_network, dev_measurement

from .conftest import ALICE, Net, deploy_counter, query_over_http, send_command
from .test_worker_cli import _ready, _spawn, sequencer_for, write_network_file

ROUNDS = int(os.environ.get("VEIL_KILL_ROUNDS", "50"))


@pytest.mark.slow
def test_kill_minus_nine_fifty_times(tmp_path: Path) -> None:
    require_tool("anvil")
    rng = random.Random(2026)
    with AnvilChain() as anvil, contextlib.ExitStack() as stack:
        client = anvil.client()
        admin_key = anvil.dev_accounts[0][1]
        deployment = deploy(client, admin_key, measurements=[dev_measurement()])
        network = Network(client, deployment.addresses)
        network.sender(anvil.dev_accounts[1][1]).transact(
            ALICE.address, b"", value=10**19, gas=21_000
        )
        sequencer = stack.enter_context(sequencer_for(client, deployment))
        network_file = write_network_file(tmp_path, deployment, anvil.url, sequencer)
        procs = {
            n: _spawn(n, i, anvil, network_file, tmp_path) for i, n in enumerate(("gk", "w1", "w2"))
        }
        try:
            info = {n: _ready(*procs[n]) for n in procs}
            bootstrap_network(
                client,
                deployment,
                admin_key,
                gatekeeper=info["gk"]["address"],
                clusters={"c1": [info["w1"]["address"], info["w2"]["address"]]},
                mine=anvil.mine,
                poll_interval=0.05,
                timeout=120,
            )
            net = Net(
                chain=anvil,
                url=anvil.url,
                deployment=deployment,
                network=network,
                engine=None,
                root=tmp_path,
            )  # type: ignore[arg-type]
            contract = deploy_counter(net)

            def settle(done: object, rounds: int = 600) -> None:
                for _ in range(rounds):
                    if done():  # type: ignore[operator]
                        return
                    anvil.mine(1)
                    time.sleep(0.05)
                raise AssertionError("workers did not settle")

            def keyed() -> bool:
                for name in ("w1", "w2"):
                    got = httpx.get(f"{info[name]['api_url']}/v1/contracts/0x{contract.hex()}")
                    if got.status_code != 200 or got.json()["epoch"] == 0:
                        return False
                return True

            settle(keyed)
            sent = 0
            restored = []
            for _ in range(ROUNDS):
                for _ in range(rng.randint(1, 3)):
                    sent += 1
                    send_command(net, contract, {"by": 1}, nonce=sent)
                anvil.mine(rng.randint(0, 3))
                time.sleep(rng.uniform(0.0, 0.3))  # a random point in the worker's work
                process, ready = procs["w2"]
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=30)
                ready.unlink(missing_ok=True)
                procs["w2"] = _spawn("w2", 1, anvil, network_file, tmp_path)
                info["w2"] = _ready(*procs["w2"])
                restored.append(info["w2"]["restored_from"])

            def caught_up() -> bool:
                counts = []
                for name in ("w1", "w2"):
                    if httpx.get(f"{info[name]['api_url']}/v1/health").status_code != 200:
                        return False
                    answer, _ = query_over_http(net, info[name]["api_url"], contract)
                    counts.append(answer["result"]["count"])
                return counts == [sent, sent]

            settle(caught_up)

            def same_block() -> bool:
                heads = [httpx.get(f"{info[n]['api_url']}/v1/info").json() for n in ("w1", "w2")]
                return heads[0]["last_applied_block"] == heads[1]["last_applied_block"]

            for _ in range(200):  # stop mining: both replicas converge on the same final block
                if same_block():
                    break
                time.sleep(0.05)
            heads = [httpx.get(f"{info[n]['api_url']}/v1/info").json() for n in ("w1", "w2")]
            assert heads[0]["last_applied_block"] == heads[1]["last_applied_block"]
            assert heads[0]["state_commitments"] == heads[1]["state_commitments"]
            assert heads[0]["state_commitments"]  # a real commitment, not an empty map
            # restarts resumed from checkpoints (not from genesis) once there was one to take
            assert sent >= ROUNDS and any(block is not None for block in restored)
        finally:
            for process, _ in procs.values():
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process, _ in procs.values():
                process.wait(timeout=60)
