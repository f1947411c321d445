"""``veil abi``: the packaged ABIs, for DApps that talk to the contracts with web3 directly."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from veilnet.chain.artifacts import CONTRACT_NAMES, load_artifact
from veilnet.cli.abi import abi


def test_abi_prints_one_contract_and_writes_all(tmp_path: Path) -> None:
    shown = CliRunner().invoke(abi, ["bus"])
    assert shown.exit_code == 0, shown.output
    functions = {entry.get("name") for entry in json.loads(shown.stdout)}
    assert {"set_egress", "push_command", "request", "EgressHostSet"} <= functions
    written = CliRunner().invoke(abi, ["--out", str(tmp_path / "abi")])
    assert written.exit_code == 0, written.output
    for name in CONTRACT_NAMES:
        written_abi = json.loads((tmp_path / "abi" / f"{name}.json").read_text())
        assert written_abi == list(load_artifact(name).abi)
    assert CliRunner().invoke(abi, ["Nope"]).exit_code == 2
    assert CliRunner().invoke(abi, []).exit_code == 2
