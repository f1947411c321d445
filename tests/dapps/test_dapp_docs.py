"""``docs/dapps.md`` is enough to build a DApp without the SDK: its program, run as written with
``veilnet`` unimportable, sends a command and reads a verified query on a devnet, and its event
and record references match the contracts' ABIs and the codec's records."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "dapps.md"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.M | re.S)

_RUNNER = '''
import sys


class _NoVeilnet:
    """The DApp is built from the docs alone: importing veilnet fails."""

    def find_spec(self, name, path=None, target=None):
        if name == "veilnet" or name.startswith("veilnet."):
            raise ImportError("a DApp built from docs/dapps.md must not import veilnet")
        return None


sys.meta_path.insert(0, _NoVeilnet())
from eth_account import Account

NETWORK_FILE = sys.argv[1]
CONTRACT = bytes.fromhex(sys.argv[2].removeprefix("0x"))
ACCOUNT = Account.from_key(sys.argv[3])
'''

_CHECK = """
assert not [m for m in sys.modules if m == "veilnet" or m.startswith("veilnet.")]
"""


def _program() -> str:
    return _RUNNER + "\n".join(_BLOCK.findall(DOC.read_text())) + _CHECK


def _rows(title: str) -> list[list[str]]:
    """The table rows of the ``## title`` section, cells stripped of backticks."""
    (text,) = [p for p in re.split(r"^## ", DOC.read_text(), flags=re.M) if p.startswith(title)]
    rows = []
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            rows.append([cell.strip().replace("`", "") for cell in line.strip("|").split("|")])
    return rows[1:]


def test_the_event_reference_lists_every_event_with_its_fields() -> None:
    from veilnet.chain.artifacts import load_artifact

    documented = {(row[0], row[1]): row[2] for row in _rows("Event reference")}
    expected = {}
    for contract in ("Registry", "Bus"):
        for entry in load_artifact(contract).abi:
            if entry.get("type") == "event":
                fields = ", ".join(
                    ("*" if i["indexed"] else "") + i["name"] for i in entry["inputs"]
                )
                expected[(contract, entry["name"])] = fields
    assert documented == expected


def test_the_record_reference_matches_the_codec() -> None:
    from veilnet.codec._records import _KINDS  # the registry of record kinds

    documented = _rows("Encodings")
    assert documented
    for kind, fields in documented:
        names = [f.split(" (")[0].strip() for f in re.split(r", (?![^(]*\))", fields)]
        names = [n for part in names for n in part.split(", ")]
        actual = [f.name for f in dataclasses.fields(_KINDS[kind])]
        assert names == actual, kind


@pytest.mark.slow
@pytest.mark.requires_tool("anvil")
def test_the_documented_program_sends_a_command_and_reads_a_verified_query(
    tmp_path: Path,
) -> None:
    from veilnet.chain.anvil import dev_accounts
    from veilnet.testing.processes import devnet_process

    args = ("--chain", "anvil", "--no-gateway", "--workers", "1")
    with devnet_process(tmp_path / "devnet", *args, cwd=REPO) as up:
        deployed = subprocess.run(
            [sys.executable, "-m", "veilnet.cli", "agent", "deploy",
             str(REPO / "examples" / "agents" / "counter.js"), "--init", '{"start": 1}',
             "--network", str(up.network), "--insecure-dev-tee", "--json"],
            cwd=REPO, capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip
        assert deployed.returncode == 0, deployed.stderr[-2000:]
        contract = json.loads(deployed.stdout)["contract_id"]
        script = tmp_path / "dapp.py"
        script.write_text(_program())
        key = "0x" + dev_accounts(8)[7][1].hex()
        done = subprocess.run(
            [sys.executable, str(script), str(up.network), contract, key],
            cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        printed = json.loads(done.stdout.strip().splitlines()[-1])
        assert printed["seq"] == 0
        assert printed["outcome"]["result"] == 3  # what handle returned
        assert printed["answer"]["ok"] is True and printed["answer"]["result"]["count"] == 3
