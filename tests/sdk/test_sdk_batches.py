"""Many transactions in one JSON-RPC batch (``transact_many``): a node takes or refuses each one
apart, so a refusal names the ones that were sent, and the wallet's nonces are read afresh."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from veilnet.sdk import ChainUnavailable, Client
from veilnet.sdk import constants as limits

from .conftest import ALICE, Local


def _rpc(request: httpx.Request, sent: list[Any]) -> httpx.Response:
    doc = json.loads(request.content)
    if isinstance(doc, list):  # the batch of eth_sendRawTransaction
        sent.append(doc)
        replies: list[dict[str, Any]] = []
        for i, call in enumerate(doc):
            if i == 1:
                error = {"code": -32000, "message": "insufficient funds for gas * price + value"}
                replies.append({"jsonrpc": "2.0", "id": call["id"], "error": error})
            else:
                replies.append({"jsonrpc": "2.0", "id": call["id"], "result": "0x" + "ab" * 32})
        return httpx.Response(200, json=list(reversed(replies)))  # any order: matched by id
    return _single(doc)


def _single(doc: dict[str, Any]) -> httpx.Response:
    """The node's answer to the one-call requests a wallet makes before a batch."""
    result = {
        "eth_estimateGas": "0x5208",
        "eth_getBlockByNumber": {"baseFeePerGas": "0x3b9aca00"},
        "eth_getTransactionCount": "0x7",
    }[doc["method"]]
    return httpx.Response(200, json={"jsonrpc": "2.0", "id": doc["id"], "result": result})


def test_a_refused_transaction_names_those_sent_and_resets_the_nonces(
    local: Local, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[Any] = []
    http = httpx.Client(transport=httpx.MockTransport(lambda request: _rpc(request, sent)))
    monkeypatch.setattr(limits, "MAX_RPC_BATCH", 3)
    with Client(local.config(), wallet=ALICE, http=http) as client:
        calls = [b"\x01", b"\x02\x02", b"\x03"]
        with pytest.raises(ChainUnavailable) as refused:
            client.transact_many(ALICE, client.config.bus, calls)
        assert "1 of" not in refused.value.message and "2 of 3" in refused.value.message
        hashes = refused.value.details["sent_tx_hashes"]
        assert len(hashes) == 2 and all(h.startswith("0x") and len(h) == 66 for h in hashes)
        assert len(sent) == 1 and len(sent[0]) == 3  # one batch: every call went out at once
        assert client.tx_nonce(ALICE, None) is None  # read afresh next time (the gap at 8)


@pytest.mark.parametrize("batch", [False, True])
def test_a_command_waits_once_for_mining_and_its_outcome_together(
    local: Local, monkeypatch: pytest.MonkeyPatch, batch: bool
) -> None:
    """``timeout`` bounds the whole call: what mining took is not given to the outcome
    wait again (both used to get the full ``timeout``)."""
    from veilnet.sdk._sync import _client as sync_client

    now = [1000.0]
    monkeypatch.setattr(sync_client.time, "monotonic", lambda: now[0])
    waited: list[float] = []
    with Client(local.config(), wallet=ALICE, http=httpx.Client()) as client:

        def send(*args: Any, timeout: float, **kwargs: Any) -> Any:
            now[0] += 45.0  # mining took 45 of the 60 seconds
            return [] if batch else object()

        def wait(sent: Any, *, wallet: Any, timeout: float) -> Any:
            waited.append(timeout)
            return sent

        monkeypatch.setattr(client, "send_commands" if batch else "send_command", send)
        monkeypatch.setattr(client, "wait_outcomes" if batch else "wait_outcome", wait)
        agent = client.agent("0x" + "11" * 32)
        if batch:
            agent.commands([{"by": 1}], timeout=60)
        else:
            agent.command({"by": 1}, timeout=60)
        now[0] += 100.0
        if batch:
            agent.commands([{"by": 1}], timeout=60)
        else:
            agent.command({"by": 1}, timeout=60)
    assert waited == [15.0, 15.0]


def test_waiting_for_a_batch_asks_one_receipt_until_the_last_is_mined(
    local: Local, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One wallet's transactions are mined in nonce order, so until the last one waiting is
    mined a poll asks the node for that one receipt, not for all of them; once it is, the
    rest are asked at once. After the first poll, each waits for a new block."""
    asked: list[int] = []
    polls = [0]
    reads = [0]
    polled_at: list[int] = []

    def head() -> int:
        return 100 + reads[0] // 2  # a new block every other read of the head

    def rpc(request: httpx.Request) -> httpx.Response:
        doc = json.loads(request.content)
        if isinstance(doc, dict) and doc["method"] == "eth_blockNumber":
            reads[0] += 1
            return httpx.Response(
                200, json={"jsonrpc": "2.0", "id": doc["id"], "result": hex(head())}
            )
        if isinstance(doc, list):
            if doc[0]["method"] == "eth_sendRawTransaction":
                replies = [
                    {"jsonrpc": "2.0", "id": c["id"], "result": "0x" + "ab" * 32} for c in doc
                ]
                return httpx.Response(200, json=replies)
            assert all(c["method"] == "eth_getTransactionReceipt" for c in doc)
            asked.append(len(doc))
            polled_at.append(head())
            polls[0] += 1
            mined = polls[0] >= 4
            receipt = {"status": "0x1", "logs": []} if mined else None
            return httpx.Response(
                200, json=[{"jsonrpc": "2.0", "id": c["id"], "result": receipt} for c in doc]
            )
        return _single(doc)

    monkeypatch.setattr(limits, "POLL_INTERVAL_S", 0.0)
    monkeypatch.setattr(limits, "SHARED_HEAD_S", -1.0)  # every wait reads the head itself
    http = httpx.Client(transport=httpx.MockTransport(rpc))
    with Client(local.config(), wallet=ALICE, http=http) as client:
        calls = [bytes([i]) for i in range(1, 41)]
        receipts = client.transact_many(ALICE, client.config.bus, calls)
    assert len(receipts) == 40
    assert asked == [1, 1, 1, 1, 39]  # the last until it is mined, then the rest
    assert polled_at == [100, 101, 102, 103, 103]  # one poll a block, the rest at once


def test_finality_checks_share_a_recent_head_read(
    local: Local, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outcome waits running at once ask the node for the head once per ``SHARED_HEAD_S``;
    a block a read already showed final needs no read at all."""
    from veilnet.sdk._sync import _client as sync_client

    now = [1000.0]
    monkeypatch.setattr(sync_client.time, "monotonic", lambda: now[0])
    heads = iter([11, 12])
    reads: list[int] = []

    def rpc(request: httpx.Request) -> httpx.Response:
        doc = json.loads(request.content)
        assert doc["method"] == "eth_blockNumber"
        reads.append(next(heads))
        return httpx.Response(
            200, json={"jsonrpc": "2.0", "id": doc["id"], "result": hex(reads[-1])}
        )

    http = httpx.Client(transport=httpx.MockTransport(rpc))
    with Client(local.config(), wallet=ALICE, http=http) as client:
        assert client.config.finality == 2
        assert client.is_final(10) is False  # head 11
        now[0] += limits.SHARED_HEAD_S / 2
        assert client.is_final(10) is False and reads == [11]  # the same read
        now[0] += limits.SHARED_HEAD_S
        assert client.is_final(10) is True and reads == [11, 12]
        now[0] += 60.0
        assert client.is_final(9) is True and client.is_final(10) is True
    assert reads == [11, 12]


def test_outcomes_are_asked_for_once_their_first_block_is_final(
    local: Local, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No worker applies a block before ``finality`` blocks are built on it, so waiting for
    outcomes reads the head and asks the workers only from then on."""
    from types import SimpleNamespace

    from veilnet.sdk import CommandResult

    heads = iter([10, 11, 12, 12])
    asked_at: list[int] = []
    head = [0]

    with Client(local.config(), wallet=ALICE, http=httpx.Client()) as client:
        assert client.config.finality == 2

        def read_head() -> int:
            head[0] = next(heads)
            return head[0]

        def ask(contract_id: bytes, kind: str, body: bytes, **kwargs: Any) -> Any:
            asked_at.append(head[0])
            return object()

        monkeypatch.setattr(limits, "OUTCOME_POLL_S", 0.0)
        monkeypatch.setattr(client, "head", read_head)
        monkeypatch.setattr(client, "ask", ask)
        monkeypatch.setattr(
            client, "outcomes", lambda opened, n: [SimpleNamespace(is_applied=True)] * n
        )
        monkeypatch.setattr(client, "outcome_proof", lambda opened, outcome: None)
        monkeypatch.setattr(
            client, "command_result", lambda sent, outcome, proof: f"applied:{sent.seq}"
        )
        sent = [
            CommandResult(contract_id=b"\x11" * 32, seq=seq, tx_hash=b"\x00" * 32, block_number=10)
            for seq in (1, 2)
        ]
        done = client.wait_outcomes(sent, wallet=ALICE, timeout=60)
    assert done == ["applied:1", "applied:2"]
    assert asked_at == [12]  # heads 10 and 11: block 10 not final, no query
