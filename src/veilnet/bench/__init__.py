"""The ``veil bench`` framework: named benchmarks, each measuring its own baseline in the same run.
Benchmarks register with ``@benchmark(NAME)`` and return figures; the framework adds ``env``."""

from veilnet.bench._registry import BenchResult, available, benchmark, run, timeit_per_call

__all__ = ["BenchResult", "available", "benchmark", "run", "timeit_per_call"]
