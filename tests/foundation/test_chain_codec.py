"""The core's chain codec: the compiled ABI, receipt round trips, real blocks and hostile bytes."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest
import rlp
from eth_abi.abi import encode as abi_encode
from eth_hash.auto import keccak
from hypothesis import given
from hypothesis import strategies as st

from veilnet.chain import EmbeddedChain, Follower, Network, deploy, proofs
from veilnet.chain import model as cm
from veilnet.chain.artifacts import load_artifact
from veilnet.chain.rpc import from_hex, from_quantity, to_quantity
from veilnet.crypto import Address, SecretKey
from veilnet.protocol import events as ev
from veilnet.protocol.chain import (
    EMPTY_TRIE_ROOT,
    EVENT_ABI,
    MAX_HEADER_BYTES,
    MAX_LOGS_PER_RECEIPT,
    MAX_RECEIPTS,
    POLICY_RPC_QUORUM,
    POLICY_SEQUENCER,
    ChainBlock,
    ChainDataInvalid,
    ChainTrust,
    LogEntry,
    bloom_may_contain,
    bloom_of,
    decode_header,
    decode_logs,
    decode_receipt,
    encode_event,
    encode_header,
    encode_receipt,
    event_topic,
    receipts_root,
)
from veilnet.worker.adapter import IGNORED_EVENTS, to_core_event

REGISTRY = b"\x11" * 20
BUS = b"\x22" * 20
STRANGER = b"\x33" * 20
ADDRESSES = cm.ChainAddresses(chain_id=31337, registry=Address(REGISTRY), bus=Address(BUS))
U64 = 2**64 - 1
U256 = 2**256 - 1


def addr(n: int) -> bytes:
    return bytes([n]) * 20


def h32(n: int) -> bytes:
    return bytes([n]) * 32


# ---- 1. the event table is the compiled ABI -------------------------------------------------


def _artifact_events() -> list[tuple[str, str, tuple[tuple[str, str, bool], ...]]]:
    found = []
    for contract in ("Registry", "Bus"):
        for entry in load_artifact(contract).abi:
            if entry.get("type") == "event":
                inputs = tuple((i["name"], i["type"], bool(i["indexed"])) for i in entry["inputs"])
                found.append((contract, entry["name"], inputs))
    return found


def test_event_table_equals_the_compiled_abi_in_order() -> None:
    table = [(spec.contract, spec.name, spec.inputs) for spec in EVENT_ABI]
    assert table == _artifact_events()


def test_event_table_topics_equal_the_host_models() -> None:
    by_name = {cls.__name__: cls for cls in cm.EVENT_TYPES}
    assert {spec.name for spec in EVENT_ABI} == set(by_name)
    for spec in EVENT_ABI:
        cls = by_name[spec.name]
        assert spec.contract == cls.CONTRACT
        assert spec.topic0 == cm.event_topic(cls), spec.name
        if spec.record is not None:
            assert event_topic(spec.record) == spec.topic0


def test_every_core_record_is_consumed_and_only_governance_is_ignored() -> None:
    records = {
        getattr(ev, name)
        for name in ev.__all__
        if isinstance(getattr(ev, name), type)
        and issubclass(getattr(ev, name), ev.ChainEvent)
        and getattr(ev, name) is not ev.ChainEvent
    }
    consumed = {spec.record for spec in EVENT_ABI if spec.record is not None}
    assert consumed == records
    for spec in EVENT_ABI:
        if spec.record is not None:
            assert spec.record.__name__ == spec.name
            names = [f.name for f in dataclasses.fields(cast(Any, spec.record))]
            assert names == [name for name, _, _ in spec.inputs]
    ignored = {spec.name for spec in EVENT_ABI if spec.record is None}
    assert ignored == {cls.__name__ for cls in IGNORED_EVENTS}


# ---- 2. round trips -----------------------------------------------------------------------

EVENTS: tuple[ev.ChainEvent, ...] = (
    ev.MeasurementSet(measurement=h32(0x42), allowed=True),
    ev.GatekeeperAdded(gatekeeper=addr(1)),
    ev.GatekeeperRemoved(gatekeeper=addr(2)),
    ev.WorkerRegistered(
        worker=addr(3),
        operator=addr(4),
        hpke_key=b"\x05" * 32,
        tee_kind=1,
        measurement=h32(0x42),
        quote_hash=h32(6),
        collateral_hash=h32(7),
        quote=b"q" * 1000,
        attested_block=2**64 - 1,
        attested_hash=h32(8),
        registration=h32(0x0A),
    ),
    ev.WorkerEndorsed(worker=addr(3), confidence=255, registration=h32(6), valid_until=2**64 - 1),
    ev.WorkerReattested(
        worker=addr(3),
        quote_hash=h32(6),
        collateral_hash=h32(7),
        quote=b"q",
        attested_block=9,
        attested_hash=h32(9),
        registration=h32(0x0B),
    ),
    ev.HeartbeatRecorded(worker=addr(3), height=U64, boot_id=h32(8), sealed_height=0),
    ev.WorkerFlagged(worker=addr(3), reason=1),
    ev.WorkerKeyPublished(worker=addr(3), index=U64, public_key=b"\x0d" * 1216),
    ev.ReplicaDiverged(
        cluster_id=b"\xc1" * 32,
        worker=addr(3),
        height=40,
        commitment=b"\x66" * 32,
        majority=b"\x11" * 32,
    ),
    ev.MasterKeySet(gatekeeper=addr(1), key_address=addr(9), public_key=b"\x0a" * 32),
    ev.RotationLocked(rotation=1, attempt=U256),
    ev.RotationProposed(
        rotation=U256, proposer=addr(1), key_address=addr(0x0B), public_key=b"\x0c" * 32
    ),
    ev.RotationConfirmed(rotation=2, gatekeeper=addr(1), confirmations=3),
    ev.MasterKeyRotated(rotation=2, key_address=addr(0x0B), public_key=b"\x0c" * 32),
    ev.RotationAborted(rotation=0),
    ev.ClusterCreated(cluster_id=b"c1".ljust(32, b"\x00"), owner=addr(0x0D), suite=2),
    ev.JobRequested(
        contract_id=b"\xc2" * 32,
        request_id=b"\x12" * 32,
        consumer=addr(0x45),
        deadline=99,
        payload=b"job",
    ),
    ev.JobScheduled(
        contract_id=b"\xc2" * 32,
        schedule_id=U256,
        consumer=addr(0x46),
        every=3,
        start=17,
        payload=b"tick",
    ),
    ev.ScheduleCancelled(contract_id=b"\xc2" * 32, schedule_id=1),
    ev.EgressHostSet(contract_id=b"\xc2" * 32, host="api.example.com", allowed=True),
    ev.ClusterWorkerAdded(cluster_id=b"c1".ljust(32, b"\x00"), worker=addr(3)),
    ev.ClusterWorkerRemoved(cluster_id=b"c1".ljust(32, b"\x00"), worker=addr(3)),
    ev.ClusterKeySet(
        cluster_id=b"c1".ljust(32, b"\x00"), epoch=7, key_address=addr(0x0E), public_key=b"k" * 32
    ),
    ev.ContractDeployed(
        contract_id=h32(0x10),
        cluster_id=b"c1".ljust(32, b"\x00"),
        owner=addr(0x0D),
        controller=b"\x00" * 20,
        code_hash=keccak(b"code"),
        code=b"py\x00" + b"x" * 5000,
        init_args=b"",
    ),
    ev.ContractKeySet(contract_id=h32(0x10), epoch=U64, key_address=addr(0x0F), public_key=b""),
    ev.ContractPaused(contract_id=h32(0x10), paused=False, by=addr(0x0D)),
    ev.ContractUpgraded(contract_id=h32(0x10), code_hash=keccak(b"v2"), code=b"v2"),
    ev.ContractOwnerChanged(contract_id=h32(0x10), owner=addr(0x12)),
    ev.ContractControllerChanged(contract_id=h32(0x10), controller=addr(0x13)),
    ev.Command(contract_id=h32(0x10), seq=0, sender=addr(0x14), payload=b"\xff" * 100),
    ev.Egress(origin=addr(3), seq=U64, topic=keccak(b"veil/egress/heartbeat"), payload=b"p"),
    ev.EgressRejected(origin=addr(3), seq=5, topic=keccak(b"veil/egress/heartbeat")),
)
BY_NAME = {spec.name: spec for spec in EVENT_ABI}


def _receipt(*logs: LogEntry, status: bool = True, tx_type: int = 2) -> bytes:
    return encode_receipt(status=status, cumulative_gas=21_000, logs=logs, tx_type=tx_type)


def _model_event(log: LogEntry, *, log_index: int = 0) -> cm.ChainEvent:
    raw = cm.RawLog(
        address=log.address,
        topics=log.topics,
        data=log.data,
        block_number=9,
        log_index=log_index,
        tx_hash=h32(0xAA),
    )
    return cm.decode_log(raw, ADDRESSES)


def _raw_log(name: str, values: dict[str, Any], *, address: bytes | None = None) -> LogEntry:
    """A log built straight from the artifact ABI (independent of ``encode_event``)."""
    spec = BY_NAME[name]

    def abi(abi_type: str, value: Any) -> Any:
        return Address(value).hex if abi_type == "address" else value

    topics = [spec.topic0]
    topics += [abi_encode([t], [abi(t, values[n])]) for n, t, indexed in spec.inputs if indexed]
    data_types = [(n, t) for n, t, indexed in spec.inputs if not indexed]
    data = abi_encode([t for _, t in data_types], [abi(t, values[n]) for n, t in data_types])
    if address is None:
        address = REGISTRY if spec.contract == "Registry" else BUS
    return LogEntry(address=address, topics=tuple(topics), data=data)


def test_every_consumed_record_has_an_example() -> None:
    assert {type(event) for event in EVENTS} == {s.record for s in EVENT_ABI if s.record}


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_event_round_trips_through_a_receipt(event: ev.ChainEvent) -> None:
    log = encode_event(event, registry=REGISTRY, bus=BUS)
    spec = BY_NAME[type(event).__name__]
    assert log.address == (REGISTRY if spec.contract == "Registry" else BUS)
    assert log.topics[0] == spec.topic0
    assert log == _raw_log(spec.name, dataclasses.asdict(cast(Any, event)))
    for tx_type in (0, 2):
        assert decode_logs([_receipt(log, tx_type=tx_type)], registry=REGISTRY, bus=BUS) == (event,)
    # The host's decoder, built from the artifacts, reads the same log the same way.
    assert to_core_event(_model_event(log)) == event


def test_logs_keep_order_across_receipts_and_skip_strangers_and_failures() -> None:
    logs = [encode_event(e, registry=REGISTRY, bus=BUS) for e in EVENTS]
    stranger = dataclasses.replace(logs[0], address=STRANGER)
    junk = LogEntry(address=STRANGER, topics=(), data=b"not an event")
    receipts = [
        _receipt(*logs[:5], stranger),
        _receipt(logs[5], status=False),  # reverted: its logs never happened
        _receipt(junk, *logs[6:12], tx_type=0),
        _receipt(),
        _receipt(*logs[12:]),
    ]
    expected = EVENTS[:5] + EVENTS[6:]
    assert decode_logs(receipts, registry=REGISTRY, bus=BUS) == expected
    assert decode_receipt(receipts[1]) == (False, (logs[5],))
    assert decode_receipt(receipts[0]) == (True, (*logs[:5], stranger))


def test_a_failed_receipt_hides_even_malformed_logs() -> None:
    bad = LogEntry(address=REGISTRY, topics=(h32(0xEE),), data=b"")
    assert decode_logs([_receipt(bad, status=False)], registry=REGISTRY, bus=BUS) == ()


def test_pre_byzantium_state_root_counts_as_success() -> None:
    log = encode_event(EVENTS[0], registry=REGISTRY, bus=BUS)
    body = rlp.encode([h32(1), 1, bloom_of([log]), [[log.address, list(log.topics), log.data]]])
    assert decode_receipt(body) == (True, (log,))
    assert decode_logs([body], registry=REGISTRY, bus=BUS) == (EVENTS[0],)


UNCONSUMED: dict[str, dict[str, Any]] = {
    "BusSet": {"bus": BUS},
    "OwnershipTransferred": {"previous_owner": b"\x00" * 20, "new_owner": addr(0x41)},
    "OwnershipTransferStarted": {"previous_owner": addr(0x41), "new_owner": addr(0x42)},
    "ParamsChanged": {"max_payload": 4096, "command_fee": 10**15, "fee_hook": b"\x00" * 20},
    "FeesWithdrawn": {"to": addr(0x43), "amount": 10**18},
    "RotationThresholdSet": {"threshold": 2},
    "DeployPolicySet": {"cluster_id": b"\xc1" * 32, "deployer": addr(0x44), "allowed": True},
    "RegistrationDepositSet": {"amount": 10**16},
    "ContractInitFailed": {"contract_id": h32(0x10), "code": "sandbox_agent_error"},
}


def test_unconsumed_table_entries_have_examples() -> None:
    assert set(UNCONSUMED) == {spec.name for spec in EVENT_ABI if spec.record is None}


@pytest.mark.parametrize("name", sorted(UNCONSUMED))
def test_unconsumed_events_decode_to_nothing(name: str) -> None:
    log = _raw_log(name, UNCONSUMED[name])
    assert decode_logs([_receipt(log)], registry=REGISTRY, bus=BUS) == ()
    model = _model_event(log)
    assert type(model).__name__ == name
    assert to_core_event(model) is None


def test_header_round_trip_and_chain_block() -> None:
    log = encode_event(EVENTS[0], registry=REGISTRY, bus=BUS)
    receipts = (_receipt(log), _receipt())
    root = receipts_root(receipts)
    header = encode_header(
        parent_hash=h32(1),
        number=12,
        timestamp=1_700_000_000,
        receipts_root=root,
        logs_bloom=bloom_of([log]),
    )
    fields = decode_header(header)
    assert fields.hash == keccak(header)
    assert (fields.parent_hash, fields.number, fields.timestamp) == (h32(1), 12, 1_700_000_000)
    assert (fields.receipts_root, fields.logs_bloom) == (root, bloom_of([log]))
    assert fields.as_header() == ev.BlockHeader(
        number=12, hash=keccak(header), parent_hash=h32(1), timestamp=1_700_000_000
    )
    block = ChainBlock(header=header, receipts=receipts, evidence=b"\x01" * 65)
    assert block.fields == fields
    assert ChainBlock.from_bytes(block.to_bytes()) == block
    assert bloom_may_contain(fields.logs_bloom, [REGISTRY])
    assert not bloom_may_contain(fields.logs_bloom, [STRANGER, BUS])
    assert not bloom_may_contain(bytes(256), [REGISTRY])
    assert receipts_root([]) == EMPTY_TRIE_ROOT == proofs.EMPTY_TRIE_ROOT
    # Later forks append fields (Cancun, Prague): up to 21 decode.
    assert decode_header(encode_header(parent_hash=h32(1), number=0, timestamp=0, extra=[b""] * 5))


# ---- 3. the real chain --------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_chain() -> Iterator[tuple[EmbeddedChain, cm.ChainAddresses, int]]:
    chain = EmbeddedChain()
    client = chain.client()
    measurement = h32(0x42)
    deployment = deploy(client, chain.dev_accounts[0][1], measurements=[measurement])
    network = Network(client, deployment.addresses)
    admin = network.sender(chain.dev_accounts[0][1])
    worker = SecretKey.derive(b"veilnet-chain-codec-tests-seed-1", "worker")
    admin.transact(worker.address, b"", value=10**18, gas=21_000)
    network.register_worker(
        network.sender(worker._private_scalar()),
        operator=admin.address,
        hpke_key=worker.public.x25519,
        tee_kind=1,
        measurement=measurement,
        quote=b"quote" * 50,
        collateral_hash=h32(7),
    )
    network.create_cluster(admin, b"c1".ljust(32, b"\x00"), admin.address)
    yield chain, deployment.addresses, deployment.genesis_block
    chain.close()


def test_real_blocks_verify_and_decode_like_the_host_follower(
    real_chain: tuple[EmbeddedChain, cm.ChainAddresses, int],
) -> None:
    chain, addresses, genesis = real_chain
    client = chain.client()
    head = from_quantity(client.call("eth_blockNumber"))
    follower = Follower(client, addresses, start_block=genesis, finality_depth=0)
    followed = {block.header.number: block for block in follower.poll()}
    assert set(followed) == set(range(genesis, head + 1))
    registry, bus = addresses.registry.raw, addresses.bus.raw
    seen: set[str] = set()
    for number in range(genesis, head + 1):
        doc = client.call("eth_getBlockByNumber", to_quantity(number), False)
        receipts = client.call("eth_getBlockReceipts", to_quantity(number))
        raw_header = proofs.header_rlp(doc)
        fields = decode_header(raw_header)
        assert fields.hash == from_hex(doc["hash"])
        assert fields.parent_hash == from_hex(doc["parentHash"])
        assert (fields.number, fields.timestamp) == (number, from_quantity(doc["timestamp"]))
        encoded = [proofs.encode_receipt(r) for r in receipts]
        assert receipts_root(encoded) == fields.receipts_root == from_hex(doc["receiptsRoot"])
        logs = [log for raw in encoded for log in decode_receipt(raw)[1]]
        assert len(logs) == sum(len(r["logs"]) for r in receipts)
        assert bloom_of(logs) == fields.logs_bloom == from_hex(doc["logsBloom"])
        if any(log.address == registry for log in logs):
            assert bloom_may_contain(fields.logs_bloom, [registry])
        mine = decode_logs(encoded, registry=registry, bus=bus)
        host = tuple(
            e for e in (to_core_event(x) for x in followed[number].events) if e is not None
        )
        assert mine == host
        block = followed[number]
        assert block.raw_header == raw_header
        if block.raw_receipts:
            assert decode_logs(block.raw_receipts, registry=registry, bus=bus) == mine
        seen.update(type(e).__name__ for e in mine)
    assert {"MeasurementSet", "WorkerRegistered", "ClusterCreated"} <= seen


# ---- 4. hostile inputs --------------------------------------------------------------------


def _header_items(**changes: Any) -> list[Any]:
    items: list[Any] = rlp.decode(encode_header(parent_hash=h32(1), number=5, timestamp=99))
    for index, value in changes.items():
        items[int(index.removeprefix("f"))] = value
    return items


VALID_HEADER = encode_header(parent_hash=h32(1), number=5, timestamp=99)

BAD_HEADERS: dict[str, Any] = {
    "empty": b"",
    "truncated": VALID_HEADER[:-1],
    "cut in half": VALID_HEADER[: len(VALID_HEADER) // 2],
    "trailing byte": VALID_HEADER + b"\x00",
    "garbage": b"\xff" * 64,
    "a byte string": rlp.encode(b"x" * 600),
    "not bytes": bytearray(VALID_HEADER),
    "31-byte parent hash": rlp.encode(_header_items(f0=b"\x01" * 31)),
    "33-byte receipts root": rlp.encode(_header_items(f5=b"\x01" * 33)),
    "short bloom": rlp.encode(_header_items(f6=b"\x00" * 255)),
    "non-canonical number": rlp.encode(_header_items(f8=b"\x00\x05")),
    "number over 8 bytes": rlp.encode(_header_items(f8=b"\x01" * 9)),
    "non-canonical timestamp": rlp.encode(_header_items(f11=b"\x00\x63")),
    "nested list field": rlp.encode(_header_items(f12=[b"veil"])),
    "14 fields": rlp.encode(_header_items()[:14]),
    "22 fields": rlp.encode(_header_items() + [b""] * 6),
    "oversized": encode_header(
        parent_hash=h32(1), number=5, timestamp=99, extra=[b"x" * MAX_HEADER_BYTES]
    ),
}


def _code_of(call: Callable[[], object]) -> str:
    with pytest.raises(ChainDataInvalid) as caught:
        call()
    assert type(caught.value) is ChainDataInvalid
    return caught.value.code


@pytest.mark.parametrize("name", sorted(BAD_HEADERS))
def test_bad_headers_are_chain_data_invalid(name: str) -> None:
    data = BAD_HEADERS[name]
    assert _code_of(lambda: decode_header(data)) == "chain_data_invalid"
    if isinstance(data, bytes):
        block = ChainBlock(header=data)
        assert _code_of(lambda: block.fields) == "chain_data_invalid"


def _log_item(address: bytes = REGISTRY, topics: Any = (), data: bytes = b"") -> list[Any]:
    return [address, list(topics), data]


def _raw_receipt(logs: list[Any], *, status: bytes = b"\x01") -> bytes:
    body: bytes = rlp.encode([status, 21_000, b"\x00" * 256, logs])
    return b"\x02" + body


EVENT_LOG = encode_event(EVENTS[0], registry=REGISTRY, bus=BUS)
COMMAND_LOG = encode_event(EVENTS[-3], registry=REGISTRY, bus=BUS)

BAD_RECEIPTS: dict[str, bytes] = {
    "empty": b"",
    "type byte only": b"\x02",
    "not RLP": b"\x02\xff\xff\xff",
    "legacy garbage": b"\xf9\x01",
    "a byte string": b"\x02" + rlp.encode(b"receipt"),
    "three fields": b"\x02" + rlp.encode([b"\x01", 1, b"\x00" * 256]),
    "logs not a list": b"\x02" + rlp.encode([b"\x01", 1, b"\x00" * 256, b"logs"]),
    "log not a list": _raw_receipt([b"log"]),
    "log with two fields": _raw_receipt([[REGISTRY, []]]),
    "19-byte address": _raw_receipt([_log_item(address=b"\x11" * 19)]),
    "21-byte address": _raw_receipt([_log_item(address=b"\x11" * 21)]),
    "five topics": _raw_receipt([_log_item(topics=[h32(i) for i in range(5)])]),
    "31-byte topic": _raw_receipt([_log_item(topics=[b"\x01" * 31])]),
    "topics not a list": _raw_receipt([[REGISTRY, h32(1), b""]]),
    "data a list": _raw_receipt([[REGISTRY, [], [b""]]]),
    "too many logs": _raw_receipt([_log_item(STRANGER)] * (MAX_LOGS_PER_RECEIPT + 1)),
}


@pytest.mark.parametrize("name", sorted(BAD_RECEIPTS))
def test_bad_receipts_are_chain_data_invalid(name: str) -> None:
    data = BAD_RECEIPTS[name]
    assert _code_of(lambda: decode_receipt(data)) == "chain_data_invalid"
    receipts = [_receipt(EVENT_LOG), data]
    assert _code_of(lambda: decode_logs(receipts, registry=REGISTRY, bus=BUS)) == (
        "chain_data_invalid"
    )


def _with(log: LogEntry, **changes: Any) -> LogEntry:
    return dataclasses.replace(log, **changes)


BAD_LOGS: dict[str, LogEntry] = {
    "Registry log without topics": LogEntry(address=REGISTRY, topics=(), data=b""),
    "Bus log without topics": LogEntry(address=BUS, topics=(), data=b""),
    "Registry log of an unknown event": _with(EVENT_LOG, topics=(keccak(b"Fake(bytes32)"),)),
    "Bus event from the Registry": _with(COMMAND_LOG, address=REGISTRY),
    "Registry event from the Bus": _with(EVENT_LOG, address=BUS),
    "missing indexed topic": _with(COMMAND_LOG, topics=COMMAND_LOG.topics[:2]),
    "extra topic": _with(EVENT_LOG, topics=(*EVENT_LOG.topics, h32(9))),
    "no data": _with(COMMAND_LOG, data=b""),
    "truncated data": _with(COMMAND_LOG, data=COMMAND_LOG.data[:-1]),
    "bool out of range": _with(EVENT_LOG, data=(2).to_bytes(32, "big")),
    "uint64 out of range": _with(COMMAND_LOG, data=b"\x01" + COMMAND_LOG.data[1:]),
    "dirty address topic": _with(COMMAND_LOG, topics=(*COMMAND_LOG.topics[:2], b"\xff" * 32)),
    "bytes offset past the end": _with(
        COMMAND_LOG, data=COMMAND_LOG.data[:32] + (2**200).to_bytes(32, "big")
    ),
    "data over the limit": _with(COMMAND_LOG, data=COMMAND_LOG.data + bytes(128 * 1024)),
}


@pytest.mark.parametrize("name", sorted(BAD_LOGS))
def test_bad_registry_and_bus_logs_are_chain_data_invalid(name: str) -> None:
    receipts = [_receipt(EVENT_LOG), _receipt(BAD_LOGS[name])]
    assert _code_of(lambda: decode_logs(receipts, registry=REGISTRY, bus=BUS)) == (
        "chain_data_invalid"
    )


def test_too_many_receipts_are_refused_before_decoding() -> None:
    receipts = [b""] * (MAX_RECEIPTS + 1)
    assert _code_of(lambda: decode_logs(receipts, registry=REGISTRY, bus=BUS)) == (
        "chain_data_invalid"
    )


def _nested_lists(depth: int) -> bytes:
    """RLP of ``depth`` lists each holding the next (built by hand: ``rlp.encode`` recurses)."""
    prefixes = []
    size = 1  # the innermost empty list, b"\xc0"
    for _ in range(depth):
        length = size.to_bytes((size.bit_length() + 7) // 8, "big")
        prefix = bytes([0xC0 + size]) if size < 56 else bytes([0xF7 + len(length)]) + length
        prefixes.append(prefix)
        size += len(prefix)
    return b"".join(reversed(prefixes)) + b"\xc0"


CORE_PROCESS = """
import sys
from veilnet.protocol.chain import ChainDataInvalid, decode_header, decode_receipt
data = bytes.fromhex(sys.stdin.read())
for decoder in (decode_header, decode_receipt):
    try:
        decoder(data)
        print("returned")
    except ChainDataInvalid:
        print("ChainDataInvalid")
    except Exception as exc:
        print(type(exc).__name__)
"""
"""Decodes in a fresh interpreter that imports what the enclave core imports: no py-evm or
py_ecc, which raise the recursion limit to 100,000 on import (this test process has both)."""


def test_deeply_nested_rlp_is_chain_data_invalid_in_the_core_process() -> None:
    """pyrlp decodes recursively: ~1,000 nested lists (2.8 KB, under MAX_HEADER_BYTES) would
    exhaust the core's default recursion limit; the decoders bound the nesting first."""
    data = _nested_lists(1_500)
    assert len(data) < MAX_HEADER_BYTES
    result = subprocess.run(
        [sys.executable, "-c", CORE_PROCESS],
        input=data.hex(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.split() == ["ChainDataInvalid", "ChainDataInvalid"]


def _outcome(call: Callable[[], object]) -> str:
    """What a decoder did, by name (a RecursionError's 100,000-frame traceback is not kept)."""
    try:
        call()
    except ChainDataInvalid:
        return "ChainDataInvalid"
    except RecursionError:
        return "RecursionError"
    return "returned"


def test_deeply_nested_receipt_is_chain_data_invalid() -> None:
    """110,000 nested lists (~420 KB) exceed even a raised limit of 100,000."""
    data = b"\x02" + _nested_lists(110_000)
    assert _outcome(lambda: decode_receipt(data)) == "ChainDataInvalid"
    assert _outcome(lambda: decode_logs([data], registry=REGISTRY, bus=BUS)) == "ChainDataInvalid"


def test_nesting_within_the_recursion_limit_is_chain_data_invalid() -> None:
    data = _nested_lists(500)
    assert _code_of(lambda: decode_header(data)) == "chain_data_invalid"
    assert _code_of(lambda: decode_receipt(data)) == "chain_data_invalid"


@given(st.binary(max_size=700))
def test_arbitrary_bytes_decode_or_raise_chain_data_invalid(data: bytes) -> None:
    for decoder in (decode_header, decode_receipt):
        try:
            decoder(data)
        except ChainDataInvalid:
            pass


VALID_RECEIPT = _receipt(
    COMMAND_LOG, EVENT_LOG, encode_event(EVENTS[3], registry=REGISTRY, bus=BUS)
)


@given(st.data())
def test_mutated_headers_and_receipts_decode_or_raise_chain_data_invalid(data: Any) -> None:
    for valid in (VALID_HEADER, VALID_RECEIPT):
        mutated = bytearray(valid)
        for _ in range(data.draw(st.integers(1, 4))):
            at = data.draw(st.integers(0, len(mutated) - 1))
            mutated[at] = data.draw(st.integers(0, 255))
        cut = data.draw(st.integers(0, len(mutated)))
        blob = bytes(mutated[:cut]) if data.draw(st.booleans()) else bytes(mutated)
        for decode in (decode_header, lambda b: decode_logs([b], registry=REGISTRY, bus=BUS)):
            try:
                decode(blob)
            except ChainDataInvalid:
                pass


@given(st.binary(max_size=400), st.integers(0, 3))
def test_arbitrary_log_data_decodes_or_raises_chain_data_invalid(blob: bytes, topics: int) -> None:
    for log in (EVENT_LOG, COMMAND_LOG, encode_event(EVENTS[3], registry=REGISTRY, bus=BUS)):
        fuzzed = _with(log, topics=log.topics[: 1 + topics], data=blob)
        try:
            decode_logs([_receipt(fuzzed)], registry=REGISTRY, bus=BUS)
        except ChainDataInvalid:
            pass


# ---- 5. ChainTrust ------------------------------------------------------------------------

CA = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def _sequencer_trust(**changes: Any) -> ChainTrust:
    values: dict[str, Any] = {
        "anchor_number": 41,
        "anchor_hash": h32(0xAB),
        "anchor_timestamp": 1_700_000_000,
        "policy": POLICY_SEQUENCER,
        "sequencer": addr(0x5E),
    }
    return ChainTrust(**(values | changes))


def _quorum_trust(**changes: Any) -> ChainTrust:
    values: dict[str, Any] = {
        "anchor_number": 0,
        "anchor_hash": h32(0xCD),
        "policy": POLICY_RPC_QUORUM,
        "rpc_endpoints": ("rpc-a.example:8545/v1", "rpc-b.example", "rpc-c.example:443"),
        "rpc_threshold": 2,
        "rpc_ca_pem": CA,
        "rpc_block_tag": "safe",
    }
    return ChainTrust(**(values | changes))


BAD_TRUSTS: dict[str, Callable[[], ChainTrust]] = {
    "31-byte anchor hash": lambda: _sequencer_trust(anchor_hash=b"\x01" * 31),
    "33-byte anchor hash": lambda: _quorum_trust(anchor_hash=b"\x01" * 33),
    "negative anchor": lambda: _sequencer_trust(anchor_number=-1),
    "unknown policy": lambda: _sequencer_trust(policy="trust-me"),
    "no sequencer": lambda: _sequencer_trust(sequencer=b""),
    "19-byte sequencer": lambda: _sequencer_trust(sequencer=b"\x01" * 19),
    "21-byte sequencer": lambda: _sequencer_trust(sequencer=b"\x01" * 21),
    "threshold 0": lambda: _quorum_trust(rpc_threshold=0),
    "threshold over n": lambda: _quorum_trust(rpc_threshold=4),
    "no endpoints": lambda: _quorum_trust(rpc_endpoints=(), rpc_threshold=1),
    "no CA": lambda: _quorum_trust(rpc_ca_pem=b""),
}


@pytest.mark.parametrize("name", sorted(BAD_TRUSTS))
def test_chain_trust_refuses_bad_policies(name: str) -> None:
    with pytest.raises(ValueError):
        BAD_TRUSTS[name]()


@pytest.mark.parametrize(
    "trust", [_sequencer_trust(), _quorum_trust(), _quorum_trust(rpc_threshold=3)]
)
def test_chain_trust_json_and_record_round_trip(trust: ChainTrust) -> None:
    doc = trust.to_json()
    assert doc["anchor_hash"] == "0x" + trust.anchor_hash.hex()
    assert ("sequencer" in doc) == (trust.policy == POLICY_SEQUENCER)
    assert ("rpc_endpoints" in doc) == (trust.policy == POLICY_RPC_QUORUM)
    assert ChainTrust.from_json(doc) == trust
    assert ChainTrust.from_bytes(trust.to_bytes()) == trust


@pytest.mark.parametrize(
    "doc",
    [
        [],
        {},
        {"policy": POLICY_SEQUENCER, "anchor_number": 1},
        _sequencer_trust().to_json() | {"anchor_hash": "0xzz"},
        _sequencer_trust().to_json() | {"anchor_number": None},
        _sequencer_trust().to_json() | {"sequencer": "0x1234"},
        _quorum_trust().to_json() | {"rpc_threshold": 9},
    ],
    ids=["list", "empty", "no hash", "bad hex", "null number", "short sequencer", "threshold"],
)
def test_chain_trust_from_bad_json_is_value_error(doc: Any) -> None:
    with pytest.raises(ValueError):
        ChainTrust.from_json(doc)
