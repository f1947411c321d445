"""The CI rule for prerequisites: locally a missing tool skips the tests that need it; under
CI=true it fails them, and no other skip gets through unless the test is marked ``ci_may_skip``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from veilnet.testing import _ci, is_ci, require_tool

DOCS = Path(__file__).resolve().parents[2] / "docs" / "dependencies.md"
REAL_TOOLS = sorted(_ci.TOOLS)
ABSENT = _ci.Tool(name="absent-tool", is_present=lambda: False, install="never installed")
PRESENT = _ci.Tool(name="present-tool", is_present=lambda: True, install="always there")

SUITE = """
import pytest
from veilnet.testing import require_tool

@pytest.mark.requires_tool("absent-tool")
def test_marked():
    pass

def test_called():
    require_tool("absent-tool")

def test_bare_skip():
    pytest.skip("something else is missing")

@pytest.mark.skipif(True, reason="a condition nobody checked")
def test_skipif():
    pass

@pytest.mark.ci_may_skip("not about a tool")
def test_allowed():
    pytest.skip("another platform")

@pytest.mark.xfail(reason="known", strict=True)
def test_xfail():
    raise AssertionError

@pytest.mark.requires_tool("present-tool")
def test_present():
    pass
"""

MODULE_SKIP = """
import pytest
pytest.importorskip("veilnet_no_such_module")

def test_never_collected():
    pass
"""


@pytest.fixture
def fake_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(_ci.TOOLS, ABSENT.name, ABSENT)
    monkeypatch.setitem(_ci.TOOLS, PRESENT.name, PRESENT)


def _run(pytester: pytest.Pytester, source: str) -> pytest.RunResult:
    # The inner session loads this suite's own conftest, so it is the real mechanism under test.
    pytester.makeconftest("pytest_plugins = ('tests.conftest',)")
    pytester.makepyfile(source)
    # no:faulthandler: an in-process run would enable faulthandler again, on top of wasmtime's
    # signal handlers, and a later wasm trap (stack overflow) in this process would then crash.
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:faulthandler")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("TRUE", True), ("1", True), ("yes", True), ("", False), ("false", False)],
)
def test_is_ci_reads_the_ci_variable(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: bool
) -> None:
    monkeypatch.setenv("CI", value)
    assert is_ci() is expected


def test_is_ci_is_false_without_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    assert not is_ci()


@pytest.mark.usefixtures("fake_tools")
def test_a_missing_tool_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"^absent-tool is not installed \(never"):
        require_tool("present-tool", "absent-tool")


@pytest.mark.usefixtures("fake_tools")
def test_a_missing_tool_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"absent-tool is not installed .*CI=true"):
        require_tool("absent-tool")


@pytest.mark.usefixtures("fake_tools")
def test_present_tools_pass_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    require_tool("present-tool")
    assert _ci.missing_tools("present-tool", "absent-tool") == ["absent-tool"]


def test_an_unknown_tool_is_a_caller_bug() -> None:
    with pytest.raises(ValueError, match="unknown tools \\['anvill'\\]"):
        require_tool("anvill")


def test_every_tool_is_documented_under_what_ci_requires() -> None:
    section = DOCS.read_text().split("## What CI requires", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([a-z_0-9]+)` \|", section, flags=re.MULTILINE))
    assert documented == set(REAL_TOOLS)


@pytest.mark.usefixtures("fake_tools")
def test_locally_missing_tools_and_bare_skips_skip(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    _run(pytester, SUITE).assert_outcomes(passed=1, skipped=5, xfailed=1)


@pytest.mark.usefixtures("fake_tools")
def test_under_ci_every_skip_fails_except_ci_may_skip(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    result = _run(pytester, SUITE)
    # The marker and skipif act in setup (errors); the calls in the test body fail it.
    result.assert_outcomes(passed=1, skipped=1, xfailed=1, failed=2, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*absent-tool is not installed (never installed); under CI=true every tool is required*",
            "*skipped under CI=true, which runs every test: something else is missing*",
            "*skipped under CI=true, which runs every test: a condition nobody checked*",
        ]
    )


def test_a_module_level_skip_fails_collection_under_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    _run(pytester, MODULE_SKIP).assert_outcomes(skipped=1)
    monkeypatch.setenv("CI", "true")
    result = _run(pytester, MODULE_SKIP)
    result.assert_outcomes(errors=1)
    assert result.ret != pytest.ExitCode.OK
