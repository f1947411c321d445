"""Gatekeepers judge quotes under collateral their own cores fetched from the network's PCCS,
over TLS that ends in the core: never under the copy a registrant chose, nor one a host made up."""

from __future__ import annotations

import ssl
import zlib
from collections.abc import Iterator

import pytest
import trustme

from veilnet.attestation import Collateral
from veilnet.attestation.pccs import LocalPCCS, fetch_collateral
from veilnet.codec import abi_encode
from veilnet.crypto import Address, Domain, sign_typed
from veilnet.protocol import topics
from veilnet.protocol.egress import EGRESS_TYPE, EgressMessage
from veilnet.runtime import collateral
from veilnet.sandbox import AgentRuntime
from veilnet.tee import DevEnclave
from veilnet.testing import Network
from veilnet.testing.https import SocketRelay
from veilnet.testing.network import NETWORK_SEED, TEST_TIME

DAY = 86_400


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _pccs(ca: trustme.CA, served: Collateral) -> LocalPCCS:
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(tls)
    return LocalPCCS(served, tls=tls)


def _collateral(**options: object) -> Collateral:
    """Collateral of the test network's dev PKI, as a PCCS would serve it today."""
    enclave = DevEnclave(NETWORK_SEED, allow_insecure_dev_tee=True, **options)  # type: ignore[arg-type]
    return enclave.collateral(issued_at=TEST_TIME - 3600)


@pytest.fixture
def revoked(ca: trustme.CA) -> Iterator[LocalPCCS]:
    with _pccs(ca, _collateral(tcb_status="Revoked")) as pccs:
        yield pccs


@pytest.fixture
def short(ca: trustme.CA) -> Iterator[LocalPCCS]:
    with _pccs(ca, _collateral(collateral_validity_s=3 * DAY)) as pccs:
        yield pccs


def _network(engine: AgentRuntime, pccs: LocalPCCS, ca: trustme.CA) -> Network:
    return Network(
        engine=engine,
        pccs_url=pccs.url,
        pccs_roots=ca.cert_pem.bytes(),
        pccs_relay=SocketRelay(),
    )


def _pccs_posts(net: Network) -> list[EgressMessage]:
    return [m for m in net.posted if m.topic == topics.TOPIC_PCCS_COLLATERAL]


def test_the_core_fetches_what_dcap_qvl_fetches(ca: trustme.CA) -> None:
    """The in-core client (four HTTPS GETs through the host's relay, assembled from the v4
    answers) yields the very collateral dcap-qvl's own client fetches from the same PCCS."""
    served = _collateral()
    quote = DevEnclave(NETWORK_SEED, allow_insecure_dev_tee=True).quote(b"\x01" * 64)
    plain = LocalPCCS(served)
    with plain, _pccs(ca, served) as pccs:
        relay = SocketRelay()
        answers = {}
        from veilnet.runtime.tls import HTTPSExchange, client_context, exchange

        port = int(pccs.url.rsplit(":", 1)[1])
        for conn, (name, target) in enumerate(collateral.requests_for(quote).items()):
            ex = HTTPSExchange(
                client_context(ca.cert_pem.bytes()),
                host="127.0.0.1",
                port=port,
                method="GET",
                target=target,
                body=b"",
                at=TEST_TIME,
                max_response_bytes=collateral.MAX_ANSWER_BYTES,
            )
            response = exchange(ex, relay, conn=conn)
            answers[name] = (dict(response.headers), response.body)
        relay.close_all()
        assert collateral.assemble(answers) == fetch_collateral(plain.url, quote) == served
        assert pccs.requests == plain.requests  # the same four requests, in order


def test_a_registrant_is_judged_under_the_pccs_collateral_not_its_own(
    engine: AgentRuntime, revoked: LocalPCCS, ca: trustme.CA
) -> None:
    """Each worker posts its own collateral, which rates its TCB up to date; the PCCS says the
    TCB is revoked. The gatekeeper's core posts what the PCCS serves, every core judges under
    that, and no worker is endorsed (with its own copy, each would be)."""
    net = _network(engine, revoked, ca)
    net.bootstrap(workers=("w1",), clusters={"c1": []})
    w1 = net.cores["w1"]
    own = [m for m in net.posted if m.origin == w1.address and m.topic == topics.TOPIC_COLLATERAL]
    assert own  # its own copy is on chain
    assert _pccs_posts(net) and revoked.requests  # the gatekeeper fetched and posted
    assert not net.ledger.endorsed(w1.address)
    assert net.pccs_failures == []


def test_an_endorsement_lasts_as_long_as_the_pccs_collateral(
    engine: AgentRuntime, short: LocalPCCS, ca: trustme.CA
) -> None:
    """The PCCS's collateral is valid 3 days, the registrant's own 30: the endorsement ends
    with the PCCS's."""
    net = _network(engine, short, ca)
    net.bootstrap(workers=("w1",), clusters={"c1": []})
    w1 = net.cores["w1"].address
    assert net.ledger.endorsed(w1)
    expected = _collateral(collateral_validity_s=3 * DAY).expires_at
    assert net.ledger.endorsed_until[w1] == expected
    assert net.cores["gk"].state.pccs_for == {}  # dropped once the verdicts landed


def test_a_host_that_blocks_the_pccs_gets_no_endorsement(
    engine: AgentRuntime, short: LocalPCCS, ca: trustme.CA
) -> None:
    """The gatekeeper's host relays nothing to the PCCS: nothing is posted in its place, and the
    registrant is not judged under its own copy instead (liveness lost, not safety)."""

    class Blocked(SocketRelay):
        def __call__(self, conn: int, host: str, port: int, data: bytes) -> bytes:
            return b""

    net = _network(engine, short, ca)
    net.pccs_relay = Blocked()
    net.register("gk")
    net.settle()
    net.ledger.add_gatekeeper(net.cores["gk"].address)
    net.register("w1")
    net.settle()
    assert not net.ledger.endorsed(net.cores["w1"].address)
    assert _pccs_posts(net) == [] and short.requests == []
    assert net.pccs_failures and all(r.startswith("tls_failed") for r in net.pccs_failures)


def test_a_pccs_answer_under_another_ca_is_refused(engine: AgentRuntime, short: LocalPCCS) -> None:
    """A host answers in the PCCS's place with a certificate of its own CA: the core's TLS
    refuses it, and nothing is posted."""
    net = _network(engine, short, trustme.CA())
    net.register("gk")
    net.settle()
    net.ledger.add_gatekeeper(net.cores["gk"].address)
    net.settle()
    assert _pccs_posts(net) == []
    assert net.pccs_failures and net.pccs_failures[0].startswith("tls_failed")


def test_collateral_posted_by_a_worker_that_is_no_gatekeeper_is_ignored(
    engine: AgentRuntime, short: LocalPCCS, ca: trustme.CA
) -> None:
    """The PCCS now rates the TCB revoked and the gatekeeper has not fetched yet; w2, endorsed
    but no gatekeeper, posts favourable collateral for w3's quote under the PCCS topic. Every
    core ignores it: w3 stays unjudged, then is refused under what the PCCS serves."""
    net = _network(engine, short, ca)
    net.bootstrap(workers=("w2",), clusters={"c1": []})
    w2 = net.cores["w2"]
    assert net.ledger.endorsed(w2.address)
    short.serve(_collateral(tcb_status="Revoked"))
    relay, net.pccs_relay = net.pccs_relay, None  # the gatekeeper's host is slow to fetch
    w3 = net.register("w3")
    net.settle()
    quote_hash = net.cores["gk"].state.workers[w3.address].quote_hash
    favourable = zlib.compress(_collateral().to_json())
    payload = abi_encode(["bytes32", "bytes"], [quote_hash, favourable])
    seq = net.ledger.next_seq.get(w2.address, 0)
    domain = Domain(chain_id=net.ledger.chain_id, verifying_contract=Address(net.ledger.bus))
    values = {
        "origin": Address(w2.address),
        "seq": seq,
        "topic": topics.TOPIC_PCCS_COLLATERAL,
        "payload": payload,
    }
    message = EgressMessage(
        origin=w2.address,
        seq=seq,
        topic=topics.TOPIC_PCCS_COLLATERAL,
        payload=payload,
        signature=sign_typed(w2.keys.identity, domain, EGRESS_TYPE, values),
    )
    assert net._post(message)
    net.settle()
    assert all(quote_hash not in core.state.pccs_for for core in net.cores.values())
    assert not net.ledger.endorsed(w3.address)
    net.pccs_relay = relay
    net.settle()
    assert quote_hash not in net.cores["gk"].state.pccs_for  # judged (refused), then dropped
    assert not net.ledger.endorsed(w3.address)
    assert net.cores["gk"].state.workers[w3.address].standing.value == "judged"


@pytest.mark.parametrize(
    "name",
    [
        "sgx_quote_collateral.json",
        "tdx_quote_collateral.json",
        "tdx_quote_outdated_collateral.json",
        "gas_test_quote_collateral.json",
    ],
)
def test_intels_real_collateral_fits_one_egress_message(name: str) -> None:
    """A gatekeeper posts what the PCCS served in one message: Intel's own collateral (dcap-qvl's
    vectors, fetched from Intel's PCS) stays well under the payload limit, so it never turns
    into a skip notice that would leave a quote unjudged."""
    from pathlib import Path

    from veilnet.protocol import limits

    path = Path(__file__).resolve().parents[1] / "data" / "attestation" / "dcap-qvl" / name
    served = Collateral.from_json(path.read_bytes()).to_json()
    payload = abi_encode(["bytes32", "bytes"], [b"\x01" * 32, zlib.compress(served, 9)])
    assert len(payload) <= limits.MAX_EGRESS_PAYLOAD * 3 // 4
