"""``veil bench sandbox``: calls per second of JS (QuickJS-in-wasm) and Python (Monty) agents,
beside the same function run natively in Python in the same run."""

from __future__ import annotations

from typing import Any

from veilnet.bench import benchmark, timeit_per_call
from veilnet.sandbox import AgentRuntime, Context, Entry, Limits, Mode
from veilnet.sandbox.testing import MemoryHost

_JS = b"""
export function trivial(x) { return x; }
export function handle(msg) {
  const a = state.get("a"), b = state.get("b"), r = random();
  const items = msg.items.map((it) => ({ id: it.id, name: it.name, score: it.score + a + b }));
  return { items: items, total: items.length, r: r > 2 };
}
export const query = trivial;
"""

_PY = b"""
def query(x):
    return x


def handle(msg):
    a = state.get("a")
    b = state.get("b")
    r = random()
    items = [{"id": it["id"], "name": it["name"], "score": it["score"] + a + b} for it in msg["items"]]
    return {"items": items, "total": len(items), "r": r > 2}
"""


_COMPUTE = """
def work(n):
    total = 0
    seen = {}
    words = []
    for i in range(n):
        total = (total * 31 + i * i) % 1000003
        key = "k" + str(i % 97)
        seen[key] = seen.get(key, 0) + 1
        if i % 7 == 0:
            words.append(key)
    ordered = sorted(words, key=lambda w: (len(w), w))
    return [total, len(seen), ordered[:3], ",".join(ordered[-3:])]
"""
"""An honest compute-bound agent function: arithmetic, dicts, strings, a sort."""


def _metering_figures(runtime: AgentRuntime, net: MemoryHost, min_time: float) -> dict[str, Any]:
    """The cost of metering on honest code: the same function in the sandbox and in a raw Monty
    session without the rewrite, in the same run."""
    import pydantic_monty as monty

    call = Context(
        caller="0x" + "11" * 20, contract_id="m", block_number=1,
        block_timestamp=1_700_000_000, mode=Mode.QUERY,
    )  # fmt: skip
    from veilnet.sandbox.testing import _ContractHost, _Journal

    agent = net.deploy("m", "py", (_COMPUTE + "\ndef query(n):\n    return work(n)\n").encode())
    host = _ContractHost(net, _Journal(), call)
    metered = runtime.invoke(agent, Entry.QUERY, 5000, host, call)
    if metered.error is not None:
        raise RuntimeError(f"bench agent failed: {metered.error}")
    with (
        monty.Monty(min_processes=1, max_processes=1) as pool,
        pool.checkout(script_name="raw.py") as session,
    ):
        session.feed_run(_COMPUTE)

        def raw() -> None:
            session.feed_run("work(5000)")

        raw_ms = timeit_per_call(raw, min_time=min_time) * 1e3
    metered_ms = (
        timeit_per_call(
            lambda: runtime.invoke(agent, Entry.QUERY, 5000, host, call), min_time=min_time
        )
        * 1e3
    )
    return {
        "py_compute_metered_ms": metered_ms,
        "py_compute_raw_ms": raw_ms,
        "py_metering_ratio": metered_ms / raw_ms,
        "py_compute_fuel": metered.fuel_used,
    }


def _hostile_figures(runtime: AgentRuntime, limits: Limits, quick: bool) -> dict[str, Any]:
    """Seconds each interpreter takes to stop the worst agent of the hostile corpus under the
    default limits, against the wall-clock backstop (under 1, commands would be run twice)."""
    import time

    from veilnet.testing.hostile import HOSTILE, hostile_agent

    cases = sorted(HOSTILE)[:3] if quick else sorted(HOSTILE)
    figures: dict[str, Any] = {}
    for lang in ("js", "py"):
        net = MemoryHost(runtime, limits=limits)
        worst, worst_case = 0.0, ""
        for case in cases:
            js, py, _, _ = HOSTILE[case]
            net.deploy(case, lang, hostile_agent(lang, js if lang == "js" else py))
            start = time.perf_counter()
            net.run(case, "handle", {})
            took = time.perf_counter() - start
            if took > worst:
                worst, worst_case = took, case
        figures[f"{lang}_hostile_worst_s"] = worst
        figures[f"{lang}_hostile_worst_case"] = worst_case
        figures[f"{lang}_backstop_margin"] = limits.wall_clock_s / worst
    figures["hostile_cases"] = len(cases)
    return figures


def _native(host: Any, msg: dict[str, Any]) -> dict[str, Any]:
    import json

    a = json.loads(host.state_get("a"))
    b = json.loads(host.state_get("b"))
    r = int.from_bytes(host.random_bytes(8), "big") / 2**64
    items = [
        {"id": it["id"], "name": it["name"], "score": it["score"] + a + b} for it in msg["items"]
    ]
    return {"items": items, "total": len(items), "r": r > 2}


def _payload() -> dict[str, Any]:
    # About 1 KiB of canonical JSON.
    return {
        "items": [{"id": i, "name": f"item-{i:04d}-abcdefghij", "score": i * 3} for i in range(20)]
    }


@benchmark("sandbox")
def _bench(quick: bool) -> dict[str, Any]:
    import json

    min_time = 0.05 if quick else 0.5
    limits = Limits()
    figures: dict[str, Any] = {}
    payload = _payload()
    with AgentRuntime(default_limits=limits) as runtime:
        net = MemoryHost(runtime, limits=limits)
        for lang, code in (("js", _JS), ("py", _PY)):
            agent = net.deploy(lang, lang, code)
            net.states[lang].update({"a": b"1", "b": b"2"})
            cmd = Context(
                caller="0x" + "11" * 20, contract_id=lang, block_number=1,
                block_timestamp=1_700_000_000, mode=Mode.COMMAND,
            )  # fmt: skip
            qry = Context(
                caller="0x" + "11" * 20, contract_id=lang, block_number=1,
                block_timestamp=1_700_000_000, mode=Mode.QUERY,
            )  # fmt: skip
            from veilnet.sandbox.testing import _ContractHost, _Journal

            host = _ContractHost(net, _Journal(), cmd)
            qhost = _ContractHost(net, _Journal(), qry)
            out = runtime.invoke(agent, Entry.HANDLE, payload, host, cmd)
            if out.error is not None or out.host_calls != 3:
                raise RuntimeError(f"bench agent failed: {out.error}")

            def call(agent: Any = agent, host: Any = host, ctx: Context = cmd) -> None:
                runtime.invoke(agent, Entry.HANDLE, payload, host, ctx)

            def trivial(agent: Any = agent, host: Any = qhost, ctx: Context = qry) -> None:
                runtime.invoke(agent, Entry.QUERY, 1, host, ctx)

            figures[f"{lang}_call_us"] = timeit_per_call(call, min_time=min_time) * 1e6
            figures[f"{lang}_trivial_us"] = timeit_per_call(trivial, min_time=min_time) * 1e6
            figures[f"{lang}_fuel_per_call"] = out.fuel_used
        host = _ContractHost(net, _Journal(), cmd)

        def native() -> None:
            text = json.dumps(payload)
            json.dumps(_native(host, json.loads(text)))

        figures.update(_metering_figures(runtime, net, min_time))
        figures.update(_hostile_figures(runtime, limits, quick))
        figures["native_call_us"] = timeit_per_call(native, min_time=min_time) * 1e6
        figures["native_trivial_us"] = (
            timeit_per_call(lambda: json.dumps(json.loads("1")), min_time=min_time) * 1e6
        )
    for key in ("js", "py"):
        figures[f"{key}_calls_per_s"] = 1e6 / figures[f"{key}_call_us"]
    return {
        "figures": figures,
        "params": {
            "payload_bytes": len(json.dumps(payload, separators=(",", ":"))),
            "host_calls": 3,
            "quick": quick,
            "native": "same function in CPython with json encode/decode at the boundary",
        },
    }
