"""``veil bench chain --quick`` runs and reports both fixed figures."""

from __future__ import annotations

import pytest

from veilnet.bench import run


@pytest.mark.slow
def test_bench_chain_quick() -> None:
    figures = run("chain", quick=True).figures
    assert figures["commands_per_s_embedded"] > 0
    assert "commands_per_s_anvil" in figures
