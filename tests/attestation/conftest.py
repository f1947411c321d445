"""Fixtures for attestation and TEE tests: the in-repo quote vectors, pinned times, dev enclaves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from veilnet.attestation import Collateral, read_quote
from veilnet.tee import DevEnclave

ISSUED_AT = 1_767_225_600  # 2026-01-01T00:00:00Z
AT = ISSUED_AT + 3600
SEED = b"veilnet test network seed, 32+ bytes long"
OTHER_SEED = b"another network seed, also 32+ bytes long"

# In the repository (tests/data/attestation/README.md names each file's public source): a missing
# file is an error, never a skip.
TESTDATA = Path(__file__).resolve().parents[1] / "data" / "attestation"
EXPECTED: dict[str, dict[str, Any]] = json.loads((TESTDATA / "expected.json").read_text())


def load_quote(name: str) -> bytes:
    return read_quote((TESTDATA / name).read_bytes())


def load_collateral(name: str) -> Collateral:
    return Collateral.from_json((TESTDATA / name).read_bytes())


@pytest.fixture(scope="session")
def dev_tdx() -> DevEnclave:
    return DevEnclave(SEED, kind="tdx", allow_insecure_dev_tee=True, collateral_issued_at=ISSUED_AT)


@pytest.fixture(scope="session")
def dev_sgx() -> DevEnclave:
    return DevEnclave(SEED, kind="sgx", allow_insecure_dev_tee=True, collateral_issued_at=ISSUED_AT)
