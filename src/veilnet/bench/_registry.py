"""Registry and runner for named benchmarks; results are plain JSON-able figures.
Figure names for each bench are fixed by INTERFACES.md; benches may add more."""

from __future__ import annotations

import importlib
import importlib.util
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from veilnet._version import __version__

BenchFunction = Callable[[bool], dict[str, Any]]
"""Takes ``quick`` (smaller sizes, for tests) and returns ``{"figures": {...}, "params": {...}}``."""

_REGISTRY: dict[str, BenchFunction] = {}

# Modules that define benchmarks; imported lazily so ``veil --help`` stays fast.
_BENCH_MODULES = {
    "crypto": "veilnet.bench.crypto",
    "attest": "veilnet.bench.attest",
    "chain": "veilnet.bench.chain",
    "runtime": "veilnet.bench.runtime",
    "state": "veilnet.bench.state",
    "agents": "veilnet.bench.agents",
    "sandbox": "veilnet.bench.sandbox",
    "query": "veilnet.bench.query",
    "load": "veilnet.bench.load",
    "rotation": "veilnet.bench.rotation",
    "inference": "veilnet.bench.inference",
    "rollup": "veilnet.bench.rollup",
}

_VERSIONED_PACKAGES = (
    "cryptography",
    "coincurve",
    "dcap-qvl",
    "wasmtime",
    "pydantic-monty",
    "vyper",
)


@dataclass(frozen=True, slots=True)
class BenchResult:
    """One benchmark's output: ``{"bench", "figures", "env"}`` as INTERFACES.md fixes it."""

    bench: str
    figures: dict[str, Any]
    env: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"bench": self.bench, "figures": self.figures, "env": self.env}


def benchmark(name: str) -> Callable[[BenchFunction], BenchFunction]:
    """Register ``fn`` as the benchmark ``name``."""

    def register(fn: BenchFunction) -> BenchFunction:
        _REGISTRY[name] = fn
        return fn

    return register


def available() -> list[str]:
    """Names of the benchmarks whose modules exist in this build."""
    names = []
    for name, module in _BENCH_MODULES.items():
        if importlib.util.find_spec(module) is not None:
            names.append(name)
    return names


def _environment(params: dict[str, Any]) -> dict[str, Any]:
    versions = {}
    for package in _VERSIONED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return {
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpus": _cpu_count(),
        "python": sys.version.split()[0],
        "veilnet": __version__,
        "versions": versions,
        "params": params,
    }


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run(name: str, *, quick: bool = False) -> BenchResult:
    """Run one benchmark by name. Raises KeyError for unknown names."""
    module = _BENCH_MODULES.get(name)
    if module is None:
        raise KeyError(name)
    importlib.import_module(module)
    output = _REGISTRY[name](quick)
    return BenchResult(
        bench=name, figures=output["figures"], env=_environment(output.get("params", {}))
    )


def timeit_per_call(
    fn: Callable[[], object], *, min_time: float = 0.3, max_calls: int = 10**6
) -> float:
    """Seconds per call of ``fn``, best of three rounds sized to last about ``min_time`` each."""
    calls = 1
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_time / 4 or calls >= max_calls:
            break
        calls *= 4
    best = elapsed / calls
    for _ in range(2):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - start) / calls)
    return best
