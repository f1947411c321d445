"""``veil bench attest --quick`` runs and reports the figures INTERFACES.md fixes."""

from __future__ import annotations

import json

import pytest

from veilnet.bench import run
from veilnet.cli._main import main


def test_bench_attest_figures() -> None:
    result = run("attest", quick=True).to_json()
    figures = result["figures"]
    for name in ("verify_ms", "bare_dcap_qvl_ms", "dev_quote_ms"):
        assert figures[name] > 0
    assert result["env"]["versions"]["dcap-qvl"] == "0.7.0"


def test_bench_attest_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    main(["bench", "attest", "--quick", "--json"])
    document = json.loads(capsys.readouterr().out)
    assert document["bench"] == "attest"
    assert set(document["figures"]) >= {"verify_ms", "bare_dcap_qvl_ms", "dev_quote_ms"}
