"""``veil bench inference --quick`` runs and reports the figure names INTERFACES.md fixes."""

from __future__ import annotations

import pytest

from veilnet.bench import run

from .inference_helpers import needs_llama

pytestmark = [pytest.mark.slow, needs_llama]


def test_quick_bench_reports_fixed_figures() -> None:
    result = run("inference", quick=True).to_json()
    figures = result["figures"]
    assert {"gateway_tokens_per_s", "direct_tokens_per_s", "overhead_pct"} <= set(figures)
    assert figures["gateway_tokens_per_s"] > 0
    assert figures["direct_tokens_per_s"] > 0
    assert result["env"]["params"]["max_tokens"] == 16
