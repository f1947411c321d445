"""A whole network of worker hosts on the embedded chain: registration, endorsement, cluster
keys, a Python agent, commands, queries over HTTP, replicas agreeing, restart from checkpoint,
a late joiner taking a snapshot, and no key material on disk or in the logs."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from eth_account import Account
from eth_hash.auto import keccak

from veilnet.chain import ContractReverted
from veilnet.chain.consumer import deploy_consumer
from veilnet.cli.agent import agent as agent_cli
from veilnet.cli.cluster import policy as cluster_policy
from veilnet.cli.consumer import consumer as consumer_cli
from veilnet.codec import abi_decode, encode
from veilnet.crypto import SecretKey
from veilnet.errors import VeilnetError
from veilnet.sdk import Client, NetworkConfig, TransactionReverted
from veilnet.worker import WorkerHost, bootstrap_network, cluster_id, dev_measurement

from .conftest import OWNER_FUNDED, Net, core_of, deploy_counter, query_over_http, send_command

C1 = cluster_id("c1")


def _bootstrap(
    net: Net,
    *,
    members: int = 2,
    suite: int = 1,
    every_host: dict[str, Any] | None = None,
    **last_worker: Any,
) -> list[WorkerHost]:
    """Gatekeeper and members of c1 bootstrapped; ``every_host`` overrides every host's config
    (network parameters), ``last_worker`` the last one's."""
    shared = every_host or {}
    hosts = [net.host("gk", 0, **shared)] + [
        net.host(f"w{i}", i, **shared, **(last_worker if i == members else {}))
        for i in range(1, members + 1)
    ]
    result = bootstrap_network(
        net.network.client,
        net.deployment,
        net.admin_key,
        gatekeeper=hosts[0].address,
        clusters={"c1": [h.address for h in hosts[1:]]},
        measurements=[dev_measurement()],
        suite=suite,
        mine=net.chain.mine,
        poll_interval=0.02,
        timeout=120,
    )
    assert result.gatekeeper.hex == hosts[0].address
    assert [a.hex for a in result.clusters[C1]] == [h.address for h in hosts[1:]]
    return hosts


def _network_file(net: Net) -> Path:
    """A network.json for the SDK and the CLI (what ``veil devnet`` writes, in short)."""
    addresses = net.deployment.addresses
    document = {
        "chain_id": addresses.chain_id,
        "rpc_url": net.url,
        "contracts": {"Registry": addresses.registry.hex, "Bus": addresses.bus.hex},
        "genesis_block": net.deployment.genesis_block,
        "clusters": ["0x" + C1.hex()],
    }
    path = net.root / "network.json"
    path.write_text(json.dumps(document))
    return path


def _keyed(contract: bytes, *hosts: WorkerHost) -> bool:
    for host in hosts:
        with host.lock:
            info = core_of(host).contracts.get(contract)
            if info is None or info.epoch == 0 or contract not in core_of(host).runtimes:
                return False
    return True


def _applied(contract: bytes, seq: int, *hosts: WorkerHost) -> bool:
    for host in hosts:
        with host.lock:
            runtime = core_of(host).runtimes.get(contract)
            if runtime is None or seq not in runtime.outcomes:
                return False
    return True


def _count(host: WorkerHost, contract: bytes) -> bytes | None:
    with host.lock:
        return core_of(host).runtimes[contract].state.values.get("count")


def _same_head(net: Net, *hosts: WorkerHost) -> None:
    net.settle(lambda: len({h.applied_block for h in hosts}) == 1, hosts=list(hosts))


def test_registration_commands_queries_and_replicas_agree(net: Net) -> None:
    gk, w1, w2 = _bootstrap(net)
    for host in (gk, w1, w2):
        info = net.network.view("Registry", "workers", host.address)
        assert int(info[4]) == 1  # endorsed at confidence 1 by the gatekeeper's master key
    contract = deploy_counter(net)
    net.settle(lambda: _keyed(contract, w1, w2))
    seq = send_command(net, contract, {"by": 5}, nonce=1)
    net.settle(lambda: _applied(contract, seq, w1, w2))

    answer, response = query_over_http(net, w1.api_url, contract)
    assert answer == {"events": [], "fuel": answer["fuel"], "ok": True, "result": answer["result"]}
    assert answer["result"]["count"] == 5
    assert "0x" + response.worker.hex() == w1.address.lower()
    outcome, _ = query_over_http(net, w2.api_url, contract, kind="outcome", body=encode(seq))
    assert outcome["status"] == "applied" and outcome["ok"] and outcome["result"] == 5
    assert outcome["events"][0]["type"] == "counted"

    _same_head(net, w1, w2)
    assert core_of(w1).cluster_commitment(C1) == core_of(w2).cluster_commitment(C1) is not None
    info = httpx.get(f"{w1.api_url}/v1/info").json()
    assert info["address"] == w1.address and info["cluster"] == "0x" + C1.hex()
    assert info["status"] == "ok" and info["last_applied_block"] == w1.applied_block
    assert (
        info["state_commitments"]["0x" + C1.hex()]
        == "0x" + core_of(w1).cluster_commitment(C1).hex()
    )
    public = httpx.get(f"{w2.api_url}/v1/contracts/0x{contract.hex()}").json()
    assert public["epoch"] == 1 and public["cluster"] == "0x" + C1.hex()
    assert public["public_key"] == "0x" + net.network.published_key("contracts", contract)[0].hex()
    health = httpx.get(f"{gk.api_url}/v1/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    metrics = httpx.get(f"{w1.api_url}/metrics").text
    assert 'veil_worker_queries_total{outcome="ok"} 1.0' in metrics
    assert "veil_worker_query_call_size_count 1.0" in metrics  # one query, alone
    assert "veil_worker_blocks_applied_total" in metrics
    assert 'veil_worker_egress_posted_total{status="landed"}' in metrics


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def test_concurrent_queries_are_each_answered_once_batched_or_not(net: Net) -> None:
    """Queries that reach a worker at once through its API (some waiting while the enclave
    computes, then sent together as one ``queries`` call) are each answered for their own
    request, verified and opened by the client; the enclave saw each query once."""
    _, w1, w2 = _bootstrap(net)
    contract = deploy_counter(net)
    net.settle(lambda: _keyed(contract, w1, w2))
    before = httpx.get(f"{w1.api_url}/metrics").text
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda _: query_over_http(net, w1.api_url, contract), range(48)))
    assert all(answer["ok"] and answer["result"]["count"] == 0 for answer, _ in answers)
    assert len({response.request_id for _, response in answers}) == 48
    after = httpx.get(f"{w1.api_url}/metrics").text
    sent = "veil_worker_query_call_size_sum"
    assert _metric(after, sent) - _metric(before, sent) == 48
    ok = 'veil_worker_queries_total{outcome="ok"}'
    assert _metric(after, ok) - _metric(before, ok) == 48


def test_queries_reach_the_enclave_the_host_started_after_a_crash(net: Net) -> None:
    """The API's query lane asks the host for its enclave on every call: once the host has
    replaced an enclave process that died, queries go to the new one."""
    _, w1, w2 = _bootstrap(net, enclave_mode="process", engine=None)  # w2: its own process
    contract = deploy_counter(net)

    def keyed() -> bool:
        with contextlib.suppress(VeilnetError):
            return _keyed(contract, w1) and w2.enclave.contract(contract).epoch > 0
        return False

    net.settle(keyed)
    query_over_http(net, w2.api_url, contract)  # the lane exists, bound to the API's loop
    crashed = w2.enclave
    os.kill(crashed.link.pid, signal.SIGKILL)  # type: ignore[attr-defined]
    net.settle(lambda: w2.enclave is not crashed and w2.status() == "ok")
    answer, response = query_over_http(net, w2.api_url, contract)
    assert answer["ok"] and answer["result"]["count"] == 0
    assert "0x" + response.worker.hex() == w2.address.lower()


def test_a_post_quantum_hybrid_cluster_works_end_to_end(net: Net) -> None:
    """A cluster created with suite 2 posts ML-KEM-768 + X25519 keys (1,216 bytes) for
    itself and its agents; the Registry stores their hashes, so they fit the gas the Bus
    forwards; commands and queries sealed to them work on both replicas."""
    _, w1, w2 = _bootstrap(net, suite=2)
    cluster_key, epoch = net.network.published_key("clusters", C1)
    assert len(cluster_key) == 1216 and epoch == 1
    record = net.network.view("Registry", "clusters", C1)
    assert record[3] == keccak(cluster_key)
    contract = deploy_counter(net)
    net.settle(lambda: _keyed(contract, w1, w2))
    public, epoch = net.network.published_key("contracts", contract)
    assert len(public) == 1216 and epoch == 1
    seq = send_command(net, contract, {"by": 7}, nonce=1)
    net.settle(lambda: _applied(contract, seq, w1, w2))
    with w1.lock:
        assert core_of(w1).contracts[contract].epochs[1].public_key == public
    for host in (w1, w2):
        answer, _ = query_over_http(net, host.api_url, contract)
        assert answer["result"]["count"] == 7


def test_restart_from_checkpoint_resumes_without_reapplying(net: Net) -> None:
    gk, w1, w2 = _bootstrap(net)
    contract = deploy_counter(net)
    net.settle(lambda: _keyed(contract, w1, w2))
    first = send_command(net, contract, {"by": 5}, nonce=1)
    net.settle(lambda: _applied(contract, first, w1, w2))
    w2.stop()  # drains the relay and writes a final checkpoint
    checkpoint = w2.storage.latest_checkpoint()
    assert checkpoint is not None and checkpoint.block_number == w2.applied_block
    net.hosts.remove(w2)

    second = send_command(net, contract, {"by": 3}, nonce=2)
    net.settle(lambda: _applied(contract, second, w1), hosts=[gk, w1])
    restarted = net.host("w2", 2)
    assert restarted.address == w2.address  # same sealed identity
    assert restarted.restored_from == checkpoint.block_number
    net.settle(lambda: _applied(contract, second, restarted))
    _same_head(net, w1, restarted)
    assert _count(restarted, contract) == _count(w1, contract) == b"8"  # 5 + 3, once each
    outcomes = core_of(restarted).runtimes[contract].outcomes
    assert sorted(outcomes) == sorted(core_of(w1).runtimes[contract].outcomes)
    assert {first, second} <= set(outcomes) and outcomes[second].result == 8
    assert core_of(restarted).cluster_commitment(C1) == core_of(w1).cluster_commitment(C1)
    assert core_of(restarted).state_root() == core_of(w1).state_root()
    answer, _ = query_over_http(net, restarted.api_url, contract)
    assert answer["result"]["count"] == 8


def test_a_late_joiner_takes_the_cluster_state_from_a_member_found_on_chain(net: Net) -> None:
    """w3 joins a cluster with history: its host finds w1's API URL on chain, fetches w1's
    snapshot (sealed to w3's core) and hands it over; the core takes it once w1's commitment
    for that height is on chain. From then on both serve the same state."""
    net.defaults["commitment_interval"] = 4
    gk, w1 = _bootstrap(net, members=1)
    contract = deploy_counter(net)
    net.settle(lambda: _keyed(contract, w1))
    seq = send_command(net, contract, {"by": 4}, nonce=1)
    net.settle(lambda: _applied(contract, seq, w1))
    w3 = net.host("w3", 3)
    bootstrap_network(
        net.network.client,
        net.deployment,
        net.admin_key,
        gatekeeper=gk.address,
        clusters={"c1": [w1.address, w3.address]},
        mine=net.chain.mine,
        poll_interval=0.02,
    )
    net.settle(lambda: w3.syncs == 1 and _applied(contract, seq, w3))
    _same_head(net, w1, w3)
    assert _count(w3, contract) == b"4"
    assert core_of(w3).cluster_commitment(C1) == core_of(w1).cluster_commitment(C1)
    answer, _ = query_over_http(net, w3.api_url, contract)
    assert answer["result"]["count"] == 4


def _key_material(host: WorkerHost) -> dict[str, bytes]:
    """Secret bytes held by a core (test-only access to ``core.keys`` internals)."""
    keys = core_of(host).keys
    found: dict[str, SecretKey] = {"identity": keys.identity}
    found.update({f"master{r}": k for r, k in keys.masters.items()})
    found.update({f"cluster{e}": k for (_, e), k in keys.cluster_keys.items()})
    for contract_id, info in core_of(host).contracts.items():
        key = keys.contract_key(info.cluster, contract_id, info.epoch)
        if key is not None:
            found[f"contract{contract_id.hex()[:8]}"] = key
    material: dict[str, bytes] = {}
    for name, key in found.items():
        material[f"{name}.seed"] = key._seed_bytes()
        material[f"{name}.scalar"] = key._private_scalar()
        for index, seed in enumerate(key._hpke_seeds()):
            material[f"{name}.hpke{index}"] = seed
    return material


def test_no_key_material_on_disk_or_in_logs(
    net: Net, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    hosts = _bootstrap(net)
    contract = deploy_counter(net)
    net.settle(lambda: _keyed(contract, *hosts[1:]))
    seq = send_command(net, contract, {"by": 2}, nonce=1)
    net.settle(lambda: _applied(contract, seq, *hosts[1:]))
    query_over_http(net, hosts[1].api_url, contract)
    secrets: dict[str, bytes] = {}
    for host in hosts:
        for name, value in _key_material(host).items():
            secrets[f"{host.config.name}.{name}"] = value
    assert any(".cluster1." in n for n in secrets) and any(".master0." in n for n in secrets)
    net.stop_all()  # final checkpoints are written now
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name.startswith("ckpt-") for p in files)
    assert any(p.name == "relay.journal" for p in files)
    logs = "\n".join(record.getMessage() for record in caplog.records).encode()
    assert logs, "expected some log lines to scan"
    for name, secret in secrets.items():
        forms = (secret, secret.hex().encode(), secret.hex().upper().encode())
        for path in files:
            data = path.read_bytes()
            assert not any(f in data for f in forms), f"{name} found in {path.name}"
        assert not any(f in logs for f in forms), f"{name} found in the logs"


class _FlakyEngine:
    """The real engine, except that invocations asking for it abort the way a crashed engine
    does (non-deterministic: the core refuses to record anything; the wall-clock backstop only
    makes the core re-run a command, tests/runtime/test_runtime_hostile.py)."""

    def __init__(self, inner: Any, failures: int) -> None:
        self.inner = inner
        self.failures = failures

    def load(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner.load(*args, **kwargs)

    def holds_instance(self, agent: Any) -> bool:
        return bool(self.inner.holds_instance(agent))

    def park(self, agent: Any) -> bool:
        return bool(self.inner.park(agent))

    def footprint(self, agent: Any) -> int:
        return int(self.inner.footprint(agent))

    def invoke(
        self, agent: Any, entry: Any, payload: Any, host: Any, ctx: Any, limits: Any = None
    ) -> Any:
        from veilnet.sandbox.errors import SandboxInternalError

        if isinstance(payload, dict) and payload.get("flaky") and self.failures > 0:
            self.failures -= 1
            raise SandboxInternalError("the engine crashed")
        return self.inner.invoke(agent, entry, payload, host, ctx, limits)


def test_a_failed_block_is_retried_from_the_newest_checkpoint(net: Net) -> None:
    flaky = _FlakyEngine(net.engine, failures=1)
    _gk, w1, w2 = _bootstrap(net, engine=flaky)
    contract = deploy_counter(net)
    net.settle(lambda: _keyed(contract, w1, w2))
    seq = send_command(net, contract, {"by": 2, "flaky": True}, nonce=1)
    net.settle(lambda: _applied(contract, seq, w1, w2))
    assert flaky.failures == 0 and not w2.halted
    assert _count(w1, contract) == _count(w2, contract) == b"2"
    _same_head(net, w1, w2)
    assert core_of(w1).state_root() == core_of(w2).state_root()


def test_a_block_that_keeps_failing_halts_the_worker(net: Net) -> None:
    gk, w1, w2 = _bootstrap(net, engine=_FlakyEngine(net.engine, failures=1000))
    contract = deploy_counter(net)
    net.settle(lambda: _keyed(contract, w1, w2))
    seq = send_command(net, contract, {"by": 2, "flaky": True}, nonce=1)
    net.settle(lambda: _applied(contract, seq, w1) and w2.halted, hosts=[gk, w1])
    assert w2.status() == "halted"
    health = httpx.get(f"{w2.api_url}/v1/health")
    assert health.status_code == 503 and health.json()["status"] == "halted"
    assert _count(w1, contract) == b"2"


def test_a_worker_re_attests_before_its_endorsement_lapses(net: Net) -> None:
    """A worker whose collateral expires within the re-attestation margin (here: it is valid for
    three days) sends ``reattest_worker`` by itself, its fresh quote is judged and endorsed, and
    it stays in its cluster without a new key epoch."""
    from veilnet.chain import model as cm
    from veilnet.runtime.records import WorkerStanding
    from veilnet.tee import DevEnclave

    from .conftest import NETWORK_SEED

    short = DevEnclave(NETWORK_SEED, allow_insecure_dev_tee=True, collateral_validity_s=3 * 86400)
    gk, w1 = _bootstrap(net, members=1, enclave=short)
    address = bytes.fromhex(w1.address[2:])

    def reattested() -> list[bytes]:
        """Quote hashes of w1's ``WorkerReattested`` events on chain."""
        logs = net.network.client.call(
            "eth_getLogs",
            {
                "fromBlock": "0x0",
                "address": net.deployment.addresses.registry.hex,
                "topics": ["0x" + cm.event_topic(cm.WorkerReattested).hex()],
            },
        )
        return [bytes.fromhex(log["data"][2:66]) for log in logs]

    def re_endorsed() -> bool:
        """The gatekeeper endorsed w1's fresh quote, and w1 holds the cluster's current key."""
        quotes = reattested()
        with gk.lock:
            now = core_of(gk).workers[address]
            epoch = core_of(gk).clusters[C1].current_epoch
        with w1.lock:
            keyed = epoch >= 1 and core_of(w1).keys.cluster_key(C1, epoch) is not None
        return (
            keyed
            and bool(quotes)
            and now.quote_hash == quotes[-1]
            and now.standing is WorkerStanding.ENDORSED
            and now.confidence >= 1
        )

    net.settle(re_endorsed)
    with gk.lock:
        assert core_of(gk).clusters[C1].current_epoch == 1  # never keyed out: no new epoch


def test_registration_deposits_come_back_and_owners_choose_who_deploys(net: Net) -> None:
    """Governance asks a deposit of each registration: worker hosts pay it with their
    registration, and once the gatekeeper endorsed them it comes back to their operators, who
    claim it through the SDK. A cluster owner closes its cluster to strangers' agents and lets
    one deployer in."""
    deposit = 10**15
    net.network.set_registration_deposit(net.network.sender(net.admin_key), deposit)
    gk, w1, w2 = _bootstrap(net)
    for host in (gk, w1, w2):
        assert net.network.view("Registry", "refund_of", host.operator) == deposit
    addresses = net.deployment.addresses
    config = NetworkConfig(
        chain_id=addresses.chain_id,
        rpc_url=net.url,
        registry=addresses.registry,
        bus=addresses.bus,
        genesis_block=net.deployment.genesis_block,
        clusters=(C1,),
    )
    gk.stop()  # its operator's key (dev account 2) pays its relay's gas: one sender at a time
    net.hosts.remove(gk)
    with Client(config, wallet=net.account(2)) as operator:
        assert operator.claim_refund() == deposit
        with pytest.raises(TransactionReverted, match="nothing to claim"):
            operator.claim_refund()
        with pytest.raises(TransactionReverted, match="not cluster owner"):
            operator.set_deploy_policy(None, open=False)
    stranger, friend = net.account(8), net.account(9)
    friend_address = net.network.sender(friend).address
    stranger_address = net.network.sender(stranger).address
    with Client(config, wallet=net.admin_key) as owner:  # the admin owns c1 (bootstrap)
        owner.set_deploy_policy(None, open=False)
        owner.set_deploy_policy(None, deployer=friend_address, allowed=True)
        policy = owner.deploy_policy(None, deployers=[friend_address])
        assert policy == {
            "cluster": "0x" + C1.hex(),
            "open": False,
            "allowed": {friend_address.hex: True},
        }
    # the same through the CLI, as a cluster owner would run it
    cli = ["--network", str(_network_file(net)), "--key", "0x" + net.admin_key.hex()]
    shown = CliRunner().invoke(cluster_policy, [*cli, "--allow", stranger_address.hex, "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["allowed"] == {stranger_address.hex: True}
    shown = CliRunner().invoke(cluster_policy, [*cli, "--deny", stranger_address.hex, "--json"])
    assert json.loads(shown.stdout) == {
        "cluster": "0x" + C1.hex(),
        "open": False,
        "allowed": {stranger_address.hex: False},
    }
    code = b"py\x00def call(state, msg):\n    return 1\n"
    with pytest.raises(ContractReverted, match="deploy not allowed"):
        net.network.deploy_contract(
            net.network.sender(stranger), salt=b"\x01" * 32, cluster_id=C1, code=code
        )
    net.network.deploy_contract(
        net.network.sender(friend), salt=b"\x01" * 32, cluster_id=C1, code=code
    )


_JOB_AGENT = (
    b"def init(args):\n"
    b"    state.set('count', (args or {}).get('start', 0))\n"
    b"\n"
    b"def handle(cmd):\n"
    b"    state.set('count', (state.get('count') or 0) + cmd.get('by', 1))\n"
    b"\n"
    b"def job(request):\n"
    b"    if request['payload'] == 'fail':\n"
    b"        raise ValueError('asked to fail')\n"
    b"    return {'count': state.get('count'), 'asked': request['payload']}\n"
)


def test_an_evm_request_gets_one_result_from_the_racing_members(net: Net) -> None:
    """An EVM contract asks an agent for work: both members of its cluster run the agent's
    ``job`` on committed state and deliver the result signed by the contract key; the consumer
    takes exactly one. A job that throws answers with its error, so no request hangs."""
    _, w1, w2 = _bootstrap(net)
    contract = deploy_counter(net, start=41, source=_JOB_AGENT)
    net.settle(lambda: _keyed(contract, w1, w2))
    requester = net.network.sender(net.account(9))
    consumer = deploy_consumer(net.network, requester, contract, ttl=60)
    asked, _ = consumer.request(requester, b'{"pair": "ETH/USD"}')
    failing, _ = consumer.request(requester, b'"fail"')
    net.settle(lambda: not consumer.waiting(asked) and not consumer.waiting(failing))
    expected = {"ok": True, "result": {"asked": {"pair": "ETH/USD"}, "count": 41}}
    canonical = json.dumps(expected, sort_keys=True, separators=(",", ":")).encode()
    assert consumer.state(asked) == keccak(canonical)
    logs = net.network.client.call(
        "eth_getLogs",
        {"address": consumer.address.hex, "fromBlock": "0x0", "toBlock": "latest"},
    )
    fulfilled_topic = "0x" + keccak(b"Fulfilled(bytes32,bytes)").hex()
    results = {
        bytes.fromhex(log["topics"][1][2:]): json.loads(
            abi_decode(["bytes"], bytes.fromhex(log["data"][2:]))[0]
        )
        for log in logs
        if log["topics"][0] == fulfilled_topic
    }
    assert results[asked] == expected
    assert results[failing]["ok"] is False
    assert "asked to fail" in results[failing]["error"]["message"]
    # both members ran both jobs; the consumer took exactly one result of each
    assert len(results) == 2 and sum(log["topics"][0] == fulfilled_topic for log in logs) == 2
    metrics = [httpx.get(f"{host.api_url}/metrics").text for host in (w1, w2)]
    assert any('veil_worker_jobs_total{outcome="delivered"}' in text for text in metrics)


def test_consumers_through_the_sdk_and_the_cli(net: Net) -> None:
    """A DApp developer's path: deploy a consumer of an agent (SDK), ask it for work and list
    its requests (``veil consumer request`` / ``requests``) until the workers' result landed."""
    _, w1, w2 = _bootstrap(net)
    contract = deploy_counter(net, start=7, source=_JOB_AGENT)
    net.settle(lambda: _keyed(contract, w1, w2))
    path = _network_file(net)
    key = "0x" + net.account(9).hex()
    with Client.connect(path, wallet=key) as client:
        address = client.deploy_consumer("0x" + contract.hex(), ttl=40)
    cli = ["--network", str(path), "--key", key]
    asked = CliRunner().invoke(consumer_cli, ["request", address.hex, '{"n": 1}', *cli, "--json"])
    assert asked.exit_code == 0, asked.output
    request_id = json.loads(asked.stdout)["request_id"]

    def listed() -> list[dict[str, Any]]:
        shown = CliRunner().invoke(consumer_cli, ["requests", address.hex, *cli, "--json"])
        assert shown.exit_code == 0, shown.output
        rows: list[dict[str, Any]] = json.loads(shown.stdout)
        return rows

    net.settle(lambda: listed()[0]["status"] == "fulfilled")
    (row,) = listed()
    expected = {"ok": True, "result": {"asked": {"n": 1}, "count": 7}}
    canonical = json.dumps(expected, sort_keys=True, separators=(",", ":")).encode()
    assert row["request_id"] == request_id and row["result_hash"] == "0x" + keccak(canonical).hex()


def test_a_standing_job_feeds_its_consumer_every_n_blocks(net: Net) -> None:
    """The agent's owner schedules a job every 3 blocks: the members run it at each tick and
    the consumer takes the tick results in order; once cancelled, no tick is run."""
    _, w1, w2 = _bootstrap(net)
    contract = deploy_counter(net, start=5, source=_JOB_AGENT)
    net.settle(lambda: _keyed(contract, w1, w2))
    consumer = deploy_consumer(net.network, net.network.sender(net.account(9)), contract, ttl=30)
    # the owner (dev account 1 deployed it) schedules through the CLI
    cli = ["--network", str(_network_file(net)), "--key", "0x" + net.account(1).hex(), "--json"]
    agent_id = "0x" + contract.hex()
    made = CliRunner().invoke(
        agent_cli,
        [
            "schedule",
            agent_id,
            "--consumer",
            consumer.address.hex,
            "--every",
            "3",
            "--payload",
            '"feed"',
            *cli,
        ],
    )
    assert made.exit_code == 0, made.output
    schedule_id = json.loads(made.stdout)["schedule_id"]
    listed = CliRunner().invoke(agent_cli, ["schedules", agent_id, *cli])
    assert json.loads(listed.stdout) == [
        {
            "schedule_id": schedule_id,
            "consumer": consumer.address.hex,
            "every": 3,
            "start": json.loads(listed.stdout)[0]["start"],
            "active": True,
        }
    ]

    def last_tick() -> int:
        return int(consumer.handle.call(net.network.client, "last_tick", schedule_id))

    net.settle(lambda: last_tick() > 0)
    first = last_tick()
    net.settle(lambda: last_tick() > first)
    expected = {"ok": True, "result": {"asked": "feed", "count": 5}}
    canonical = json.dumps(expected, sort_keys=True, separators=(",", ":")).encode()
    assert consumer.state(consumer.tick_id(schedule_id, last_tick())) == keccak(canonical)
    ended = CliRunner().invoke(agent_cli, ["unschedule", str(schedule_id), *cli])
    assert ended.exit_code == 0, ended.output
    stopped = last_tick()
    for _ in range(12):
        net.chain.mine(1)
    net.settle(lambda: True)
    assert last_tick() == stopped  # the consumer takes no tick of a cancelled schedule


_FETCH_AGENT = (
    b"def init(args):\n"
    b"    pass\n"
    b"\n"
    b"def query(req):\n"
    b"    return http.fetch([{'url': u, 'headers': {'x-api-key': req['key']}}\n"
    b"                       for u in req['urls']])\n"
)


def test_an_agent_fetches_https_through_its_worker_within_the_owners_allowlist(net: Net) -> None:
    """A real worker host relays an agent's HTTPS (TLS ended in its core, certificates checked
    against the network's egress roots): nothing is reached until the owner lists the host with
    ``veil agent egress allow``; then the price arrives, a stalled server times out as an error
    value, and ``veil agent info`` shows the list."""
    from veilnet.testing.https import LocalOrigin

    with LocalOrigin(api_key="k-123", stall_s=5.0) as origin:
        roots = {"egress_roots": origin.ca_pem, "fetch_timeout_s": 0.5}
        _, w1 = _bootstrap(net, members=1, every_host=roots)
        contract = deploy_counter(net, source=_FETCH_AGENT)
        net.settle(lambda: _keyed(contract, w1))
        agent_id = "0x" + contract.hex()
        ask = {"key": "k-123", "urls": [origin.url("/price"), origin.url("/slow")]}

        def fetched() -> list[dict[str, Any]]:
            answer, _ = query_over_http(net, w1.api_url, contract, body=json.dumps(ask).encode())
            assert answer["ok"] is True, answer
            result: list[dict[str, Any]] = answer["result"]
            return result

        assert [r["error"]["code"] for r in fetched()] == ["http_host_not_allowed"] * 2
        assert origin.received == []
        cli = ["--network", str(_network_file(net)), "--key", "0x" + net.account(1).hex()]
        for bad in ("not a host!", ""):
            refused = CliRunner().invoke(agent_cli, ["egress", "allow", agent_id, bad, *cli])
            assert refused.exit_code != 0
        made = CliRunner().invoke(
            agent_cli, ["egress", "allow", agent_id, "127.0.0.1", *cli, "--json"]
        )
        assert made.exit_code == 0, made.output
        assert json.loads(made.stdout)["egress"] == ["127.0.0.1"]
        net.settle(lambda: core_of(w1).contracts[contract].egress_hosts == ("127.0.0.1",))
        price, slow = fetched()
        assert price["status"] == 200
        assert json.loads(price["body"]) == {"symbol": "ETH", "price": "3141.59"}
        assert slow["error"]["code"] == "http_timeout"
        shown = CliRunner().invoke(agent_cli, ["info", agent_id, *cli, "--json"])
        assert shown.exit_code == 0, shown.output
        info = json.loads(shown.stdout)
        assert info["egress"] == ["127.0.0.1"] and info["paused"] is False
        assert info["owner"].lower() == Account.from_key(net.account(1)).address.lower()
        listed = CliRunner().invoke(agent_cli, ["egress", "list", agent_id, *cli])
        assert listed.exit_code == 0 and "127.0.0.1" in listed.stdout
        denied = CliRunner().invoke(agent_cli, ["egress", "deny", agent_id, "127.0.0.1", *cli])
        assert denied.exit_code == 0, denied.output
        net.settle(lambda: core_of(w1).contracts[contract].egress_hosts == ())
        assert fetched()[0]["error"]["code"] == "http_host_not_allowed"


def test_the_acting_examples_end_to_end(net: Net) -> None:
    """On real worker hosts: the price oracle (HTTPS in the core, its key an owner-set secret)
    schedules itself and feeds a PriceFeed; the AI judge (llm.chat sealed to a gateway on the
    dev TEE; an echo model stands in for the LLM) settles an Escrow."""
    from veilnet.chain.consumer import deploy_escrow
    from veilnet.cli.consumer import consumer as consumer_cli
    from veilnet.testing.gateway import dev_gateway
    from veilnet.testing.https import LocalOrigin

    from .conftest import NETWORK_SEED

    examples = Path(__file__).resolve().parents[2] / "examples" / "agents"
    with LocalOrigin(api_key="k-9", price="2718.28") as api, dev_gateway(NETWORK_SEED) as url:
        shared = {"egress_roots": api.ca_pem, "gateway_url": url}
        _, w1 = _bootstrap(net, members=1, every_host=shared)
        path = _network_file(net)
        owner = "0x" + net.account(1).hex()
        with Client.connect(path, wallet=owner, allow_insecure_dev_tee=True) as client:
            oracle = deploy_counter(
                net, source=(examples / "price_oracle.py").read_bytes(), salt=b"\x0a" * 32
            )
            judge = deploy_counter(
                net, source=(examples / "judge.py").read_bytes(), salt=b"\x0b" * 32
            )
            net.settle(lambda: _keyed(oracle, w1) and _keyed(judge, w1))
            agent_id = "0x" + oracle.hex()
            client.set_egress(agent_id, "127.0.0.1")
            client.agent(agent_id).command(
                {"op": "source", "url": api.url("/v1/price")}, wait=False
            )
            client.agent(agent_id).set_secret("api_key", "k-9", wait=False)
            feed = client.deploy_consumer(agent_id, kind="PriceFeed", ttl=30)
            client.agent(agent_id).command(
                {"op": "subscribe", "consumer": feed.hex, "every": 2}, wait=False
            )
            net.settle(lambda: client.price_feed(feed)["height"] > 0)
            assert client.price_feed(feed)["price"] == 2718280000
            cli = ["--network", str(path), "--key", owner]
            shown = CliRunner().invoke(consumer_cli, ["price", feed.hex, *cli])
            assert shown.exit_code == 0 and "2718.280000" in shown.stdout, shown.output
            assert api.received and api.received[-1].headers["x-api-key"] == "k-9"

            buyer = net.network.sender(net.account(9))
            seller = net.network.sender(net.account(8))
            escrow = deploy_escrow(
                net.network, buyer, judge, seller=seller.address, ttl=40, value=10**15
            )
            escrow.ask_judge(seller, b"Delivered on time with tracking; pay the SELLER")
            net.settle(lambda: client.escrow(escrow.address)["settled"])
            assert client.escrow(escrow.address)["winner"] == seller.address.hex


_EVM_AGENT = (
    b"def init(args):\n"
    b"    pass\n"
    b"\n"
    b"def query(q):\n"
    b"    return {'answer': evm.call({'to': q['to'], 'data': q['data']}), 'block': ctx.block_number}\n"
)


def test_an_agent_reads_the_chain_through_proofs_checked_in_its_core(net: Net) -> None:
    """``evm.call`` on a real worker host: the host fetches ``eth_getProof`` nodes from its
    node, the core executes the call over them from the verified state root, and the answer is
    the node's own ``eth_call`` at that block."""
    _, w1, _ = _bootstrap(net)
    contract = deploy_counter(net, source=_EVM_AGENT)
    net.settle(lambda: _keyed(contract, w1))
    bus = net.network.bus
    data = "0x" + bus.encode("contracts", contract).hex()
    ask = {"to": bus.address.hex, "data": data}
    answer, _ = query_over_http(net, w1.api_url, contract, body=json.dumps(ask).encode())
    assert answer["ok"] is True, answer
    block = answer["result"]["block"]
    expected = net.network.client.call(
        "eth_call", {"to": bus.address.hex, "data": data}, hex(block)
    )
    assert answer["result"]["answer"]["output"] == expected
    owner = abi_decode(["address"], bytes.fromhex(expected[2:])[64:96])[0]
    assert owner.lower() == Account.from_key(OWNER_FUNDED(net)).address.lower()


def test_an_operator_adds_and_removes_a_worker_with_the_cli(net: Net) -> None:
    """``veil cluster add-worker``: a worker started on its own, once endorsed, is taken into
    the cluster by its owner, catches up, and answers verified queries; ``remove-worker``
    takes it out and it stops serving; ``list`` shows the members throughout."""
    from veilnet.cli.cluster import cluster as cluster_cli
    from veilnet.crypto import Address

    net.defaults["commitment_interval"] = 4
    _, w1 = _bootstrap(net, members=1)
    contract = deploy_counter(net)
    net.settle(lambda: _keyed(contract, w1))
    w3 = net.host("w3", 3)
    net.settle(lambda: bool(net.network.view("Registry", "may_post", Address.parse(w3.address))))
    cli = ["--network", str(_network_file(net)), "--key", "0x" + net.admin_key.hex(), "--json"]
    added = CliRunner().invoke(cluster_cli, ["add-worker", w3.address, *cli])
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["members"] == [w1.address, w3.address]
    net.settle(lambda: w3.syncs == 1 and _keyed(contract, w3))
    answer, _ = query_over_http(net, w3.api_url, contract)
    assert answer["result"]["count"] == 0
    refused = CliRunner().invoke(cluster_cli, ["add-worker", w3.address, *cli])
    assert refused.exit_code != 0 and "worker in a cluster" in str(refused.exception)
    removed = CliRunner().invoke(cluster_cli, ["remove-worker", w3.address, *cli])
    assert removed.exit_code == 0, removed.output
    listed = CliRunner().invoke(cluster_cli, ["list", *cli])
    assert json.loads(listed.stdout) == [{"address": w1.address, "api_url": w1.api_url}]
    net.settle(lambda: contract not in core_of(w3).runtimes)
    from .conftest import WorkerBusy

    with pytest.raises(WorkerBusy, match="does not serve"):
        query_over_http(net, w3.api_url, contract)


def test_gatekeepers_fetch_collateral_from_the_networks_pccs(net: Net) -> None:
    """The network names a PCCS (``https``, its CA in the configuration): the gatekeeper's host
    relays its core's TLS to it, the core posts what the PCCS served, and every endorsement
    lasts as long as that collateral (3 days here), not the registrants' own copies (30)."""
    import ssl

    import trustme

    from veilnet.attestation.pccs import LocalPCCS
    from veilnet.tee import DevEnclave

    from .conftest import NETWORK_SEED

    ca = trustme.CA()
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(tls)
    served = DevEnclave(
        NETWORK_SEED, allow_insecure_dev_tee=True, collateral_validity_s=3 * 86400
    ).collateral()
    with LocalPCCS(served, tls=tls) as pccs:
        net.defaults.update(pccs_url=pccs.url, pccs_roots=ca.cert_pem.bytes())
        gk, w1 = _bootstrap(net, members=1)
        with gk.lock:
            endorsed = {a: w.valid_until for a, w in core_of(gk).workers.items() if w.confidence}
        assert endorsed == {bytes.fromhex(h.address[2:]): served.expires_at for h in (gk, w1)}
        assert any("/tcb?" in path for path in pccs.requests)


def test_a_gatekeeper_rotates_a_master_key_that_served_its_interval(net: Net) -> None:
    """Governance sets how long a master key may serve; the gatekeeper's host starts the
    rotation itself once it is due (no governance call), the cluster moves to the new master's
    epoch, and the members keep serving under it."""
    gk, w1 = _bootstrap(net, members=1)
    contract = deploy_counter(net)
    net.settle(lambda: _keyed(contract, w1))
    admin = net.network.sender(net.admin_key)
    net.network.set_rotation_interval(admin, 10)
    net.settle(lambda: net.network.view("Registry", "rotation_counter") == 1, rounds=120)
    with gk.lock:
        masters = sorted(core_of(gk).keys.masters)
    assert masters[-1] == 1
    net.settle(lambda: core_of(w1).contracts[contract].epoch >= 2)
    answer, _ = query_over_http(net, w1.api_url, contract)
    assert answer["result"]["count"] == 0
