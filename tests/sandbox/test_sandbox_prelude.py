"""The JavaScript prelude's contract with agents: ``ctx`` (absent while the module loads, frozen
in an entry point), ``emit`` (a copy as of the call, JSON values only) and host calls."""

from __future__ import annotations

from veilnet.sandbox import Context, Mode
from veilnet.sandbox._jsprelude import CTX_FIELDS
from veilnet.sandbox.testing import MemoryHost

AGENT = b"""
const atLoad = ctx;
export function query(req) {
  let frozen = false;
  try { ctx.caller = "0x00"; } catch (e) { frozen = e instanceof TypeError; }
  return { atLoad: atLoad, ctx: ctx, same: ctx === ctx, frozen: frozen, keys: Object.keys(ctx) };
}
export function handle(cmd) {
  if (cmd.emit === "function") { emit(function () {}); return null; }
  const event = { n: 1, list: [1, 2] };
  emit(event);
  event.n = 2;
  event.list.push(3);
  emit(event);
  emit();
  state.set("k", state.get("k") === null ? 1 : state.get("k") + 1);
  return state.keys("");
}
"""


def test_ctx_is_absent_at_load_and_frozen_in_an_entry_point(net: MemoryHost) -> None:
    net.deploy("a", "js", AGENT)
    done = net.run("a", "query", {}, caller="0x" + "ab" * 20, block_number=7)
    assert done.outcome.error is None, done.outcome.error
    assert done.result == {
        "atLoad": None,
        "ctx": {
            "caller": "0x" + "ab" * 20,
            "contract_id": "a",
            "block_number": 7,
            "block_timestamp": 1_700_000_000,
            "mode": "query",
            "depth": 0,
        },
        "same": True,
        "frozen": True,
        "keys": list(CTX_FIELDS),
    }


def test_the_ctx_fields_the_prelude_names_are_the_contexts() -> None:
    ctx = Context(caller="0x", contract_id="c", block_number=1, block_timestamp=2, mode=Mode.QUERY)
    assert tuple(ctx.to_json()) == CTX_FIELDS


def test_an_event_is_a_copy_as_of_its_emit(net: MemoryHost) -> None:
    net.deploy("a", "js", AGENT)
    done = net.run("a", "handle", {})
    assert done.outcome.error is None, done.outcome.error
    emitted = [event for _, event in done.events]
    assert emitted == [{"n": 1, "list": [1, 2]}, {"n": 2, "list": [1, 2, 3]}, None]
    assert done.result == ["k"]
    assert net.states["a"]["k"] == b"1"


def test_emitting_what_is_not_json_fails_the_call_and_keeps_nothing(net: MemoryHost) -> None:
    net.deploy("a", "js", AGENT)
    done = net.run("a", "handle", {"emit": "function"})
    assert done.outcome.error is not None
    assert done.outcome.error.code == "sandbox_agent_error"
    assert "emit takes a JSON value" in done.outcome.error.message
    assert done.events == [] and net.states["a"] == {}
