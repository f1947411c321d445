"""Suite-wide pytest configuration: hypothesis profile, paths to shared test data.
Area-specific fixtures live in each tests/<area>/conftest.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

REPO_ROOT = Path(__file__).resolve().parents[1]

settings.register_profile(
    "veilnet",
    derandomize=True,
    deadline=None,
    max_examples=int(os.environ.get("VEIL_HYPOTHESIS_EXAMPLES", "150")),
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)
settings.load_profile("veilnet")


def _find_shared() -> Path:
    for base in (REPO_ROOT, *REPO_ROOT.parents):
        candidate = base / "shared" / "testdata"
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("shared/testdata not found next to the repository")


@pytest.fixture(scope="session")
def shared_testdata() -> Path:
    """The read-only shared test data folder (attestation quotes and collateral)."""
    return _find_shared()


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    return REPO_ROOT / "tests" / "vectors"
