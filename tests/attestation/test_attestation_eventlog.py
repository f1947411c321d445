"""RTMR replay from recorded dstack event logs, including logs whose RTMR3 digests are missing."""

from __future__ import annotations

import json

import pytest

from veilnet.attestation import parse_event_log, parse_quote, verify_event_log
from veilnet.errors import VeilnetError

from .conftest import TESTDATA


def _load(name: str) -> dict[str, str]:
    data: dict[str, str] = json.loads((TESTDATA / "dstack" / name).read_text())
    return data


@pytest.mark.parametrize("name", ["quote-report.json", "tdx-lite-getquote.json"])
def test_rtmrs_replay(name: str) -> None:
    recorded = _load(name)
    quote = parse_quote(bytes.fromhex(recorded["quote"]))
    assert quote.report_data.hex() == recorded["report_data"]
    replayed = verify_event_log(quote, recorded["event_log"])
    assert replayed.rtmrs == (quote.rtmr0, quote.rtmr1, quote.rtmr2, quote.rtmr3)
    compose = replayed.event("compose-hash")
    app_id = replayed.event("app-id")
    assert compose is not None and len(compose) == 32
    assert app_id is not None and len(app_id) == 20
    assert replayed.event("no-such-event") is None


def test_missing_digests_are_recomputed() -> None:
    entries = parse_event_log(_load("tdx-lite-getquote.json")["event_log"])
    assert all(len(e.digest) == 48 for e in entries)


def test_tampered_event_log() -> None:
    recorded = _load("quote-report.json")
    quote = parse_quote(bytes.fromhex(recorded["quote"]))
    events = json.loads(recorded["event_log"])
    compose = next(e for e in events if e["event"] == "compose-hash")
    compose["event_payload"] = "00" * 32  # claims another compose hash, digest kept
    with pytest.raises(VeilnetError) as info:
        verify_event_log(quote, events)
    assert info.value.code == "attestation_event_log_invalid"
    compose["digest"] = ""  # recomputed digest then no longer replays to RTMR3
    with pytest.raises(VeilnetError) as info:
        verify_event_log(quote, events)
    assert "RTMR3" in info.value.message
    for bad in (
        "not json",
        "{}",
        json.dumps([{"imr": 9}]),
        json.dumps([{"imr": 0, "event_type": 1}]),
    ):
        with pytest.raises(VeilnetError) as info:
            parse_event_log(bad)
        assert info.value.code == "attestation_event_log_invalid"
