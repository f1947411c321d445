"""Rate limits seen from the SDK: a worker's 429 is waited out as it asks, within the client's
budget, and otherwise surfaces as RateLimited with the worker's wait (no real sleeping here)."""

from __future__ import annotations

import json

import httpx
import pytest

from veilnet.sdk import Client, RateLimited
from veilnet.sdk._sync import _client as sync_client

from .conftest import ALICE, Local

WORKER = "http://worker.test"


def _limited(retry_after: object) -> httpx.Response:
    error: dict[str, object] = {"code": "rate_limited", "message": "too many requests"}
    if retry_after is not None:
        error["retry_after_s"] = retry_after
    return httpx.Response(429, content=json.dumps({"error": error}).encode())


def _client(local: Local, replies: list[httpx.Response], **kwargs: object) -> tuple[Client, list]:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return replies.pop(0)

    http = httpx.Client(transport=httpx.MockTransport(answer))
    return Client(local.config(), wallet=ALICE, http=http, **kwargs), seen  # type: ignore[arg-type]


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waits: list[float] = []
    monkeypatch.setattr(sync_client.time, "sleep", waits.append)
    return waits


def test_a_rate_limited_query_is_retried_after_the_wait_the_worker_names(
    local: Local, slept: list[float]
) -> None:
    client, seen = _client(
        local, [_limited(0.25), _limited(0.5), httpx.Response(200, content=b"sealed answer")]
    )
    assert client._post_query(WORKER, b"sealed query") == b"sealed answer"
    assert slept == [0.25, 0.5]
    assert [r.content for r in seen] == [b"sealed query"] * 3


def test_waits_beyond_the_budget_raise_rate_limited_with_the_workers_wait(
    local: Local, slept: list[float]
) -> None:
    client, seen = _client(local, [_limited(2.0), _limited(2.0), _limited(2.0)])
    with pytest.raises(RateLimited) as info:
        client._post_query(WORKER, b"q")
    assert info.value.code == "sdk_rate_limited"
    assert info.value.details["retry_after_s"] == 2.0
    assert slept == [2.0, 2.0]  # 4 s of the 5 s budget; a third wait would pass it
    assert len(seen) == 3


@pytest.mark.parametrize("retry_after", [None, "soon", -1, True, 10_000])
def test_no_usable_wait_or_no_budget_raises_at_once(
    local: Local, slept: list[float], retry_after: object
) -> None:
    client, seen = _client(local, [_limited(retry_after)])
    with pytest.raises(RateLimited):
        client._post_query(WORKER, b"q")
    assert slept == [] and len(seen) == 1
    strict, _ = _client(local, [_limited(0.1)], rate_limit_wait_s=0.0)
    with pytest.raises(RateLimited):
        strict._post_query(WORKER, b"q")
    assert slept == []
