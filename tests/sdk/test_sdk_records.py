"""Registry records: each mirrors its struct in the compiled Registry, decodes the ABI values a
node returns, and turns any malformed value into ChainUnavailable (never IndexError/TypeError)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import httpx
import pytest

from veilnet.chain.artifacts import load_artifact
from veilnet.chain.contracts import ContractHandle
from veilnet.codec import abi_encode
from veilnet.crypto import Address
from veilnet.sdk import (
    ChainUnavailable,
    Client,
    ClusterRecord,
    ContractRecord,
    NetworkConfig,
    WorkerRecord,
)
from veilnet.sdk._models import NO_CLUSTER, ZERO_ADDRESS

RECORDS = (WorkerRecord, ClusterRecord, ContractRecord)
OPERATOR = Address(b"\x0b" * 20)

SAMPLES: dict[type[Any], tuple[Any, ...]] = {
    WorkerRecord: (
        OPERATOR.hex,
        b"\x0a" * 32,
        1,
        b"\x01" * 32,
        2,
        b"\x02" * 32,
        b"\x03" * 32,
        b"\x04" * 32,
    ),
    ClusterRecord: (OPERATOR.hex, 3, OPERATOR.hex, b"\x0c" * 32, 41, 2),
    ContractRecord: (
        b"\x04" * 32,
        b"\x05" * 32,
        OPERATOR.hex,
        ZERO_ADDRESS.hex,
        7,
        OPERATOR.hex,
        b"\x0d" * 32,
        42,
        True,
    ),
}


def _struct_abi(getter: str, contract: str = "Registry") -> list[dict[str, str]]:
    entry = next(e for e in load_artifact(contract).abi if e.get("name") == getter)
    (output,) = entry["outputs"]
    components: list[dict[str, str]] = output["components"]
    return components


@pytest.mark.parametrize("record", RECORDS)
def test_each_record_mirrors_its_registry_struct_field_for_field(record: type[Any]) -> None:
    struct = _struct_abi(record.getter, record.contract)
    assert [f.name for f in dataclasses.fields(record)] == [c["name"] for c in struct]
    assert list(record.abi_types) == [c["type"] for c in struct]


@pytest.mark.parametrize("record", RECORDS)
def test_a_getter_answer_decodes_into_a_frozen_record(record: type[Any]) -> None:
    handle = ContractHandle(record.contract, Address(b"\x01" * 20))
    struct = _struct_abi(record.getter, record.contract)
    types = "(" + ",".join(c["type"] for c in struct) + ")"
    wire = abi_encode([types], [SAMPLES[record]])
    decoded = record.from_getter(handle.decode(record.getter, wire))
    names = [f.name for f in dataclasses.fields(record)]
    for name, sent in zip(names, SAMPLES[record], strict=True):
        got = getattr(decoded, name)
        assert (got.hex if isinstance(got, Address) else got) == sent
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(decoded, names[0], None)


def test_worker_and_contract_records_say_whether_they_exist() -> None:
    worker = WorkerRecord.from_getter(SAMPLES[WorkerRecord])
    assert worker.is_registered and worker.in_cluster and worker.confidence == 2
    blank = WorkerRecord.from_getter(
        (ZERO_ADDRESS.hex, bytes(32), 0, bytes(32), 0, bytes(32), bytes(32), bytes(32))
    )
    assert not blank.is_registered and not blank.in_cluster and blank.cluster == NO_CLUSTER
    contract = ContractRecord.from_getter(SAMPLES[ContractRecord])
    assert contract.exists and contract.paused and contract.key_epoch == 7
    gone = dataclasses.replace(contract, owner=ZERO_ADDRESS)
    assert not gone.exists


def _with(record: type[Any], index: int, value: Any) -> tuple[Any, ...]:
    values = list(SAMPLES[record])
    values[index] = value
    return tuple(values)


MALFORMED: list[tuple[type[Any], Any, str]] = [
    (WorkerRecord, None, "not a struct"),
    (WorkerRecord, b"\x00" * 256, "not a struct"),
    (WorkerRecord, "0x00", "not a struct"),
    (WorkerRecord, {"operator": OPERATOR.hex}, "not a struct"),
    (WorkerRecord, SAMPLES[WorkerRecord][:7], "7 fields"),
    (WorkerRecord, (*SAMPLES[WorkerRecord], 0), "9 fields"),
    (WorkerRecord, (), "0 fields"),
    (WorkerRecord, _with(WorkerRecord, 0, 12), "operator"),
    (WorkerRecord, _with(WorkerRecord, 0, "0xnothex"), "operator"),
    (WorkerRecord, _with(WorkerRecord, 0, "0x" + "ab" * 19), "operator"),
    (WorkerRecord, _with(WorkerRecord, 1, "key"), "hpke_key_hash"),
    (WorkerRecord, _with(WorkerRecord, 1, b"k" * 33), "hpke_key_hash"),
    (WorkerRecord, _with(WorkerRecord, 2, 256), "tee_kind"),
    (WorkerRecord, _with(WorkerRecord, 4, True), "confidence"),
    (WorkerRecord, _with(WorkerRecord, 4, -1), "confidence"),
    (WorkerRecord, _with(WorkerRecord, 4, "2"), "confidence"),
    (WorkerRecord, _with(WorkerRecord, 7, b"\x04" * 31), "cluster"),
    (WorkerRecord, _with(WorkerRecord, 7, None), "cluster"),
    (ClusterRecord, _with(ClusterRecord, 1, 2**64), "key_epoch"),
    (ClusterRecord, _with(ClusterRecord, 3, b"p" * 64), "key_hash"),
    (ClusterRecord, _with(ClusterRecord, 4, -1), "key_block"),
    (ClusterRecord, _with(ClusterRecord, 5, 2.0), "worker_count"),
    (ContractRecord, _with(ContractRecord, 8, 1), "paused"),
    (ContractRecord, _with(ContractRecord, 0, bytearray(32)), "cluster"),
    (ContractRecord, (*SAMPLES[WorkerRecord], True), "field cluster"),
]


@pytest.mark.parametrize(("record", "values", "why"), MALFORMED)
def test_malformed_getter_values_raise_chain_unavailable(
    record: type[Any], values: Any, why: str
) -> None:
    with pytest.raises(ChainUnavailable, match=why) as info:
        record.from_getter(values)
    assert info.value.code == "sdk_chain_unavailable"
    assert info.value.details["getter"] == record.getter


def _node(answer: str) -> httpx.MockTransport:
    def reply(request: httpx.Request) -> httpx.Response:
        call = json.loads(request.content)
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": call["id"], "result": answer})

    return httpx.MockTransport(reply)


def _client(answer: str) -> Client:
    config = NetworkConfig.from_json(
        {
            "chain_id": 31337,
            "rpc_url": "http://node.test",
            "contracts": {"Registry": "0x" + "01" * 20, "Bus": "0x" + "02" * 20},
        }
    )
    return Client(config, wallet=b"\x07" * 32, http=httpx.Client(transport=_node(answer)))


def test_the_client_fetches_and_the_record_decodes() -> None:
    types = "(" + ",".join(WorkerRecord.abi_types) + ")"
    wire = "0x" + abi_encode([types], [SAMPLES[WorkerRecord]]).hex()
    with _client(wire) as client:
        record = client.registry_record(WorkerRecord, OPERATOR)
    assert record == WorkerRecord.from_getter(SAMPLES[WorkerRecord])
    with _client("0x1234") as client, pytest.raises(ChainUnavailable):
        client.registry_record(WorkerRecord, OPERATOR)
