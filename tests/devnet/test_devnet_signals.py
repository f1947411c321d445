"""A devnet stops cleanly on SIGINT and SIGTERM, also started in the background (where a shell
leaves SIGINT ignored): the process exits 0, the chain it started is gone, and its
``network.json`` stays for inspection but is marked stopped, so clients refuse it."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from veilnet.sdk import Client, NetworkConfigInvalid
from veilnet.testing import require_tool

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # what `cmd &` in a script does


def _wait_ready(process: subprocess.Popen[bytes], network: Path) -> dict[str, object]:
    """Until the devnet wrote its network.json (bounded by the devnet's own start timeout)."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else b""
        if network.exists():
            try:
                document: dict[str, object] = json.loads(network.read_text())
                return document
            except ValueError:
                pass  # being written
        time.sleep(0.2)
    raise AssertionError("the devnet did not start")


@pytest.mark.parametrize(
    ("chain", "signum"), [("embedded", signal.SIGINT), ("anvil", signal.SIGTERM)]
)
def test_a_background_devnet_stops_cleanly(tmp_path: Path, chain: str, signum: int) -> None:
    if chain == "anvil":
        require_tool("anvil")
    data = tmp_path / "devnet"
    process = subprocess.Popen(
        [sys.executable, "-m", "veilnet.cli", "devnet", "--chain", chain, "--no-gateway",
         "--data-dir", str(data)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=_ignore_sigint,
    )  # fmt: skip
    try:
        document = _wait_ready(process, data / "network.json")
        process.send_signal(signum)
        assert process.wait(timeout=120) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    stopped = json.loads((data / "network.json").read_text())
    assert stopped["stopped"] is True and stopped["stopped_at"]
    with pytest.raises(NetworkConfigInvalid, match="stopped"):
        Client.connect(data / "network.json", wallet="0x" + "44" * 32)
    rpc = urlsplit(str(document["rpc_url"]))
    with pytest.raises(OSError):  # the chain it started (anvil: a child process) is gone
        socket.create_connection((rpc.hostname or "127.0.0.1", rpc.port or 80), timeout=2).close()


def test_a_devnet_stopped_while_it_starts_stops_cleanly(tmp_path: Path) -> None:
    """Ctrl-C before the devnet is up (here: as soon as it says it is starting) also stops
    everything it started and exits 0; the interrupt must not escape its cleanup."""
    data = tmp_path / "devnet"
    process = subprocess.Popen(
        [sys.executable, "-m", "veilnet.cli", "devnet", "--chain", "embedded", "--no-gateway",
         "--data-dir", str(data)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        assert b"INSECURE development TEE" in process.stdout.readline()
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=120)[0]
        assert process.returncode == 0, output[-2000:]
        assert b"Traceback" not in output
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    network = data / "network.json"
    assert not network.exists() or json.loads(network.read_text())["stopped"] is True
