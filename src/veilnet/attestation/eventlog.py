"""dstack event logs: parse, recompute missing runtime digests, replay RTMR0-3 (SHA-384 extend).
A verifier checks the replayed RTMRs against the quote, then reads RTMR3 entries such as
``compose-hash`` and ``app-id``, which are trustworthy only after that check passes."""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
from dataclasses import dataclass
from typing import Any, Final

from veilnet.attestation._quote import ParsedQuote, TEEKind
from veilnet.attestation.constants import (
    MAX_EVENT_LOG_ENTRIES,
    MAX_EVENT_LOG_SIZE,
    MR_TDX_LENGTH,
)
from veilnet.attestation.errors import EventLogInvalid

__all__ = [
    "DSTACK_RUNTIME_EVENT_TYPE",
    "EventLogEntry",
    "ReplayedEventLog",
    "parse_event_log",
    "replay_rtmrs",
    "runtime_event_digest",
    "verify_event_log",
]

DSTACK_RUNTIME_EVENT_TYPE: Final = 0x08000001
"""Event type dstack uses for application events extended into RTMR3."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EventLogEntry:
    imr: int
    event_type: int
    digest: bytes
    event: str
    event_payload: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayedEventLog:
    """RTMRs replayed from a log that matched the quote, and the RTMR3 runtime events."""

    rtmrs: tuple[bytes, bytes, bytes, bytes]
    runtime_events: tuple[tuple[str, bytes], ...]

    def event(self, name: str) -> bytes | None:
        """Payload of the last runtime event called ``name`` (e.g. ``compose-hash``)."""
        found = None
        for event_name, payload in self.runtime_events:
            if event_name == name:
                found = payload
        return found


def runtime_event_digest(event_type: int, event: str, payload: bytes) -> bytes:
    """dstack's RTMR3 digest: ``SHA-384(u32le(event_type) ‖ ":" ‖ event ‖ ":" ‖ payload)``."""
    return hashlib.sha384(
        struct.pack("<I", event_type) + b":" + event.encode() + b":" + payload
    ).digest()


def _hex(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise EventLogInvalid(f"{what} must be a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError as exc:
        raise EventLogInvalid(f"{what} is not hex") from exc


def parse_event_log(data: str | bytes | list[Any]) -> tuple[EventLogEntry, ...]:
    """Parse a dstack event log (JSON text or already-decoded list).

    RTMR3 runtime events must carry a digest equal to ``runtime_event_digest``; a missing one
    is recomputed. Other events must carry their digest.

    Raises:
        EventLogInvalid: not a list of well-formed events, too large, or a wrong digest.
    """
    if isinstance(data, str | bytes):
        if len(data) > MAX_EVENT_LOG_SIZE:
            raise EventLogInvalid("event log is too large")
        try:
            data = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise EventLogInvalid("event log is not JSON") from exc
    if not isinstance(data, list):
        raise EventLogInvalid("event log must be a JSON list")
    if len(data) > MAX_EVENT_LOG_ENTRIES:
        raise EventLogInvalid("event log has too many entries")
    entries = []
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            raise EventLogInvalid(f"event {index} is not an object")
        imr, event_type, event = item.get("imr"), item.get("event_type"), item.get("event", "")
        if not isinstance(imr, int) or isinstance(imr, bool) or not 0 <= imr <= 3:
            raise EventLogInvalid(f"event {index} has no imr in 0..3")
        if not isinstance(event_type, int) or not 0 <= event_type < 2**32:
            raise EventLogInvalid(f"event {index} has no 32-bit event_type")
        if not isinstance(event, str):
            raise EventLogInvalid(f"event {index} name must be a string")
        payload = _hex(item.get("event_payload", ""), f"event {index} payload")
        digest = _hex(item.get("digest", ""), f"event {index} digest")
        runtime = imr == 3 and event_type == DSTACK_RUNTIME_EVENT_TYPE
        if runtime:
            computed = runtime_event_digest(event_type, event, payload)
            if digest and not hmac.compare_digest(digest, computed):
                raise EventLogInvalid(f"event {index} ({event}) digest does not match its payload")
            digest = computed
        elif len(digest) != MR_TDX_LENGTH:
            raise EventLogInvalid(f"event {index} has no 48-byte digest")
        entries.append(
            EventLogEntry(
                imr=imr, event_type=event_type, digest=digest, event=event, event_payload=payload
            )
        )
    return tuple(entries)


def replay_rtmrs(entries: tuple[EventLogEntry, ...]) -> tuple[bytes, bytes, bytes, bytes]:
    """RTMR0-3 from zero: ``rtmr = SHA-384(rtmr ‖ digest)`` per event, in log order."""
    rtmrs = [bytes(MR_TDX_LENGTH)] * 4
    for entry in entries:
        rtmrs[entry.imr] = hashlib.sha384(rtmrs[entry.imr] + entry.digest).digest()
    return rtmrs[0], rtmrs[1], rtmrs[2], rtmrs[3]


def verify_event_log(
    quote: ParsedQuote, event_log: str | bytes | list[Any], *, rtmrs: tuple[int, ...] = (0, 1, 2, 3)
) -> ReplayedEventLog:
    """Replay ``event_log`` and require each RTMR in ``rtmrs`` to equal the quote's.

    Raises:
        EventLogInvalid: malformed log, a TDX quote is required, or an RTMR does not match.
    """
    if quote.tee is not TEEKind.TDX:
        raise EventLogInvalid("event logs replay only against TDX quotes")
    entries = parse_event_log(event_log)
    replayed = replay_rtmrs(entries)
    quoted = (quote.rtmr0, quote.rtmr1, quote.rtmr2, quote.rtmr3)
    for index in rtmrs:
        if not hmac.compare_digest(replayed[index], quoted[index]):
            raise EventLogInvalid(f"RTMR{index} replayed from the event log differs from the quote")
    events = tuple(
        (e.event, e.event_payload)
        for e in entries
        if e.imr == 3 and e.event_type == DSTACK_RUNTIME_EVENT_TYPE
    )
    return ReplayedEventLog(rtmrs=replayed, runtime_events=events)
