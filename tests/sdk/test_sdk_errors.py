"""How the SDK reads a worker's refusals and answers: each worker code it names is the code of
the class that owns it, one table maps codes to SDK errors, and one function reads outcomes."""

from __future__ import annotations

import json
from typing import Any

import pytest

import veilnet.sdk
from veilnet.errors import VeilnetError
from veilnet.protocol.errors import QueryStale
from veilnet.runtime import errors as core_errors
from veilnet.sdk import (
    AgentFailed,
    BaseClient,
    QueryRejected,
    RateLimited,
    RequestTooLarge,
    ResponseInvalid,
    WorkerRefused,
    WorkerUnavailable,
)
from veilnet.sdk import errors as sdk_errors
from veilnet.sdk._base import agent_failure, read_outcome
from veilnet.worker import errors as worker_errors

from .conftest import ALICE

WORKER = "http://worker.test"

OWNERS: list[tuple[str, type[VeilnetError]]] = [
    (sdk_errors.WORKER_NOT_READY, core_errors.NotReady),
    (sdk_errors.WORKER_KEY_EPOCH_EXPIRED, core_errors.KeyEpochExpired),
    (sdk_errors.WORKER_QUERY_REJECTED, core_errors.QueryRejected),
    (sdk_errors.WORKER_QUERY_STALE, QueryStale),
    (sdk_errors.WORKER_REQUEST_TOO_LARGE, worker_errors.RequestTooLarge),
    (sdk_errors.WORKER_RATE_LIMITED, worker_errors.RateLimited),
    (sdk_errors.WORKER_CONTRACT_PAUSED, core_errors.ContractPaused),
]


@pytest.mark.parametrize(("mirrored", "owner"), OWNERS)
def test_each_worker_code_the_sdk_names_is_its_owners_code(
    mirrored: str, owner: type[VeilnetError]
) -> None:
    assert mirrored == owner.code


def test_every_worker_code_constant_is_checked_against_an_owner() -> None:
    named = {
        v for k, v in vars(sdk_errors).items() if k.startswith("WORKER_") and isinstance(v, str)
    }
    assert named == {code for code, _ in OWNERS}
    assert set(sdk_errors.WORKER_ERRORS) <= named


def test_the_core_and_the_worker_raise_the_protocol_classes() -> None:
    from veilnet.protocol import errors as wire

    assert core_errors.NotReady is wire.NotReady and worker_errors.RateLimited is wire.RateLimited


def test_the_sdk_refusal_is_not_the_cores_query_rejected() -> None:
    assert QueryRejected is WorkerRefused  # deprecated alias, still importable
    assert "QueryRejected" in veilnet.sdk.__all__ and "WorkerRefused" in veilnet.sdk.__all__
    assert not issubclass(WorkerRefused, core_errors.QueryRejected)
    assert WorkerRefused.code != core_errors.QueryRejected.code


def _body(code: str | None, **extra: Any) -> bytes:
    error: dict[str, Any] = {"message": "no"}
    if code is not None:
        error["code"] = code
    return json.dumps({"error": {**error, **extra}}).encode()


CASES: list[tuple[int, bytes, type[VeilnetError], str | None]] = [
    (400, _body(core_errors.QueryRejected.code), WorkerRefused, core_errors.QueryRejected.code),
    (410, _body(core_errors.KeyEpochExpired.code), WorkerRefused, core_errors.KeyEpochExpired.code),
    (403, _body(core_errors.NotAuthorized.code), WorkerRefused, core_errors.NotAuthorized.code),
    (503, _body(core_errors.NotReady.code), WorkerUnavailable, core_errors.NotReady.code),
    (409, _body(core_errors.NotReady.code), WorkerUnavailable, core_errors.NotReady.code),
    (
        413,
        _body(worker_errors.RequestTooLarge.code),
        RequestTooLarge,
        worker_errors.RequestTooLarge.code,
    ),
    (429, _body(worker_errors.RateLimited.code), RateLimited, worker_errors.RateLimited.code),
    (500, _body("internal_error"), WorkerUnavailable, "internal_error"),
    (502, b"<html>bad gateway</html>", WorkerUnavailable, None),
    (429, b"slow down", RateLimited, None),
    (413, b"", RequestTooLarge, None),
    (404, b"not json", WorkerRefused, None),
    (400, _body(None), WorkerRefused, None),
]


@pytest.mark.parametrize(("status", "body", "kind", "worker_code"), CASES)
def test_a_workers_refusal_maps_to_one_sdk_error(
    status: int, body: bytes, kind: type[VeilnetError], worker_code: str | None
) -> None:
    error = BaseClient.worker_error(status, body, WORKER)
    assert type(error) is kind
    assert error.details.get("worker_code") == worker_code
    assert WORKER in error.message
    if isinstance(error, WorkerRefused):
        assert error.worker_code == worker_code


def test_a_rate_limit_keeps_the_workers_wait() -> None:
    body = _body(worker_errors.RateLimited.code, retry_after_s=1.5)
    error = BaseClient.worker_error(429, body, WORKER)
    assert isinstance(error, RateLimited) and error.details["retry_after_s"] == 1.5
    refused = BaseClient.worker_error(400, _body("x", retry_after_s=1.5), WORKER)
    assert "retry_after_s" not in refused.details


def test_outcomes_are_read_in_one_place() -> None:
    applied = read_outcome(
        {"status": "applied", "ok": True, "result": 7, "events": [{"type": "e"}], "fuel": 3}
    )
    assert applied.is_applied and applied.ok and applied.result == 7 and applied.fuel == 3
    assert applied.events == ({"type": "e"},) and applied.error is None
    assert not read_outcome({"status": "pending"}).is_applied
    call = read_outcome({"ok": False, "error": {"code": "sandbox_agent_error", "message": "x"}})
    assert call.status is None and call.ok is False and call.events == () and call.fuel == 0
    failure = agent_failure(call.error)
    assert failure.details["agent_code"] == "sandbox_agent_error"
    assert agent_failure(None).details["agent_code"] == AgentFailed.code


@pytest.mark.parametrize(
    "value",
    [
        {"status": 1},
        {"ok": "yes"},
        {"events": {"a": 1}},
        {"fuel": "3"},
        {"fuel": True},
        {"error": "boom"},
    ],
)
def test_a_malformed_outcome_is_a_response_error(value: dict[str, Any]) -> None:
    with pytest.raises(ResponseInvalid):
        read_outcome(value)


def test_an_agent_has_one_id_a_0x_string_that_json_carries(local: Any) -> None:
    """``Agent.id`` is the id every call takes and JSON carries; the bytes ``contract_id`` warns,
    and bytes in a message or an init are a ValueError that names the fix, never a bare
    TypeError."""
    from veilnet.sdk import Client

    with Client(local.config(), wallet=ALICE) as client:
        agent = client.agent("0x" + local.contract_id.hex())
        assert agent.id == "0x" + local.contract_id.hex()
        assert json.loads(json.dumps({"peer": agent.id})) == {"peer": agent.id}
        assert client.agent(agent.id).id == agent.id
        with pytest.warns(DeprecationWarning, match="use Agent.id"):
            assert agent.contract_id == local.contract_id
        for build in (BaseClient.call_body, BaseClient.pack_init):
            with pytest.raises(ValueError, match=r"agent\.id, a 0x string"):
                build({"peer": local.contract_id})
