"""Shared fixtures for attestation and TEE tests: test data location, pinned times, dev enclaves."""

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


def testdata_dir() -> Path:
    """``shared/testdata/attestation``, found by walking up from the repository root."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "shared" / "testdata" / "attestation"
        if candidate.is_dir():
            return candidate
        sibling = parent.parent / "shared" / "testdata" / "attestation"
        if (parent / "pyproject.toml").exists() and sibling.is_dir():
            return sibling
    pytest.skip("shared/testdata/attestation not found")
    raise AssertionError  # unreachable


TESTDATA = testdata_dir()
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
