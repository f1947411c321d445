"""Determinism: fresh runtimes and separate worker processes give identical results, events,
fuel and state digests for every example in both languages."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from veilnet.sandbox import AgentRuntime

_SHARED = runpy.run_path(str(Path(__file__).with_name("scenario_runner.py")))
EXAMPLES = _SHARED["EXAMPLES"]
TEST_LIMITS = _SHARED["TEST_LIMITS"]

HERE = Path(__file__).resolve().parent
RUNNER = runpy.run_path(str(HERE / "scenario_runner.py"))


def test_two_fresh_sandboxes_agree(language: str) -> None:
    with (
        AgentRuntime(default_limits=TEST_LIMITS) as first,
        AgentRuntime(default_limits=TEST_LIMITS) as second,
    ):
        a = RUNNER["run_all"](first, language)
        b = RUNNER["run_all"](second, language)
    assert a == b


def test_warm_and_fresh_instances_agree(runtime: AgentRuntime, language: str) -> None:
    # The session runtime has served many calls; a fresh one must still agree byte for byte.
    warm = RUNNER["run_all"](runtime, language)
    with AgentRuntime(default_limits=TEST_LIMITS) as fresh:
        assert RUNNER["run_all"](fresh, language) == warm


@pytest.mark.slow
def test_two_worker_processes_agree(language: str) -> None:
    outputs = []
    for hash_seed in ("1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        proc = subprocess.run(
            [sys.executable, str(HERE / "scenario_runner.py"), language],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=True,
        )
        outputs.append(json.loads(proc.stdout))
    assert outputs[0] == outputs[1]
    assert all(step["fuel"] > 0 for ex in outputs[0].values() for step in ex["steps"])
