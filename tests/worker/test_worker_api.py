"""The worker HTTP API: health states, attestation, typed errors with stable codes, size and
rate limits, metrics: one real host (registered, not clustered) behind Starlette's TestClient,
and a fixed ``WorkerService`` pinning the JSON byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from veilnet._version import __version__
from veilnet.chain import ChainAddresses, Deployment
from veilnet.crypto import Address
from veilnet.protocol.registration import attestation_report_data
from veilnet.runtime.errors import ContractUnavailable
from veilnet.testing.adversary import dev_chain_trust
from veilnet.worker import TokenBuckets, WorkerConfig, WorkerHost, create_app
from veilnet.worker.constants import MAX_QUERY_BODY
from veilnet.worker.interfaces import (
    AttestationView,
    ClusterView,
    ContractView,
    HealthView,
    WorkerInfoView,
    WorkerService,
)
from veilnet.worker.metrics import WorkerMetrics

from .conftest import Net, core_of


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def solo(net: Net) -> WorkerHost:
    host = net.host("solo", 1, serve_api=False)
    net.settle(lambda: host.status() == "ok", hosts=[host])
    return host


def _error(response, status: int, code: str) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    return body


def test_health_info_and_attestation(solo: WorkerHost) -> None:
    client = TestClient(create_app(solo))
    health = client.get("/v1/health")
    assert health.status_code == 200
    boot_id = solo.health().boot_id
    assert boot_id is not None and len(boot_id) == 32
    assert health.json() | {"applied_block": 0, "chain_head": 0} == {
        "status": "ok",
        "applied_block": 0,
        "chain_head": 0,
        "registered": True,
        "boot_id": "0x" + boot_id.hex(),
        "diverged_at": None,
        "rejected": None,
    }
    info = client.get("/v1/info").json()
    assert info["address"] == solo.address and info["cluster"] is None
    assert info["tee"] == "tdx" and info["state_commitments"] == {}
    nonce = bytes(range(32))
    att = client.get(f"/v1/attestation?nonce={nonce.hex()}").json()
    address = bytes.fromhex(solo.address[2:])
    expected = attestation_report_data(
        worker=address, nonce=nonce, config_digest=core_of(solo).config.config_digest
    )
    assert att["report_data"] == expected.hex()
    assert att["address"] == solo.address and len(bytes.fromhex(att["quote"])) > 600
    assert isinstance(att["collateral"], dict)


def test_bad_inputs_get_stable_codes(solo: WorkerHost) -> None:
    client = TestClient(create_app(solo))
    _error(client.get("/v1/attestation?nonce=zz"), 400, "worker_bad_request")
    _error(client.get("/v1/attestation?nonce=00"), 400, "worker_bad_request")
    _error(client.get("/v1/attestation?nonce=" + "00" * 64), 400, "worker_bad_request")
    _error(client.get("/v1/contracts/0x" + "11" * 32), 404, "runtime_contract_unavailable")
    _error(client.get("/v1/contracts/0x1234"), 400, "worker_bad_request")
    _error(client.post("/v1/query", content=b"not a query"), 400, "runtime_query_rejected")
    _error(
        client.post("/v1/query", content=b"\x00" * (MAX_QUERY_BODY + 1)), 413, "request_too_large"
    )
    _error(client.get("/v1/nothing"), 404, "worker_route_not_found")
    _error(client.get("/v1/query"), 405, "worker_route_not_found")
    metrics = client.get("/metrics").text
    assert 'veil_worker_queries_total{outcome="runtime_query_rejected"} 1.0' in metrics
    assert 'veil_worker_queries_total{outcome="request_too_large"} 1.0' in metrics
    assert 'veil_worker_http_errors_total{code="worker_bad_request"} 4.0' in metrics
    assert "veil_worker_query_seconds_bucket" in metrics


def test_rate_limit_per_client(solo: WorkerHost) -> None:
    clock = FakeClock()
    client = TestClient(create_app(solo, limiter=TokenBuckets(rate=1.0, burst=3, clock=clock)))
    assert [client.get("/v1/info").status_code for _ in range(4)] == [200, 200, 200, 429]
    body = _error(client.get("/v1/info"), 429, "rate_limited")
    assert body["retry_after_s"] > 0
    assert client.get("/v1/health").status_code == 200  # health is never limited
    clock.now += 1.0
    assert client.get("/v1/info").status_code == 200


def test_token_buckets_refill_and_isolate_clients() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(rate=2.0, burst=2, clock=clock, max_clients=2)
    assert buckets.take("a") == 0.0 and buckets.take("a") == 0.0
    assert buckets.take("a") == pytest.approx(0.5)
    assert buckets.take("b") == 0.0
    clock.now += 0.5
    assert buckets.take("a") == 0.0
    buckets.take("c")  # evicts the least recently used client
    with pytest.raises(ValueError):
        TokenBuckets(rate=0, burst=1)


def test_refuses_to_serve_until_registered(net: Net) -> None:
    host = net.host("unfunded", 3, serve_api=False, fund_from=None)
    net.settle(lambda: host.applied_block is not None and host.is_idle(), hosts=[host])
    client = TestClient(create_app(host))
    health = client.get("/v1/health")
    assert health.status_code == 503
    assert health.json()["status"] == "starting" and health.json()["registered"] is False
    _error(client.post("/v1/query", content=b"x"), 503, "runtime_not_ready")


def test_refuses_to_serve_while_catching_up(solo: WorkerHost) -> None:
    solo.stop()  # freeze the follower so the chain head can be pinned
    client = TestClient(create_app(solo))
    applied = solo.applied_block
    assert applied is not None
    solo._chain_head = applied + solo.config.finality_depth + solo.config.max_lag_blocks
    assert solo.status() == "ok"
    solo._chain_head += 1
    health = client.get("/v1/health")
    assert health.status_code == 503 and health.json()["status"] == "catching_up"
    body = _error(client.post("/v1/query", content=b"x"), 503, "runtime_not_ready")
    assert body["applied_block"] == applied


class FixedService:
    """A ``WorkerService`` of fixed views: the API needs nothing else from a host."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.metrics = WorkerMetrics()

    def health(self) -> HealthView:
        return HealthView(status="catching_up", applied_block=7, chain_head=12, registered=True)

    def info(self) -> WorkerInfoView:
        return WorkerInfoView(
            name="fixed",
            address=Address(b"\x01" * 20),
            operator=Address(b"\x02" * 20),
            chain_id=31337,
            registry=Address(b"\x03" * 20),
            bus=Address(b"\x04" * 20),
            tee="tdx",
            measurement=b"\x05" * 2,
            clusters=(
                ClusterView(cluster_id=b"\xa1", is_member=True, state_commitment=b"\xc1"),
                ClusterView(cluster_id=b"\xa2", is_member=True, state_commitment=None),
                ClusterView(cluster_id=b"\xa3", is_member=False, state_commitment=None),
            ),
            cluster=b"\xa1",
            confidence=2,
            last_applied_block=7,
            last_applied_hash=b"\x06",
            status="catching_up",
        )

    def contract(self, contract_id: bytes) -> ContractView:
        if contract_id != b"\x11" * 32:
            raise ContractUnavailable("unknown contract", contract_id="0x" + contract_id.hex())
        return ContractView(
            contract_id=contract_id,
            cluster=b"\xa1",
            owner=Address(b"\x07" * 20),
            controller=Address(bytes(20)),
            code_hash=b"\x08",
            paused=False,
            epoch=0,
            public_key=b"",
            key_address=None,
        )

    def attest(self, nonce: bytes) -> AttestationView:
        return AttestationView(
            address=Address(b"\x01" * 20),
            quote=b"\x09\x0a",
            collateral=b'{"tcb": 1}',
            report_data=nonce,
        )

    async def query_async(self, request: bytes) -> bytes:
        return request[::-1]


def _fixed_config(tmp_path: Path) -> WorkerConfig:
    addresses = ChainAddresses(
        chain_id=31337, registry=Address(b"\x03" * 20), bus=Address(b"\x04" * 20)
    )
    return WorkerConfig(
        name="fixed",
        data_dir=tmp_path,
        rpc_url="http://127.0.0.1:1",
        deployment=Deployment(addresses=addresses, admin=Address(bytes(20)), genesis_block=0),
        chain_trust=dev_chain_trust(),
        operator_key=b"\x01" * 32,
    )


def test_the_api_serves_any_worker_service_with_the_same_json(tmp_path: Path) -> None:
    config = _fixed_config(tmp_path)
    service: WorkerService = FixedService(config)
    client = TestClient(create_app(service))
    health = client.get("/v1/health")
    assert health.status_code == 503
    assert health.content == (
        b'{"status":"catching_up","applied_block":7,"chain_head":12,"registered":true,'
        b'"boot_id":null,"diverged_at":null,"rejected":null}'
    )
    one, two, three, four = (Address(bytes([i]) * 20).hex for i in (1, 2, 3, 4))
    assert (
        client.get("/v1/info").content
        == (
            f'{{"name":"fixed","address":"{one}","operator":"{two}","chain_id":31337,'
            f'"registry":"{three}","bus":"{four}","tee":"tdx","measurement":"0x0505",'
            '"clusters":["0xa1","0xa2","0xa3"],"cluster":"0xa1","confidence":2,'
            '"last_applied_block":7,"last_applied_hash":"0x06","state_commitments":{"0xa1":"0xc1"},'
            f'"status":"catching_up","version":"{__version__}"}}'
        ).encode()
    )
    owner, nobody = Address(b"\x07" * 20).hex, Address(bytes(20)).hex
    assert (
        client.get("/v1/contracts/" + "11" * 32).content
        == (
            f'{{"contract_id":"0x{"11" * 32}","cluster":"0xa1","owner":"{owner}",'
            f'"controller":"{nobody}","code_hash":"0x08","paused":false,"epoch":0,'
            '"public_key":"0x","key_address":null}'
        ).encode()
    )
    _error(client.get("/v1/contracts/" + "22" * 32), 404, "runtime_contract_unavailable")
    nonce = bytes(range(32))
    assert (
        client.get(f"/v1/attestation?nonce={nonce.hex()}").content
        == (
            f'{{"address":"{one}","quote":"090a","collateral":{{"tcb":1}},'
            f'"report_data":"{nonce.hex()}"}}'
        ).encode()
    )
    assert client.post("/v1/query", content=b"abc").content == b"cba"


def test_the_query_route_keeps_the_rate_limit_and_error_shape(tmp_path: Path) -> None:
    """``POST /v1/query`` is served outside the framework's routing: it still takes a token
    per client, answers every refusal as ``{"error": ...}``, and counts it: a query it read
    by its outcome, a request it refused unread (rate limit) as an HTTP error only. A
    trailing slash reaches the same route."""
    service = FixedService(_fixed_config(tmp_path))
    clock = FakeClock()
    client = TestClient(create_app(service, limiter=TokenBuckets(rate=1.0, burst=2, clock=clock)))
    assert client.post("/v1/query", content=b"ab").content == b"ba"
    _error(
        client.post("/v1/query", content=b"\x00" * (MAX_QUERY_BODY + 1)), 413, "request_too_large"
    )
    limited = client.post("/v1/query", content=b"ab")
    _error(limited, 429, "rate_limited")
    assert limited.headers["retry-after"] == "1"
    clock.now += 1.0
    assert client.post("/v1/query", content=b"xy").content == b"yx"
    metrics = client.get("/metrics").text
    assert 'veil_worker_queries_total{outcome="ok"} 2.0' in metrics
    assert 'veil_worker_queries_total{outcome="request_too_large"} 1.0' in metrics
    assert 'outcome="rate_limited"' not in metrics
    assert "veil_worker_query_seconds_count 3.0" in metrics
    assert 'veil_worker_http_errors_total{code="rate_limited"} 1.0' in metrics
    clock.now += 1.0
    assert client.post("/v1/query/", content=b"pq").content == b"qp"
    _error(client.get("/v1/query/"), 405, "worker_route_not_found")
