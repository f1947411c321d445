"""``veil bench chain --quick`` runs and reports its figures."""

from __future__ import annotations

import pytest

from veilnet.bench import run


@pytest.mark.slow
def test_bench_chain_quick() -> None:
    figures = run("chain", quick=True).figures
    assert figures["commands_per_s_embedded"] > 0
    assert "commands_per_s_anvil" in figures
    # a commitment post, and the one that forms the verdict and names the dissenter: within
    # the gas the Bus forwards to the Registry (400k) plus its own share
    assert 150_000 < figures["gas_state_commitment"] < figures["gas_state_commitment_verdict"]
    assert figures["gas_state_commitment_verdict"] < 450_000
    # a hybrid (post-quantum) encryption key fits in the gas the Bus forwards to the Registry
    assert 0 < figures["gas_worker_key_x25519"] < figures["gas_worker_key_hybrid"] < 400_000
