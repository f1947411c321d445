"""``veil worker run``: argument errors, and (slow) a network of worker processes on anvil."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from veilnet.chain import AnvilChain, EmbeddedChain, Network, deploy
from veilnet.chain.sequencer import Sequencer, SequencerServer, sequencer_trust
from veilnet.cli.worker import worker
from veilnet.codec import encode
from veilnet.protocol import envelopes as proto
from veilnet.protocol.chain import ChainTrust
from veilnet.testing import require_tool
from veilnet.testing.adversary import dev_chain_trust
from veilnet.worker import WorkerConfigInvalid, bootstrap_network, cluster_id, dev_measurement

from .conftest import (
    ALICE,
    EXAMPLES,
    NETWORK_SEED,
    OWNER_FUNDED,
    SEQUENCER_KEY,
    Net,
    WorkerBusy,
    contract_key,
    deploy_counter,
    query_over_http,
    send_command,
)

REPO = Path(__file__).resolve().parents[2]


def _network_file(tmp_path: Path, **extra: object) -> Path:
    doc = {
        "chain_trust": dev_chain_trust().to_json(),
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


@contextlib.contextmanager
def sequencer_for(client: Any, deployment: Any) -> Iterator[tuple[str, ChainTrust]]:
    """A sequencer signing the chain's final blocks: (its URL, the network's chain trust)."""
    sequencer = Sequencer(
        client, SEQUENCER_KEY, registry=deployment.addresses.registry.raw, finality_depth=2
    )
    server = SequencerServer(sequencer).start()
    try:
        yield server.url, sequencer_trust(client, deployment.genesis_block, sequencer.address)
    finally:
        server.close()


def write_network_file(
    tmp_path: Path, deployment: Any, rpc_url: str, sequencer: tuple[str, ChainTrust]
) -> Path:
    """The network.json a `veil worker run` process reads."""
    path = tmp_path / "network.json"
    path.write_text(
        json.dumps(
            {
                "chain_id": deployment.addresses.chain_id,
                "rpc_url": rpc_url,
                "contracts": {
                    "registry": deployment.addresses.registry.hex,
                    "bus": deployment.addresses.bus.hex,
                },
                "genesis_block": deployment.genesis_block,
                "admin": deployment.admin.hex,
                "sequencer_url": sequencer[0],
                "chain_trust": sequencer[1].to_json(),
            }
        )
    )
    return path


def _spawn(
    name: str, index: int, anvil: Any, network_file: Path, tmp_path: Path
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


def _chain(kind: str) -> Any:
    if kind == "anvil":
        require_tool("anvil")
        return AnvilChain()
    chain = EmbeddedChain()
    chain.serve()
    return chain


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["anvil", "embedded"])
def test_worker_processes_two_clusters(tmp_path: Path, kind: str) -> None:
    """1 gatekeeper + 3 workers in 2 clusters, each a separate `veil worker run` process."""
    with _chain(kind) as chain, contextlib.ExitStack() as stack:
        client = chain.client()
        admin_key = chain.dev_accounts[0][1]
        deployment = deploy(client, admin_key, measurements=[dev_measurement()])
        network = Network(client, deployment.addresses)
        network.sender(chain.dev_accounts[1][1]).transact(
            ALICE.address, b"", value=10**19, gas=21_000
        )
        sequencer = stack.enter_context(sequencer_for(client, deployment))
        network_file = write_network_file(tmp_path, deployment, chain.url, sequencer)
        names = ("gk", "w1", "w2", "w3")
        procs = [_spawn(n, i, chain, network_file, tmp_path) for i, n in enumerate(names)]
        try:
            gk, w1, w2, w3 = (_ready(p, r) for p, r in procs)
            bootstrap_network(
                client,
                deployment,
                admin_key,
                gatekeeper=gk["address"],
                clusters={"c1": [w1["address"], w2["address"]], "c2": [w3["address"]]},
                mine=chain.mine,
                poll_interval=0.05,
                timeout=120,
            )
            net = Net(
                chain=chain,
                url=chain.url,
                deployment=deployment,
                network=network,
                engine=None,  # type: ignore[arg-type]
                root=tmp_path,
            )
            a = deploy_counter(net)
            code = proto.pack_code("js", (EXAMPLES / "counter.js").read_bytes())
            b = network.deploy_contract(
                network.sender(OWNER_FUNDED(net)),
                salt=b"\x02" * 32,
                cluster_id=cluster_id("c2"),
                code=code,
                init_args=b"",
            )

            def poll(done: object, rounds: int = 400) -> None:
                for _ in range(rounds):
                    if done():  # type: ignore[operator]
                        return
                    chain.mine(1)
                    time.sleep(0.05)
                raise AssertionError("worker processes did not catch up")

            serving = {a: (w1, w2), b: (w3,)}

            def keyed() -> bool:
                for contract, workers in serving.items():
                    if contract_key(net, contract)[1] == 0:  # the key is not on chain yet
                        return False
                    for w in workers:
                        got = httpx.get(f"{w['api_url']}/v1/contracts/0x{contract.hex()}")
                        if got.status_code != 200 or got.json()["epoch"] == 0:
                            return False
                return True

            poll(keyed)
            seqs = {
                a: send_command(net, a, {"by": 7}, nonce=1),
                b: send_command(net, b, {"by": 3}, nonce=1),
            }

            def applied() -> bool:
                for contract, workers in serving.items():
                    for w in workers:
                        if httpx.get(f"{w['api_url']}/v1/health").status_code != 200:
                            return False
                        try:
                            got, _ = query_over_http(
                                net,
                                w["api_url"],
                                contract,
                                kind="outcome",
                                body=encode(seqs[contract]),
                            )
                        except WorkerBusy:  # fell behind while the test mines: not yet
                            return False
                        if got["status"] != "applied":
                            return False
                return True

            poll(applied)
            answers: dict[tuple[bytes, str], Any] = {}

            def answered() -> bool:
                for contract, workers in serving.items():
                    for w in workers:
                        try:
                            answers[contract, w["api_url"]], _ = query_over_http(
                                net, w["api_url"], contract
                            )
                        except WorkerBusy:
                            return False
                return True

            poll(answered)
            for (contract, _url), answer in answers.items():
                assert answer["result"]["count"] == (7 if contract == a else 3)
            info = [httpx.get(f"{w['api_url']}/v1/info").json() for w in (w1, w2, w3)]
            assert info[0]["cluster"] == info[1]["cluster"] == "0x" + cluster_id("c1").hex()
            assert info[2]["cluster"] == "0x" + cluster_id("c2").hex()
            for _ in range(200):  # same final block on both replicas of c1, then same commitment
                heads = [httpx.get(f"{w['api_url']}/v1/info").json() for w in (w1, w2)]
                if heads[0]["last_applied_block"] == heads[1]["last_applied_block"]:
                    break
                time.sleep(0.05)
            c1 = "0x" + cluster_id("c1").hex()
            assert heads[0]["state_commitments"][c1] == heads[1]["state_commitments"][c1]
        finally:
            for process, _ in procs:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            codes = [process.wait(timeout=60) for process, _ in procs]
        assert codes == [0, 0, 0, 0], [(tmp_path / f"{n}.log").read_text()[-2000:] for n in names]
        for name in names:
            assert list((tmp_path / name / "checkpoints").glob("ckpt-*.bin"))


def test_a_devnet_network_file_is_accepted_and_a_stopped_one_refused(tmp_path: Path) -> None:
    """What ``veil devnet`` writes (``contracts.Registry``/``Bus``) is what ``veil worker run
    --network`` reads; a devnet that stopped is refused with a reason."""
    from veilnet.cli.worker import _load_network
    from veilnet.worker.errors import WorkerConfigInvalid

    contracts = {"Registry": "0x" + "11" * 20, "Bus": "0x" + "22" * 20}
    doc = _load_network(_network_file(tmp_path, contracts=contracts))
    assert doc["contracts"] == contracts
    with pytest.raises(WorkerConfigInvalid, match="stopped"):
        _load_network(_network_file(tmp_path, contracts=contracts, stopped=True))
    with pytest.raises(WorkerConfigInvalid, match=r"contracts\.Registry"):
        _load_network(_network_file(tmp_path, contracts={"Bus": "0x" + "22" * 20}))
