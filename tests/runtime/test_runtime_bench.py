"""The runtime and rotation benchmarks run (quick sizes) and report their fixed figure names."""

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
