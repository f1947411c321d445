"""Fixtures for enclave-core tests: one agent engine per session, bootstrapped networks."""

from __future__ import annotations

from pathlib import Path

import pytest

from veilnet.crypto import SecretKey
from veilnet.protocol.outcomes import OutcomeRecord
from veilnet.testing import Network

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "agents"
OWNER = SecretKey.derive(b"\x77" * 32, "owner")
ALICE = SecretKey.derive(b"\x77" * 32, "alice")
MALLORY = SecretKey.derive(b"\x77" * 32, "mallory")


@pytest.fixture
def counter(network: Network) -> bytes:
    return network.deploy(OWNER, "py", (EXAMPLES / "counter.py").read_bytes(), init={"start": 0})


def outcomes(network: Network, contract_id: bytes, worker: str = "w1") -> dict[int, OutcomeRecord]:
    return network.cores[worker].runtimes[contract_id].outcomes


def counted(net: Network) -> bytes:
    """A counter agent in cluster c1, at count 1 after one command of ALICE (nonce 1)."""
    contract = net.deploy(OWNER, "py", (EXAMPLES / "counter.py").read_bytes(), init={"start": 0})
    net.command(ALICE, contract, {"by": 1}, nonce=1)
    net.settle()
    return contract
