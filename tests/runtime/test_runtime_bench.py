"""The runtime, rotation, load and state benchmarks run (quick sizes) and report their figures."""

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
    """``veil bench load``: each level's verified and plain figures, the capacity load, commands
    end to end, RSS."""
    figures = run("load", quick=True).figures
    for level in (1, 8, 32):
        for kind in ("verified", "plain"):
            assert figures[f"{kind}_per_s_c{level}"] > 0
            assert figures[f"{kind}_p99_ms_c{level}"] >= figures[f"{kind}_p50_ms_c{level}"]
            assert figures[f"{kind}_cpu_ms_c{level}"] > 0
            assert 0 <= figures[f"{kind}_cpu_ms_net_c{level}"] <= figures[f"{kind}_cpu_ms_c{level}"]
            assert figures[f"{kind}_client_cpu_ms_c{level}"] > 0
    # at 1 client the latencies come from the two kinds interleaved, the phases' beside them
    for kind in ("verified", "plain"):
        assert figures[f"{kind}_p99_ms_c1_phased"] >= figures[f"{kind}_p50_ms_c1_phased"] > 0
    ratio = figures["verified_p50_ms_c1"] / figures["plain_p50_ms_c1"]
    assert figures["overhead_x_c1"] == round(ratio, 2)
    assert figures["overhead_x_c1_phased"] > 0
    # the capacity load: every verified answer was checked (the bench fails otherwise)
    for kind in ("verified", "plain"):
        assert figures[f"capacity_{kind}_per_s_c32"] > 0
        assert figures[f"capacity_{kind}_p99_ms_c32"] >= figures[f"capacity_{kind}_p50_ms_c32"]
        assert figures[f"capacity_{kind}_cpu_ms_c32"] > 0
    assert figures["commands_per_s"] > 0 and figures["worker_rss_mib"] > 0
    assert figures["commands_offered_per_s"] == 8 * 8 / 0.25  # wallets x batch per block
    assert figures["command_p99_ms"] >= figures["command_p50_ms"] > 0
    assert figures["command_cpu_ms"] > 0 and figures["command_client_cpu_ms"] > 0
    # the names INTERFACES.md fixes
    for name in ("queries_per_s_1", "queries_per_s_8", "queries_per_s_32", "query_p50_ms"):
        assert figures[name] > 0
    assert figures["query_p99_ms_32"] == figures["verified_p99_ms_c32"]
    assert figures["worker_cpu_ms_per_query"] == figures["verified_cpu_ms_c32"]
    assert figures["plain_p50_ms"] > 0 and figures["worker_rss_mb"] > 0
    assert 0 <= figures["network_idle_cpu_fraction"] < 2


@pytest.mark.slow
def test_bench_state_quick() -> None:
    """``veil bench state``: each size's block apply, query, checkpoint and restore figures."""
    figures = run("state", quick=True).figures
    for label in ("2k", "8k"):
        for name in (
            "block_apply_ms",
            "query_p50_ms",
            "first_query_ms",
            "checkpoint_s",
            "restore_s",
        ):
            assert figures[f"{name}_{label}"] > 0
    assert figures["checkpoint_mib_8k"] > figures["checkpoint_mib_2k"]


@pytest.mark.slow
def test_bench_agents_quick() -> None:
    """``veil bench agents``: each count's block apply, commitment, query and checkpoint."""
    figures = run("agents", quick=True).figures
    for count in (5, 20):
        for name in ("block_apply_ms", "commitment_ms", "first_query_ms", "checkpoint_s"):
            assert figures[f"{name}_{count}"] > 0
    assert figures["deploy_ms_per_agent_20"] > 0
