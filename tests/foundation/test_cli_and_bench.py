"""The ``veil`` entry point: version, help, error contract, and the bench framework."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from veilnet import __version__
from veilnet.bench import available, run
from veilnet.cli._main import cli


def test_version_and_help() -> None:
    runner = CliRunner()
    assert __version__ in runner.invoke(cli, ["--version"]).output
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "bench" in result.output


def test_bench_crypto_json_has_fixed_figures() -> None:
    result = CliRunner().invoke(cli, ["bench", "crypto", "--quick", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["bench"] == "crypto"
    assert {
        "hpke_seal_1k_us",
        "hpke_open_1k_us",
        "raw_aead_1k_us",
        "sign_per_s",
        "recover_per_s",
    } <= set(document["figures"])
    assert {"machine", "python", "versions", "params"} <= set(document["env"])


def test_unknown_bench_is_one_clear_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "veilnet.cli", "bench", "nope"], capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "unknown benchmark" in result.stderr
    assert "Traceback" not in result.stderr


def test_registry_lists_crypto() -> None:
    assert "crypto" in available()
    with pytest.raises(KeyError):
        run("no-such-bench")
