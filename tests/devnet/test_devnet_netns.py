"""An operator on another host joins a devnet: `veil worker run --network network.json` in its own
network namespace, reaching the chain and the sequencer over a veth link, found by clients
through the API URL it registered on chain, and answering a verified query."""

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

import pytest

from veilnet.chain.anvil import dev_accounts
from veilnet.testing.processes import devnet_process

pytestmark = [pytest.mark.slow, pytest.mark.requires_tool("anvil", "netns")]

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "agents"
_SUFFIX = os.getpid() % 250


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@contextlib.contextmanager
def _other_host() -> Iterator[tuple[str, str, str]]:
    """A network namespace joined to this one by a veth pair: (its name, our address on the
    link, its address). Deleting the namespace removes the pair too."""
    name, ours, theirs = f"veil-op{_SUFFIX}", f"10.213.{_SUFFIX}.1", f"10.213.{_SUFFIX}.2"
    outside, inside = f"vo{_SUFFIX}a", f"vo{_SUFFIX}b"
    with contextlib.suppress(subprocess.CalledProcessError):
        _ip("netns", "del", name)  # left over by a killed run
    _ip("netns", "add", name)
    try:
        _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        _ip("link", "set", inside, "netns", name)
        _ip("addr", "add", f"{ours}/24", "dev", outside)
        _ip("link", "set", outside, "up")
        _ip("-n", name, "addr", "add", f"{theirs}/24", "dev", inside)
        _ip("-n", name, "link", "set", inside, "up")
        _ip("-n", name, "link", "set", "lo", "up")
        yield name, ours, theirs
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("link", "del", outside)
        _ip("netns", "del", name)


def _veil(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "veilnet.cli", *args, "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _until(check: Any, what: str, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            found = check()
        except Exception as exc:  # retried until the deadline, then reported
            last = exc
        else:
            if found:
                return found
        time.sleep(0.5)
    raise AssertionError(f"{what} within {timeout:.0f} s (last error: {last!r})")


def test_a_worker_in_another_network_namespace_joins_and_answers(tmp_path: Path) -> None:
    from veilnet.crypto import Address
    from veilnet.sdk import Client, WorkerRecord

    args = ("--chain", "anvil", "--no-gateway", "--workers", "1")
    log, ready = tmp_path / "operator.log", tmp_path / "operator.ready"
    with (
        _other_host() as (namespace, ours, theirs),
        devnet_process(tmp_path / "devnet", *args, "--host", ours, cwd=REPO) as up,
        log.open("wb") as out,
    ):
        assert up.document["rpc_url"].startswith(f"http://{ours}:")
        network = up.network
        operator_key = dev_accounts(10)[9][1].hex()
        worker = subprocess.Popen(
            ["ip", "netns", "exec", namespace, sys.executable, "-m", "veilnet.cli",
             "worker", "run", "--network", str(network), "--insecure-dev-tee",
             "--data-dir", str(tmp_path / "operator"), "--api-host", theirs,
             "--operator-key", operator_key, "--fund-from", operator_key,
             "--name", "far", "--ready-file", str(ready), "--log-level", "warning"],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            _until(ready.exists, "the worker in the namespace did not start")
            far = json.loads(ready.read_text())
            assert far["api_url"].startswith(f"http://{theirs}:")
            address = far["address"]
            deployed = _veil(
                "agent", "deploy", str(EXAMPLES / "counter.js"), "--init", '{"start": 5}',
                "--network", str(network), "--insecure-dev-tee",
            )  # fmt: skip
            contract = deployed["contract_id"]
            with Client.connect(network, allow_insecure_dev_tee=True) as client:
                # registered over the link, then endorsed by the gatekeeper in this namespace
                _until(
                    lambda: client.registry_record(WorkerRecord, Address.parse(address)).confidence,
                    "the far worker was not endorsed",
                )
                admin = "0x" + dev_accounts(1)[0][1].hex()
                added = _veil(
                    "cluster", "add-worker", address, "--network", str(network), "--key", admin
                )
                assert address in added["members"]
                listed = _veil("cluster", "list", "--network", str(network))
                assert {"address": address, "api_url": far["api_url"]} in listed
                # network.json does not name it: the SDK finds its URL on chain
                assert address not in json.loads(network.read_text())["workers"]
                answer = _until(
                    lambda: client.agent(contract).query({}, worker=address),
                    "the far worker did not answer a verified query",
                )
                assert answer.worker.hex == address and answer.value["count"] == 5
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()
    assert worker.returncode == 0, log.read_text()[-3000:]
