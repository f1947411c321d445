"""``veil bench sandbox`` runs (quick) and reports the fixed figure names."""

from __future__ import annotations

from veilnet.bench import run


def test_bench_sandbox_quick() -> None:
    result = run("sandbox", quick=True).to_json()
    figures = result["figures"]
    for name in ("js_call_us", "py_call_us", "native_call_us"):
        assert figures[name] > 0
    assert result["env"]["params"]["host_calls"] == 3
