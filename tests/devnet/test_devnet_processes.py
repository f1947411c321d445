"""What a user does in two terminals: `veil devnet` on anvil in one, `veil agent ...` commands in
the other, each its own process; Ctrl-C then stops the devnet cleanly (exit 0, no errors)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.requires_tool("anvil")]

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "agents"


def _first_document(stream: IO[str]) -> dict[str, Any]:
    """The JSON document `veil devnet --json` prints once the network is up (blocking reads)."""
    lines: list[str] = []
    for line in stream:
        lines.append(line)
        if line.rstrip() == "}":
            document: dict[str, Any] = json.loads("".join(lines))
            return document
    raise AssertionError("veil devnet exited before printing its network")


def test_veil_commands_as_processes_against_veil_devnet_on_anvil(tmp_path: Path) -> None:
    data = tmp_path / "devnet"
    devnet = subprocess.Popen(
        [sys.executable, "-m", "veilnet.cli", "devnet", "--chain", "anvil", "--no-gateway",
         "--data-dir", str(data), "--json"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    network = data / "network.json"

    def run(*args: str, trust_dev_root: bool = True) -> subprocess.CompletedProcess[str]:
        flag = ["--insecure-dev-tee"] if trust_dev_root else []
        return subprocess.run(
            [sys.executable, "-m", "veilnet.cli", *args, "--network", str(network), "--json",
             *flag],
            cwd=REPO, capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip

    def veil(*args: str) -> dict[str, Any]:
        done = run(*args)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    try:
        assert devnet.stdout is not None
        document = _first_document(devnet.stdout)
        assert document["chain"] == "anvil" and network.exists()
        deployed = veil("agent", "deploy", str(EXAMPLES / "counter.js"), "--init", '{"start": 1}')
        contract = deployed["contract_id"]
        sent = veil("agent", "command", contract, '{"by": 2}', "--wait")
        assert sent["applied"] and sent["ok"]
        answer = veil("agent", "query", contract, "{}")
        # the dev root is trusted only when the user says so, never by network.json alone
        refused = run("agent", "query", contract, "{}", trust_dev_root=False)
        assert refused.returncode != 0 and "sdk_worker_unverified" in refused.stderr
        assert "--insecure-dev-tee" in refused.stderr
        assert answer["verified"] and answer["value"]["count"] == 3
        status = veil("status")
        assert len(status["workers"]) == 3 and all(w["attested"] for w in status["workers"])
    finally:
        # Ctrl-C in a terminal reaches the whole foreground process group; anvil runs in a
        # group of its own, so the devnet stops its workers before it closes the chain.
        os.killpg(devnet.pid, signal.SIGINT)
        _, stderr = devnet.communicate(timeout=60)
    assert devnet.returncode == 0, stderr[-2000:]
    assert "follower:" not in stderr and "Traceback" not in stderr, stderr[-2000:]
    rpc = str(document["rpc_url"])
    port = int(rpc.rsplit(":", 1)[1].split("/")[0])
    with pytest.raises(OSError):  # the devnet closed anvil on its way out
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
