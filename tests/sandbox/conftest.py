"""Fixtures of the sandbox tests: one AgentRuntime per session, examples, an in-memory host."""

from __future__ import annotations

import runpy
from collections.abc import Iterator
from pathlib import Path

import pytest

from veilnet.sandbox import AgentRuntime
from veilnet.sandbox.testing import MemoryHost

TEST_LIMITS = runpy.run_path(str(Path(__file__).with_name("scenario_runner.py")))["TEST_LIMITS"]


@pytest.fixture(scope="session")
def runtime() -> Iterator[AgentRuntime]:
    with AgentRuntime(default_limits=TEST_LIMITS) as rt:
        yield rt


@pytest.fixture
def net(runtime: AgentRuntime) -> MemoryHost:
    return MemoryHost(runtime, limits=TEST_LIMITS)


@pytest.fixture(params=["js", "py"])
def language(request: pytest.FixtureRequest) -> str:
    return str(request.param)
