"""Follower: proofs against a tampering host, finality, reorgs (anvil snapshot/revert), resume."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from veilnet.chain import (
    AnvilChain,
    EmbeddedChain,
    Follower,
    HeaderHashMismatch,
    JSONRPCClient,
    LogProofFailed,
    ReorgBeyondFinality,
)
from veilnet.chain.model import Command
from veilnet.chain.rpc import InProcessTransport

from .conftest import Net, make_net

CLUSTER = b"\xc1" * 32


class TamperingTransport:
    """A host that rewrites JSON-RPC answers before the follower sees them."""

    def __init__(self, inner: InProcessTransport, edit: Any) -> None:
        self.inner, self.edit = inner, edit

    def request(self, body: Any) -> Any:
        reply = self.inner.request(body)
        items = reply if isinstance(reply, list) else [reply]
        calls = body if isinstance(body, list) else [body]
        for call, item in zip(calls, items, strict=True):
            if call["method"] == "eth_getBlockReceipts" and item.get("result"):
                item["result"] = self.edit(copy.deepcopy(item["result"]))
        return reply

    def close(self) -> None:
        return None


def _commands(net: Net, n: int) -> None:
    net.network.create_cluster(net.admin, CLUSTER, net.admin.address)
    cid = net.network.deploy_contract(net.user, salt=b"\x01" * 32, cluster_id=CLUSTER, code=b"x")
    for i in range(n):
        net.network.push_command(net.user, cid, b"cmd-%d" % i)


def _change_field(receipts: list[Any]) -> list[Any]:
    for receipt in receipts:
        for log in receipt["logs"]:
            log["data"] = log["data"][:-2] + ("00" if log["data"][-2:] != "00" else "01")
            return receipts
    return receipts


def _drop_log(receipts: list[Any]) -> list[Any]:
    for receipt in receipts:
        if receipt["logs"]:
            receipt["logs"].pop()
            return receipts
    return receipts


def _inject_log(receipts: list[Any]) -> list[Any]:
    for receipt in receipts:
        if receipt["logs"]:
            receipt["logs"].append(copy.deepcopy(receipt["logs"][0]))
            return receipts
    return receipts


@pytest.mark.parametrize("edit", [_change_field, _drop_log, _inject_log])
def test_tampered_logs_raise_and_apply_nothing(embedded: EmbeddedChain, edit: Any) -> None:
    net = make_net(embedded)
    _commands(net, 2)
    embedded.mine(2)
    client = JSONRPCClient(TamperingTransport(InProcessTransport(embedded.handle), edit))
    follower = Follower(client, net.deployment.addresses, start_block=0)
    with pytest.raises(LogProofFailed) as info:
        follower.poll()
    assert info.value.code == "chain_log_proof_failed"
    assert follower.next_block == 0 and follower.last_hash is None
    honest = Follower(embedded.client(), net.deployment.addresses, start_block=0)
    assert [e.payload for b in honest.poll() for e in b.events if isinstance(e, Command)] == [
        b"cmd-0",
        b"cmd-1",
    ]


def test_tampered_header_raises(embedded: EmbeddedChain) -> None:
    net = make_net(embedded)
    embedded.mine(3)

    class HeaderTamper(TamperingTransport):
        def request(self, body: Any) -> Any:
            reply = self.inner.request(body)
            for item in reply if isinstance(reply, list) else [reply]:
                result = item.get("result")
                if isinstance(result, dict) and "timestamp" in result:
                    result["timestamp"] = hex(int(result["timestamp"], 16) + 1)
            return reply

    client = JSONRPCClient(HeaderTamper(InProcessTransport(embedded.handle), None))
    with pytest.raises(HeaderHashMismatch) as info:
        Follower(client, net.deployment.addresses, start_block=0).poll()
    assert info.value.code == "chain_header_hash_mismatch"


def test_finality_depth_and_resume(embedded: EmbeddedChain) -> None:
    net = make_net(embedded)
    head = embedded.mine(1)
    follower = Follower(
        embedded.client(), net.deployment.addresses, start_block=0, finality_depth=2
    )
    blocks = follower.poll()
    assert blocks[-1].header.number == head - 2
    assert follower.poll() == []
    _commands(net, 3)
    head = embedded.mine(2)
    later = follower.poll()
    assert later[0].header.parent_hash == blocks[-1].header.hash
    assert later[-1].header.number == head - 2
    # Resume from a checkpointed position gives the same blocks.
    resumed = Follower(
        embedded.client(), net.deployment.addresses, start_block=later[0].header.number
    )
    assert resumed.poll() == later


def _reorg_setup(anvil: AnvilChain) -> tuple[Net, Follower]:
    net = make_net(anvil)
    _commands(net, 1)
    anvil.mine(2)
    follower = Follower(anvil.client(), net.deployment.addresses, start_block=0, finality_depth=2)
    follower.poll()
    return net, follower


@pytest.mark.slow
def test_reorg_above_finality_is_invisible(anvil: AnvilChain) -> None:
    net, follower = _reorg_setup(anvil)
    snap = anvil.snapshot()
    cid = net.network.contract_id_for(net.user.address, b"\x01" * 32)
    net.network.push_command(net.user, cid, b"orphaned")  # one block deep: not final yet
    assert not [e for b in follower.poll() for e in b.events if isinstance(e, Command)]
    anvil.revert(snap)
    net.user.reset_nonce()
    net.network.push_command(net.user, cid, b"canonical")
    anvil.mine(2)
    payloads = [e.payload for b in follower.poll() for e in b.events if isinstance(e, Command)]
    assert payloads == [b"canonical"]


@pytest.mark.slow
def test_reorg_below_finality_is_detected(anvil: AnvilChain) -> None:
    net, follower = _reorg_setup(anvil)
    snap = anvil.snapshot()
    cid = net.network.contract_id_for(net.user.address, b"\x01" * 32)
    net.network.push_command(net.user, cid, b"finalized")
    anvil.mine(2)
    applied = follower.poll()
    assert any(isinstance(e, Command) for b in applied for e in b.events)
    anvil.revert(snap)
    net.user.reset_nonce()
    net.network.push_command(net.user, cid, b"rewritten")
    anvil.mine(3)
    position = follower.next_block
    with pytest.raises(ReorgBeyondFinality) as info:
        follower.poll()
    assert info.value.code == "chain_reorg_beyond_finality"
    assert follower.next_block == position
