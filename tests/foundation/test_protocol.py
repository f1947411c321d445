"""The wire-protocol package: TEE kinds refuse unknown values, outcomes round-trip exactly, and
the core stays split into modules a reader can take in one sitting."""

from __future__ import annotations

from pathlib import Path

import pytest

from veilnet.protocol import OutcomeRecord, TEEKind

RUNTIME = Path(__file__).resolve().parents[2] / "src" / "veilnet" / "runtime"
MAX_RUNTIME_MODULE_LINES = 600


@pytest.mark.parametrize(("given", "kind"), [("dev", 0), ("tdx", 1), ("SGX", 2), (1, 1)])
def test_tee_kinds_parse(given: str | int, kind: int) -> None:
    assert TEEKind.parse(given) == kind


@pytest.mark.parametrize("given", ["sev", "", "unknown", 3, -1])
def test_unknown_tee_kinds_are_refused_not_read_as_dev(given: str | int) -> None:
    with pytest.raises(ValueError):
        TEEKind.parse(given)


@pytest.mark.parametrize(
    "outcome",
    [
        OutcomeRecord.success(sender=b"\x01" * 20, result={"n": 1}, events=[{"t": "x"}], fuel=7),
        OutcomeRecord.success(sender=None, result=None, events=(), fuel=0),
        OutcomeRecord.failure(
            "runtime_command_replayed", "nonce already used", sender=b"\x02" * 20
        ),
    ],
)
def test_outcomes_round_trip_and_hide_the_sender(outcome: OutcomeRecord) -> None:
    assert OutcomeRecord.from_bytes(outcome.to_bytes()) == outcome
    public = outcome.to_public()
    assert "sender" not in public
    assert set(public) == (
        {"ok", "result", "events", "fuel"} if outcome.ok else {"ok", "error", "events", "fuel"}
    )


def test_no_runtime_module_is_longer_than_a_reader_can_follow() -> None:
    lengths = {p.name: len(p.read_text().splitlines()) for p in RUNTIME.glob("*.py")}
    assert len(lengths) >= 10, "the core is split into one module per system"
    too_long = {name: n for name, n in lengths.items() if n > MAX_RUNTIME_MODULE_LINES}
    assert not too_long, f"runtime modules over {MAX_RUNTIME_MODULE_LINES} lines: {too_long}"


def test_calls_and_results_cross_the_enclave_boundary_in_their_own_layout() -> None:
    """Every call and reply crosses in a fixed layout (tag, op, body), the bytes copied once;
    other frames stay canonical records, and a call or result in the record layout is
    refused, so each value has one encoding."""
    from veilnet.codec import CodecError, encode_record
    from veilnet.protocol import enclave as wire

    call = wire.Call(op="query", body=b"\x00\xc1 request")
    assert call.to_bytes() == b"\xc1\x05query\x00\xc1 request"
    assert wire.decode_frame(call.to_bytes()) == call
    assert wire.Call.from_bytes(call.to_bytes()) == call
    result = wire.Result(body=b"answer")
    assert result.to_bytes() == b"\xc2answer"
    assert wire.decode_frame(result.to_bytes()) == result
    assert wire.decode_frame(wire.Result(body=b"").to_bytes()) == wire.Result(body=b"")
    failure = wire.Failure(code="x_y", message="m")
    assert wire.decode_frame(failure.to_bytes()) == failure
    for legacy in (encode_record(call), encode_record(result)):
        with pytest.raises(CodecError):
            wire.decode_frame(legacy)
    with pytest.raises(CodecError):
        wire.Call.from_bytes(b"\xc1\x06query")  # the op runs past the end
    with pytest.raises(CodecError):
        wire.Result.from_bytes(call.to_bytes())
    with pytest.raises(CodecError):
        wire.Call.from_bytes(call.to_bytes(), max_size=8)
    with pytest.raises(wire.FrameInvalid):
        wire.Call(op="x" * 256, body=b"").to_bytes()
