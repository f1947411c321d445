"""What a user does in two terminals: `veil devnet` on anvil in one, `veil agent ...` commands in
the other, each its own process; Ctrl-C then stops the devnet cleanly (exit 0, no errors)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from veilnet.testing.processes import devnet_process

pytestmark = [pytest.mark.slow, pytest.mark.requires_tool("anvil")]

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "agents"


def test_veil_commands_as_processes_against_veil_devnet_on_anvil(tmp_path: Path) -> None:
    network = tmp_path / "devnet" / "network.json"

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

    # Ctrl-C in a terminal reaches the whole foreground process group at the end; anvil runs in
    # a group of its own, so the devnet stops its workers before it closes the chain.
    with devnet_process(tmp_path / "devnet", "--chain", "anvil", "--no-gateway", cwd=REPO) as up:
        assert up.document["chain"] == "anvil" and network.exists()
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
    port = int(str(up.document["rpc_url"]).rsplit(":", 1)[1].split("/")[0])
    with pytest.raises(OSError):  # the devnet closed anvil on its way out
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
