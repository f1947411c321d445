"""How a client reads a worker's registry entry at each new head: the registration, its
endorsement and its measurement's standing in one JSON-RPC batch, never a stale answer."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import httpx
import pytest

from veilnet.sdk import Client, WorkerRecord, WorkerUnverified

from .conftest import ALICE, Local


def _raw(record: WorkerRecord) -> tuple[Any, ...]:
    """``Registry.workers(addr)`` as the node answers it, for ``WorkerRecord.from_getter``."""
    return (
        record.operator.hex,
        record.hpke_key_hash,
        record.tee_kind,
        record.measurement,
        record.confidence,
        record.quote_hash,
        record.collateral_hash,
        record.cluster,
    )


def test_a_new_head_reads_the_registration_in_one_round_trip(
    local: Local, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first read asks about the measurement apart; at each later head it joins the
    registration and endorsement in one batch, as the measurement the worker had. A worker
    registered again under another measurement is judged by that one: a disallowed
    measurement is refused at the next head, never passed on the old answer."""
    w1 = local.net.cores["w1"].keys.identity.address
    record = local.registry_record(w1.raw)
    chain = {"record": record, "allowed": {record.measurement: True}}
    batches: list[list[str]] = []
    singles: list[bytes] = []
    heads = iter([10, 11, 12])

    def registry_views(calls: list[tuple[str, tuple[Any, ...]]]) -> list[Any]:
        batches.append([fn for fn, _ in calls])
        answers = {
            "workers": lambda _args: _raw(chain["record"]),
            "endorsed_until": lambda _args: 2**40,
            "allowed_measurements": lambda args: chain["allowed"].get(args[0], False),
        }
        return [answers[fn](args) for fn, args in calls]

    def registry_view(fn: str, *args: Any) -> Any:
        assert fn == "allowed_measurements"
        singles.append(args[0])
        return chain["allowed"].get(args[0], False)

    with Client(local.config(), wallet=ALICE, http=httpx.Client()) as client:
        verification = local.verification(w1)
        # attested already: only the registry is read again at each head
        client.remember_verification(verification, time.monotonic(), record.quote_hash)
        monkeypatch.setattr(client, "registry_views", registry_views)
        monkeypatch.setattr(client, "registry_view", registry_view)
        monkeypatch.setattr(client, "recent_head", lambda: next(heads))
        assert client.verify_worker(w1, cluster=record.cluster) == verification
        assert batches == [["workers", "endorsed_until"]] and singles == [record.measurement]
        assert client.verify_worker(w1, cluster=record.cluster) == verification  # head 11
        assert batches[-1] == ["workers", "endorsed_until", "allowed_measurements"]
        assert singles == [record.measurement]  # one round trip
        other = b"\x99" * 32
        chain["record"] = dataclasses.replace(record, measurement=other)
        with pytest.raises(WorkerUnverified, match="measurement"):
            client.verify_worker(w1, cluster=record.cluster)  # head 12
        assert singles == [record.measurement, other]  # the new one, asked apart
