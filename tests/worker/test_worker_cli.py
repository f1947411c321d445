"""``veil worker run``: argument errors, and (slow) a network of worker processes on anvil."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from veilnet.chain import AnvilChain, Network, deploy, find_anvil
from veilnet.cli.worker import worker
from veilnet.codec import encode
from veilnet.worker import WorkerConfigInvalid, bootstrap_network, cluster_id, dev_measurement

from .conftest import ALICE, NETWORK_SEED, Net, deploy_counter, query_over_http, send_command

REPO = Path(__file__).resolve().parents[2]


def _network_file(tmp_path: Path, **extra: object) -> Path:
    doc = {
        "chain_id": 1337,
        "rpc_url": "http://127.0.0.1:9",
        "contracts": {"registry": "0x" + "11" * 20, "bus": "0x" + "22" * 20},
        "genesis_block": 0,
        **extra,
    }
    path = tmp_path / "network.json"
    path.write_text(json.dumps(doc))
    return path


def test_run_needs_a_network(tmp_path: Path) -> None:
    result = CliRunner().invoke(worker, ["run", "--data-dir", str(tmp_path / "d")])
    assert result.exit_code == 2 and "--network" in result.output


def test_run_needs_an_operator_key_and_a_seed_for_the_dev_tee(tmp_path: Path) -> None:
    net = str(_network_file(tmp_path))
    base = ["run", "--network", net, "--data-dir", str(tmp_path / "d")]
    result = CliRunner().invoke(worker, base, env={"VEIL_OPERATOR_KEY": ""})
    assert result.exit_code == 2 and "--operator-key" in result.output
    key = "0x" + "01" * 32
    result = CliRunner().invoke(worker, [*base, "--operator-key", key, "--insecure-dev-tee"])
    assert result.exit_code == 2 and "--network-seed" in result.output
    result = CliRunner().invoke(worker, [*base, "--operator-key", "0x1234"])
    assert result.exit_code == 2 and "32 bytes" in result.output


def test_bad_network_file_is_a_typed_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"chain_id": 1}')
    result = CliRunner().invoke(worker, ["run", "--network", str(bad), "--data-dir", str(tmp_path)])
    assert isinstance(result.exception, WorkerConfigInvalid)
    assert result.exception.code == "worker_config_invalid"


def _spawn(
    name: str, index: int, anvil: AnvilChain, network_file: Path, tmp_path: Path
) -> tuple[subprocess.Popen[bytes], Path]:
    ready = tmp_path / f"{name}.ready"
    keys = anvil.dev_accounts
    args = [
        sys.executable, "-m", "veilnet.cli.worker", "run",
        "--network", str(network_file),
        "--data-dir", str(tmp_path / name),
        "--operator-key", keys[2 + index][1].hex(),
        "--fund-from", keys[6 + index][1].hex(),
        "--insecure-dev-tee", "--network-seed", NETWORK_SEED.hex(),
        "--finality", "2", "--poll-interval", "0.05", "--checkpoint-every", "5",
        "--name", name, "--ready-file", str(ready), "--log-level", "warning",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    log = (tmp_path / f"{name}.log").open("wb")
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    return process, ready


def _ready(process: subprocess.Popen[bytes], ready: Path, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while not ready.exists():
        assert process.poll() is None, "worker process exited early"
        assert time.monotonic() < deadline, "worker process did not start in time"
        time.sleep(0.05)
    return json.loads(ready.read_text())


@pytest.mark.slow
def test_worker_processes_on_anvil(tmp_path: Path) -> None:
    if find_anvil() is None:
        pytest.skip("anvil binary not installed")
    with AnvilChain() as anvil:
        client = anvil.client()
        admin_key = anvil.dev_accounts[0][1]
        deployment = deploy(client, admin_key, measurements=[dev_measurement()])
        network = Network(client, deployment.addresses)
        network.sender(anvil.dev_accounts[1][1]).transact(
            ALICE.address, b"", value=10**19, gas=21_000
        )
        network_file = tmp_path / "network.json"
        network_file.write_text(
            json.dumps(
                {
                    "chain_id": deployment.addresses.chain_id,
                    "rpc_url": anvil.url,
                    "contracts": {
                        "registry": deployment.addresses.registry.hex,
                        "bus": deployment.addresses.bus.hex,
                    },
                    "genesis_block": deployment.genesis_block,
                    "admin": deployment.admin.hex,
                }
            )
        )
        procs = [
            _spawn(n, i, anvil, network_file, tmp_path) for i, n in enumerate(("gk", "w1", "w2"))
        ]
        try:
            gk, w1, w2 = (_ready(p, r) for p, r in procs)
            bootstrap_network(
                client,
                deployment,
                admin_key,
                gatekeeper=gk["address"],
                clusters={"c1": [w1["address"], w2["address"]]},
                mine=anvil.mine,
                poll_interval=0.05,
                timeout=120,
            )
            net = Net(
                chain=anvil,  # type: ignore[arg-type]
                url=anvil.url,
                deployment=deployment,
                network=network,
                engine=None,  # type: ignore[arg-type]
                root=tmp_path,
            )
            contract = deploy_counter(net)

            def poll(done: object, rounds: int = 300) -> None:
                for _ in range(rounds):
                    if done():  # type: ignore[operator]
                        return
                    anvil.mine(1)
                    time.sleep(0.05)
                raise AssertionError("worker processes did not catch up")

            def keyed() -> bool:
                for w in (w1, w2):
                    got = httpx.get(f"{w['api_url']}/v1/contracts/0x{contract.hex()}")
                    if got.status_code != 200 or got.json()["epoch"] == 0:
                        return False
                return True

            poll(keyed)
            seq = send_command(net, contract, {"by": 7}, nonce=1)

            def applied() -> bool:
                for w in (w1, w2):
                    if httpx.get(f"{w['api_url']}/v1/health").status_code != 200:
                        return False
                    got, _ = query_over_http(
                        net, w["api_url"], contract, kind="outcome", body=encode(seq)
                    )
                    if got["status"] != "applied":
                        return False
                return True

            poll(applied)
            for w in (w1, w2):
                answer, _ = query_over_http(net, w["api_url"], contract)
                assert answer["result"]["count"] == 7
            info = [httpx.get(f"{w['api_url']}/v1/info").json() for w in (w1, w2)]
            assert info[0]["cluster"] == info[1]["cluster"] == "0x" + cluster_id("c1").hex()
        finally:
            for process, _ in procs:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            codes = [process.wait(timeout=60) for process, _ in procs]
        assert codes == [0, 0, 0], [
            (tmp_path / f"{n}.log").read_text()[-2000:] for n in ("gk", "w1", "w2")
        ]
        for name in ("gk", "w1", "w2"):
            assert list((tmp_path / name / "checkpoints").glob("ckpt-*.bin"))
