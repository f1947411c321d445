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
