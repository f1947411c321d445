"""End to end on a real devnet (embedded chain, 2 workers, HTTP): SDK sync and async, the CLI,
and the attacks of the issue over the wire, each failing with its stable code."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from veilnet.chain.model import ContractDeployed
from veilnet.chain.sequencer import SequencerClient
from veilnet.crypto import Address
from veilnet.devnet import Devnet
from veilnet.protocol import envelopes as proto
from veilnet.protocol.chain import ChainTrust
from veilnet.sdk import (
    AgentFailed,
    AsyncClient,
    Client,
    QueryRejected,
    RequestTooLarge,
    ResponseInvalid,
    WorkerRefused,
    WorkerUnverified,
)
from veilnet.sdk import constants as limits

from .conftest import EXAMPLES, start_devnet

pytestmark = pytest.mark.slow


def test_network_json_has_the_documented_fields(devnet: Devnet) -> None:
    doc = json.loads(devnet.network_file.read_text())
    for key in ("chain_id", "rpc_url", "contracts", "workers", "gateway_url", "dev_accounts",
                "abi_dir", "price_api_url", "egress_roots_pem", "pccs_url", "pccs_roots_pem"):  # fmt: skip
        assert key in doc
    assert set(doc["contracts"]) == {"Registry", "Bus"} and len(doc["workers"]) == 2
    # every registration was judged under what the devnet's PCCS served, fetched over HTTPS
    # from inside the gatekeeper's core
    assert doc["pccs_url"].startswith("https://") and "BEGIN CERTIFICATE" in doc["pccs_roots_pem"]
    assert any("/tcb?" in path for path in devnet.pccs.requests)
    abi_dir = devnet.network_file.parent / doc["abi_dir"]
    assert json.loads((abi_dir / "Bus.json").read_text())  # the ABIs next to it, for DApps
    # every enclave starts from this anchor and applies only blocks the sequencer signed
    trust = ChainTrust.from_json(doc["chain_trust"])
    assert trust.policy == "sequencer" and trust.anchor_number == doc["genesis_block"] - 1
    signed = SequencerClient(doc["sequencer_url"]).signatures(1, 2)
    assert sorted(signed) == [1, 2]


def test_sdk_deploy_command_query(devnet: Devnet, tmp_path_factory: pytest.TempPathFactory) -> None:
    with Client.connect(devnet.network_file, allow_insecure_dev_tee=True) as client:
        agent = client.deploy(EXAMPLES / "counter.py", init={"start": 10})
        done = agent.command({"by": 5})
        assert done.applied and done.ok and done.result == 15
        # init arguments are sealed to the cluster by default; public_init publishes them
        public = client.deploy(EXAMPLES / "counter.py", init={"start": 31337}, public_init=True)
        published = {
            "0x" + bytes(e.contract_id).hex(): bytes(e.init_args)
            for e in client.logs("Bus", ContractDeployed)
        }
        assert b"31337" in published[public.id]
        assert b"start" not in published[agent.id]
        assert public.query({}).value["count"] == 31337
        assert client.init_outcome(agent.id) == {
            "status": "applied",
            "ok": True,
            "error": None,
        }
        # an init that fails on the workers (the local check skipped) is reported to its owner
        broken = tmp_path_factory.mktemp("agents") / "broken.py"
        broken.write_text("def init(a):\n    raise ValueError('no start given')\n")
        failed = client.deploy(broken)  # no local check: the SDK runs one only when asked
        outcome = client.init_outcome(failed.id)
        assert outcome["ok"] is False and outcome["error"]["code"] == "sandbox_agent_error"
        assert "no start given" in outcome["error"]["message"]
        # the cluster reports it on chain: the agent is paused there and says why
        deadline = time.monotonic() + 60
        while client.agent_info(failed.id)["init_failed"] is None:
            assert time.monotonic() < deadline, "the failed init never reached the chain"
            time.sleep(0.1)  # polls the chain; the deadline bounds it
        shown = client.agent_info(failed.id)
        assert shown["init_failed"] == "sandbox_agent_error" and shown["paused"] is True
        assert client.agent_info(agent.id)["init_failed"] is None
        with pytest.raises(WorkerRefused, match="paused"):
            failed.command({"by": 1})
        assert client.init_outcome(failed.id)["ok"] is False  # still readable
        assert done.events[0]["type"] == "counted" and done.proof is not None
        answer = agent.query({})
        assert answer.value["count"] == 15
        assert answer.worker.hex in set(devnet.network["workers"])
        verification = client.verify_worker(answer.worker)
        assert verification.confidence >= 1 and verification.tee == "tdx"
        with pytest.raises(AgentFailed) as info:
            agent.command({"by": "x"})
        assert info.value.code == "sdk_agent_failed"


def test_async_client_twin(devnet: Devnet) -> None:
    async def scenario() -> tuple[int, int]:
        async with AsyncClient.connect(devnet.network, allow_insecure_dev_tee=True) as client:
            agent = await client.deploy(EXAMPLES / "counter.js", init={"start": 1})
            first, second = await asyncio.gather(agent.command({"by": 1}), agent.command({"by": 2}))
            answer = await agent.query({})
            return first.result + second.result, answer.value["count"]

    total, count = asyncio.run(scenario())
    assert count == 4 and total in (2 + 4, 3 + 4)


def test_commands_in_a_batch(devnet: Devnet, monkeypatch: pytest.MonkeyPatch) -> None:
    """``Agent.commands``: ``push_commands`` transactions of up to ``MAX_COMMAND_BATCH`` (3
    here), consecutive nonces, sent in JSON-RPC batches (of 2 here, so sends and receipt polls
    span several); their outcomes read together, in order, an agent's refusal reported and
    not raised. A command too long for a batch sends each as its own ``push_command``."""
    from veilnet.sdk import _base

    monkeypatch.setattr(limits, "MAX_RPC_BATCH", 2)
    monkeypatch.setattr(_base, "MAX_COMMAND_BATCH", 3)
    with Client.connect(devnet.network, allow_insecure_dev_tee=True) as client:
        agent = client.deploy(EXAMPLES / "counter.js", init={"start": 0})
        assert agent.commands([]) == []
        done = agent.commands([{"by": 1}, {"by": 2}, {"by": "x"}, {"by": 3}])
        assert [d.seq for d in done] == list(range(done[0].seq, done[0].seq + 4))
        assert [d.result for d in done] == [1, 3, None, 6]
        assert [d.ok for d in done] == [True, True, False, True]
        assert done[2].error is not None and done[2].error["code"] == "sandbox_agent_error"
        assert all(d.applied and d.proof is not None for d in done)
        assert len({d.tx_hash for d in done[:3]}) == 1 and done[3].tx_hash != done[0].tx_hash
        assert agent.command({"by": 4}).result == 10  # the wallet's nonces carry on
        long = agent.commands([{"by": 1, "pad": "p" * 2100}, {"by": 1}])
        assert [d.result for d in long] == [11, 12] and long[0].tx_hash != long[1].tx_hash

    async def later() -> list[int]:
        async with AsyncClient.connect(devnet.network, allow_insecure_dev_tee=True) as client:
            handle = client.agent(agent.id)
            sent = await handle.commands([{"by": 1}] * 5, wait=False)
            assert not any(s.applied for s in sent)
            return [d.result for d in await handle.outcomes(sent)]

    assert asyncio.run(later()) == [13, 14, 15, 16, 17]


def test_commands_pay_the_command_fee(devnet: Devnet) -> None:
    """With a command fee set, ``agent.command`` pays it and ``agent.commands`` pays it per
    command (a batch sends the fee times its commands); the Bus keeps exactly that."""
    from veilnet.chain.anvil import dev_accounts
    from veilnet.sdk import Wallet

    admin = Wallet.from_key(dev_accounts(1)[0][1])  # the devnet's Registry owner
    with Client.connect(devnet.network, allow_insecure_dev_tee=True) as client:
        agent = client.deploy(EXAMPLES / "counter.js", init={"start": 0})
        bus = client.config.bus
        max_payload, fee, hook = (
            int(client.bus_view("max_payload")),
            int(client.bus_view("command_fee")),
            client.bus_view("fee_hook"),
        )

        def set_fee(wei: int) -> None:
            data = client.bus.encode("set_params", max_payload, wei, hook)
            client.transact(admin, bus, data)

        def balance() -> int:
            return int(client._rpc("eth_getBalance", bus.hex, "latest"), 16)

        before = balance()
        set_fee(fee + 7)
        try:
            assert agent.command({"by": 1}).result == 1
            assert [d.result for d in agent.commands([{"by": 1}] * 3)] == [2, 3, 4]
        finally:
            set_fee(fee)
        assert balance() - before == 4 * (fee + 7)


def test_attacks_over_http(devnet: Devnet) -> None:
    with Client.connect(devnet.network, allow_insecure_dev_tee=True) as client:
        agent = client.deploy(EXAMPLES / "counter.js", init={"start": 0})
        key = client.contract_key(bytes.fromhex(agent.id[2:]))
        name, url = next(iter(devnet.network["workers"].items()))
        worker = Address.parse(name)
        boot = client.worker_boot(worker, url)
        pending = client.build_query(
            key, kind="call", body=b"{}", head=client.head(), worker=worker, boot_id=boot
        )
        raw = httpx.post(url + "/v1/query", content=pending.request).content
        client.check(pending, raw, url=url, asked=None)
        # replayed query: the worker refuses it
        replay = httpx.post(url + "/v1/query", content=pending.request)
        with pytest.raises(QueryRejected) as info:
            raise client.worker_error(replay.status_code, replay.content, url)
        assert info.value.details["worker_code"] == "runtime_query_rejected"
        # sealed for another boot of the worker (as after a restart): refused, naming this boot
        stale = client.build_query(
            key, kind="call", body=b"{}", head=client.head(), worker=worker, boot_id=b"\1" * 32
        )
        answer = httpx.post(url + "/v1/query", content=stale.request)
        with pytest.raises(QueryRejected) as info:
            raise client.worker_error(answer.status_code, answer.content, url)
        assert info.value.details == {
            "worker_code": "runtime_query_stale",
            "boot_id": "0x" + boot.hex(),
        }
        # tampered response
        response = proto.QueryResponse.from_bytes(raw)
        bad = dataclasses.replace(response, block_number=response.block_number - 1)
        with pytest.raises(ResponseInvalid):
            client.check(pending, bad.to_bytes(), url=url, asked=None)
        # oversized request: refused by the worker with 413 (and by the SDK before sending)
        big = httpx.post(url + "/v1/query", content=b"\0" * (limits.MAX_QUERY_REQUEST + 1))
        with pytest.raises(RequestTooLarge):
            raise client.worker_error(big.status_code, big.content, url)
        # a worker address the registry does not know
        with pytest.raises(WorkerUnverified):
            client.verify_worker("0x" + os.urandom(20).hex(), url=url)


def _veil(args: list[str], network: Path) -> dict:
    from veilnet.cli.agent import agent
    from veilnet.cli.audit import audit
    from veilnet.cli.keys import keys
    from veilnet.cli.status import status

    commands = {"agent": agent, "status": status, "audit": audit, "keys": keys}
    runner = CliRunner()
    result = runner.invoke(
        commands[args[0]],
        [*args[1:], "--network", str(network), "--json", "--insecure-dev-tee"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout[result.stdout.index("{") :])


def test_cli_flows(devnet: Devnet) -> None:
    network = devnet.network_file
    deployed = _veil(["agent", "deploy", str(EXAMPLES / "vault.py")], network)
    cid = deployed["contract_id"]
    sent = _veil(
        ["agent", "command", cid, '{"op": "put", "key": "k", "value": "v"}', "--wait"], network
    )
    assert sent["applied"] and sent["ok"]
    got = _veil(["agent", "query", cid, '{"key": "k"}'], network)
    assert got["value"] == "v" and got["verified"]
    secret = _veil(["agent", "secrets", "set", cid, "api_key", "xyz"], network)
    assert secret["applied"] and secret["ok"]
    status = _veil(["status"], network)
    assert len(status["workers"]) == 3 and all(w["attested"] for w in status["workers"])
    assert any(c["id"] == cid for c in status["contracts"])
    audited = _veil(["audit"], network)
    assert audited["registrations"] == 3 and audited["failed"] == 0
    # anyone may evict a worker that lost its eligibility; an eligible one stays
    from veilnet.cli.keys import keys

    worker = status["workers"][0]["address"]
    refused = CliRunner().invoke(
        keys, ["evict", worker, "--network", str(network), "--insecure-dev-tee"]
    )
    assert refused.exit_code != 0
    assert "still eligible" in str(refused.exception) + refused.output


def test_cli_errors_are_one_line(devnet: Devnet) -> None:
    from veilnet.cli import _main

    runner = CliRunner()
    _main.SUBCOMMANDS.setdefault("agent", "veilnet.cli.agent:agent")
    result = runner.invoke(
        _main.cli,
        ["agent", "query", "0x" + "11" * 32, "{}", "--network", str(devnet.network_file)],
    )
    assert result.exit_code != 0
    assert isinstance(result.exception, Exception)
    assert getattr(result.exception, "code", None) == "sdk_contract_not_found"


def test_key_rotation_keeps_commands_and_queries_working(devnet: Devnet) -> None:
    with Client.connect(devnet.network, allow_insecure_dev_tee=True) as client:
        agent = client.deploy(EXAMPLES / "counter.js", init={"start": 0})
        before = agent.key(refresh=True).epoch
        summary = _veil(["keys", "rotate", "--timeout", "30"], devnet.network_file)
        assert summary["rotation"] >= 1
        assert agent.key(refresh=True).epoch > before
        assert agent.command({"by": 3}).result == 3
        assert agent.query({}).value["count"] == 3


@pytest.mark.requires_tool("anvil")
def test_sdk_on_anvil(tmp_path: Path) -> None:
    net = start_devnet(tmp_path, chain="anvil")
    try:
        with Client.connect(net.network, allow_insecure_dev_tee=True) as client:
            agent = client.deploy(EXAMPLES / "counter.js", init={"start": 2})
            assert agent.command({"by": 1}).result == 3
            assert agent.query({}).value["count"] == 3
    finally:
        net.stop()


def test_bench_query_quick() -> None:
    from veilnet.cli.bench import bench

    result = CliRunner().invoke(bench, ["query", "--quick", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["bench"] == "query"
    assert document["env"]["params"]["concurrent_clients"] == 32
    figures = document["figures"]
    for name in (
        "query_p50_ms",
        "query_p99_ms",
        "queries_per_s",
        "plain_p50_ms",
        "devnet_first_query_s",
        "queries_per_s_concurrent",
        "query_p50_ms_concurrent",
        "plain_per_s_concurrent",
        "plain_p50_ms_concurrent",
        "worker_cpu_ms_per_query",
        "plain_cpu_ms_per_query",
    ):
        assert isinstance(figures[name], float), name
        assert figures[name] > 0, name
