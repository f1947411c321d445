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

from veilnet.sandbox import AgentRuntime, Context, Mode

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


def _command_context(contract_id: str) -> Context:
    """A command's context at block 1, for the tests that drive the JS engine directly."""
    return Context(
        caller="0x" + "11" * 20,
        contract_id=contract_id,
        block_number=1,
        block_timestamp=1_700_000_000,
        mode=Mode.COMMAND,
    )


def test_a_js_restore_gives_back_the_clean_image_byte_for_byte(runtime: AgentRuntime) -> None:
    """Every JS invocation starts from the agent's clean memory: the zero stack a deep call
    dirtied is cleared and the rest copied back, so the guest memory equals what compile
    captured, whatever ran before (a stale stack would be read by nothing in the spec, and by
    anything that reads uninitialized memory)."""
    from veilnet.sandbox import Entry
    from veilnet.sandbox.testing import MemoryHost, _ContractHost, _Journal

    net = MemoryHost(runtime, limits=TEST_LIMITS)
    source = (
        b"function deep(n) { const a = [n, n + 1, n + 2]; return n ? deep(n - 1) + a[1] : 0; }\n"
        b"export function handle(m) { return deep(m.n); }\n"
    )
    loaded = net.deploy("deep", "js", source)
    ctx = _command_context("deep")
    outcome = runtime.invoke(
        loaded, Entry.HANDLE, {"n": 40}, _ContractHost(net, _Journal(), ctx), ctx
    )
    assert outcome.error is None and outcome.result == sum(range(2, 42))
    agent = loaded._compiled
    engine = runtime._js
    assert engine is not None and agent.zeros > 0  # the shadow stack is all zero when clean
    clean = bytes(agent.zeros) + agent.image
    warm = agent.warm
    assert warm is not None and warm.size() == len(clean)
    assert warm.read(0, agent.zeros) != bytes(agent.zeros)  # the deep call used the stack
    assert engine._restore(agent) is warm  # restored in place, not a fresh instance
    assert warm.read(0, len(clean)) == clean


def test_a_js_restore_whose_fresh_pages_are_refused_takes_a_new_instance(
    runtime: AgentRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The zero stack is cleared by mapping fresh pages over it. Where the kernel refuses
    (out of memory) the range may be unmapped already: the instance is dropped, never
    touched again, and a new one gets the clean image."""
    from veilnet.sandbox import Entry, _js
    from veilnet.sandbox.testing import MemoryHost, _ContractHost, _Journal

    net = MemoryHost(runtime, limits=TEST_LIMITS)
    loaded = net.deploy("c", "js", b"export function handle(m) { return m.n + 1; }\n")
    ctx = _command_context("c")
    host = _ContractHost(net, _Journal(), ctx)
    assert runtime.invoke(loaded, Entry.HANDLE, {"n": 1}, host, ctx).result == 2
    agent = loaded._compiled
    engine = runtime._js
    assert engine is not None
    before = agent.warm
    assert before is not None
    refused: list[int] = []
    real = _js._zero

    def refuse_once(address: int, length: int) -> bool:
        if not refused:
            refused.append(address)
            return False
        return real(address, length)

    monkeypatch.setattr(_js, "_zero", refuse_once)
    assert runtime.invoke(loaded, Entry.HANDLE, {"n": 2}, host, ctx).result == 3
    assert refused and agent.warm is not None and agent.warm is not before
    monkeypatch.setattr(_js, "_zero", real)
    clean = bytes(agent.zeros) + agent.image
    restored = engine._restore(agent)
    assert restored.read(0, len(clean)) == clean


def test_zeroing_guest_memory_off_page_boundaries_falls_back_to_a_memset() -> None:
    """Fresh pages only replace whole host pages; any other range is cleared in place."""
    import ctypes
    import mmap

    from veilnet.sandbox import _js

    region = mmap.mmap(-1, 3 * mmap.PAGESIZE)
    region.write(b"\xff" * len(region))
    base = ctypes.addressof(ctypes.c_char.from_buffer(region))
    assert _js._zero(base + 1, mmap.PAGESIZE)  # not page-aligned: a memset
    assert _js._zero(base + mmap.PAGESIZE, mmap.PAGESIZE)  # whole pages: mapped fresh
    region.seek(0)
    data = region.read(len(region))
    assert data[0] == 0xFF and data[1 : 2 * mmap.PAGESIZE] == bytes(2 * mmap.PAGESIZE - 1)
    assert data[2 * mmap.PAGESIZE :] == b"\xff" * mmap.PAGESIZE


def test_another_threads_host_exception_never_decides_a_js_outcome(
    runtime: AgentRuntime,
) -> None:
    """wasmtime-py keeps the exception a host import raised in one global for the whole
    process. An agent that traps (here: out of fuel) while another thread's import exception
    sits there must still fail for its own reason, as on every other replica."""
    import wasmtime._func

    from veilnet.sandbox import Entry
    from veilnet.sandbox.errors import SandboxMemoryLimit
    from veilnet.sandbox.testing import MemoryHost, _ContractHost, _Journal

    net = MemoryHost(runtime, limits=TEST_LIMITS)
    loaded = net.deploy("spin", "js", b"export function handle(m) { for (;;) {} }\n")
    ctx = _command_context("spin")
    host = _ContractHost(net, _Journal(), ctx)
    foreign = SandboxMemoryLimit("raised by another thread's import")
    wasmtime._func.LAST_EXCEPTION = foreign
    try:
        outcome = runtime.invoke(loaded, Entry.HANDLE, {}, host, ctx)
    finally:
        if wasmtime._func.LAST_EXCEPTION is foreign:
            wasmtime._func.LAST_EXCEPTION = None
    assert outcome.error is not None and outcome.error.code == "sandbox_out_of_fuel"
