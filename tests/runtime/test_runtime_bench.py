"""The runtime, rotation and load benchmarks run (quick sizes) and report their fixed figures."""

from __future__ import annotations

import pytest

from veilnet.bench import run


@pytest.mark.slow
def test_bench_runtime_quick() -> None:
    figures = run("runtime", quick=True).figures
    assert figures["replay_commands_per_s"] > 0
    assert {"full_replay_300_s", "restart_from_checkpoint_300_s"} <= set(figures)


@pytest.mark.slow
def test_bench_rotation_quick() -> None:
    figures = run("rotation", quick=True).figures
    assert figures["failed_calls"] == 0
    assert figures["rotation_blocks"] >= 1


@pytest.mark.slow
def test_bench_load_quick() -> None:
    """``veil bench load``: each level's verified and plain figures, commands end to end, RSS."""
    figures = run("load", quick=True).figures
    for level in (1, 8, 32):
        for kind in ("verified", "plain"):
            assert figures[f"{kind}_per_s_c{level}"] > 0
            assert figures[f"{kind}_p99_ms_c{level}"] >= figures[f"{kind}_p50_ms_c{level}"]
            assert figures[f"{kind}_cpu_ms_c{level}"] > 0
    assert figures["commands_per_s"] > 0 and figures["worker_rss_mib"] > 0
