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


@pytest.mark.slow
def test_bench_rollup_quick_meets_the_gas_targets() -> None:
    """Gas is deterministic: the issue's targets for a result on EVM hold (a fulfillment with
    the consumer's storage write at most 52k, ten in a batch at most 26k each)."""
    figures = run("rollup", quick=True).figures
    assert 0 < figures["fulfill_gas"] <= 52_000
    assert 0 < figures["fulfill_gas_batched_10"] <= 26_000
    assert figures["request_gas"] > 0 and figures["request_to_fulfill_s"] is None
    if "fulfill_gas_solidity" in figures:  # the Solidity twin, where solc-js is installed
        assert 0 < figures["fulfill_gas_solidity"] <= 52_000
        assert 0 < figures["fulfill_gas_batched_10_solidity"] <= 26_000
