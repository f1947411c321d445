"""The generated sync client has not drifted, the CLI commands parse, and network.json errors
are typed (no devnet needed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from veilnet.sdk import Client, NetworkConfig, NetworkConfigInvalid

REPO = Path(__file__).resolve().parents[2]


def test_sync_client_is_generated_from_async() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "unasync.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "name", "args"),
    [
        ("veilnet.cli.devnet", "devnet", []),
        ("veilnet.cli.agent", "agent", ["deploy"]),
        ("veilnet.cli.agent", "agent", ["command"]),
        ("veilnet.cli.agent", "agent", ["query"]),
        ("veilnet.cli.agent", "agent", ["secrets", "set"]),
        ("veilnet.cli.agent", "agent", ["schedule"]),
        ("veilnet.cli.agent", "agent", ["schedules"]),
        ("veilnet.cli.agent", "agent", ["unschedule"]),
        ("veilnet.cli.status", "status", []),
        ("veilnet.cli.audit", "audit", []),
        ("veilnet.cli.keys", "keys", ["rotate"]),
        ("veilnet.cli.keys", "keys", ["evict"]),
        ("veilnet.cli.cluster", "cluster", ["policy"]),
        ("veilnet.cli.cluster", "cluster", ["refund"]),
        ("veilnet.cli.consumer", "consumer", ["deploy"]),
        ("veilnet.cli.consumer", "consumer", ["request"]),
        ("veilnet.cli.consumer", "consumer", ["requests"]),
        ("veilnet.cli.consumer", "consumer", ["watch"]),
        ("veilnet.cli.attest", "attest", ["pccs"]),
    ],
)
def test_every_command_has_help(module: str, name: str, args: list[str]) -> None:
    import importlib

    command = getattr(importlib.import_module(module), name)
    result = CliRunner().invoke(command, [*args, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output
    if name != "devnet" or args:
        assert "--json" in result.output or "Commands" in result.output


def test_bad_json_argument_is_a_usage_error(tmp_path: Path) -> None:
    from veilnet.cli.agent import agent

    result = CliRunner().invoke(agent, ["query", "0x" + "11" * 32, "{nope", "--network", "x"])
    assert result.exit_code == 2 and "not valid JSON" in result.output


def test_missing_network_is_a_typed_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VEIL_NETWORK", raising=False)
    with pytest.raises(NetworkConfigInvalid) as info:
        Client.connect()
    assert info.value.code == "sdk_network_invalid"
    with pytest.raises(NetworkConfigInvalid):
        Client.connect(tmp_path / "absent.json")


@pytest.mark.parametrize(
    "doc",
    [
        {
            "rpc_url": "http://x",
            "contracts": {"Registry": "0x" + "11" * 20, "Bus": "0x" + "22" * 20},
        },
        {"chain_id": 1, "rpc_url": "http://x", "contracts": {"Registry": "0x11"}},
        {"chain_id": 1, "rpc_url": "http://x", "contracts": {"Registry": "nope", "Bus": "nope"}},
    ],
)
def test_incomplete_network_json_is_refused(doc: dict[str, object]) -> None:
    with pytest.raises(NetworkConfigInvalid):
        NetworkConfig.from_json(doc)


def test_network_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = {
        "chain_id": 7,
        "rpc_url": "http://127.0.0.1:1",
        "contracts": {"Registry": "0x" + "11" * 20, "Bus": "0x" + "22" * 20},
        "dev_accounts": {"0x" + "33" * 20: "0x" + "44" * 32},
    }
    path = tmp_path / "net.json"
    path.write_text(json.dumps(doc))
    monkeypatch.setenv("VEIL_NETWORK", str(path))
    monkeypatch.delenv("VEIL_PRIVATE_KEY", raising=False)
    with Client.connect() as client:
        assert client.config.chain_id == 7
        assert "44" not in repr(client.wallet)
        assert not client.insecure_dev_tee
