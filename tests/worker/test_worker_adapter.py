"""The chain → core adapter, for every event type; the core's egress is what the chain side signs."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from veilnet.chain import check_egress, egress_domain, sign_egress, verify_egress
from veilnet.chain import model as cm
from veilnet.chain.relay import relay_key
from veilnet.crypto import Address, SecretKey
from veilnet.protocol import events as ev
from veilnet.runtime.egress import Outbox
from veilnet.worker import to_core_block, to_core_event
from veilnet.worker.adapter import IGNORED_EVENTS

POSITION = {
    "emitter": Address(b"\xee" * 20),
    "block_number": 9,
    "log_index": 3,
    "tx_hash": b"\x99" * 32,
}


def _sample(cls: type[cm.ChainEvent]) -> cm.ChainEvent:
    hints = typing.get_type_hints(cls)
    values: dict[str, object] = {}
    for index, f in enumerate(dataclasses.fields(cls)):
        if f.name in POSITION:
            continue
        kind = hints[f.name]
        if kind is Address:
            values[f.name] = Address(bytes([index + 1]) * 20)
        elif kind is bool:
            values[f.name] = True
        elif kind is int:
            values[f.name] = 1000 + index
        elif kind is bytes:
            values[f.name] = bytes([index + 0x40]) * 32
        elif kind is str:
            values[f.name] = f"host{index}.example"
        else:  # pragma: no cover - a new field type needs a sample here
            raise AssertionError(f"no sample for {cls.__name__}.{f.name}: {kind}")
    return cls(**POSITION, **values)


@pytest.mark.parametrize("cls", cm.EVENT_TYPES, ids=lambda c: c.__name__)
def test_every_chain_event_maps_field_by_field(cls: type[cm.ChainEvent]) -> None:
    event = _sample(cls)
    converted = to_core_event(event)
    if cls in IGNORED_EVENTS:
        assert converted is None
        return
    assert converted is not None
    assert type(converted).__name__ == cls.__name__
    assert isinstance(converted, ev.ChainEvent)
    for f in dataclasses.fields(converted):
        original = getattr(event, f.name)
        expected = original.raw if isinstance(original, Address) else original
        assert getattr(converted, f.name) == expected, f.name
        assert not isinstance(getattr(converted, f.name), Address)
    # the record encodes canonically (what checkpoints of buffered events store)
    assert type(converted).from_bytes(converted.to_bytes()) == converted


def test_every_runtime_event_has_a_chain_source() -> None:
    runtime_names = {
        name for name in ev.__all__ if name not in ("Block", "BlockHeader", "ChainEvent")
    }
    chain_names = {cls.__name__ for cls in cm.EVENT_TYPES if cls not in IGNORED_EVENTS}
    assert runtime_names == chain_names


def test_block_keeps_header_and_event_order_and_drops_ignored() -> None:
    header = cm.BlockHeader(
        number=12,
        hash=b"\x01" * 32,
        parent_hash=b"\x02" * 32,
        timestamp=1_767_225_600,
        receipts_root=b"\x03" * 32,
    )
    events = (
        _sample(cm.BusSet),
        _sample(cm.Command),
        _sample(cm.ParamsChanged),
        _sample(cm.Egress),
    )
    block = to_core_block(cm.Block(header=header, events=events))
    assert block.header == ev.BlockHeader(
        number=12, hash=b"\x01" * 32, parent_hash=b"\x02" * 32, timestamp=1_767_225_600
    )
    assert [type(e).__name__ for e in block.events] == ["Command", "Egress"]


def test_unknown_event_class_is_a_caller_bug() -> None:
    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
    class Strange(cm.ChainEvent):
        pass

    with pytest.raises(TypeError):
        to_core_event(Strange(**POSITION))


def test_core_egress_is_the_message_the_chain_side_signs_and_verifies() -> None:
    key = SecretKey.derive(b"\x33" * 32, "egress")
    domain = egress_domain(31337, Address(b"\xb5" * 20))
    outbox = Outbox(domain)
    outbox.emit(key, key.address.raw, b"\x07" * 32, b"payload")
    (message,) = outbox.drain()
    check_egress(message)
    verify_egress(message, domain)
    assert message == sign_egress(key, domain, seq=0, topic=b"\x07" * 32, payload=b"payload")
    assert relay_key(message) == ("0x" + key.address.raw.hex(), 0)
