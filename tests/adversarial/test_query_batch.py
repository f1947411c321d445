"""Query batches (``queries``) from a hostile host, against a real enclave process: a batch is no
way around a check a query alone meets. The same query twice in one batch is answered once;
each query of a batch is refused or answered on its own; a batch over the limit is refused
whole and spends nothing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from veilnet.crypto import SecretKey
from veilnet.crypto.errors import SignatureInvalid
from veilnet.protocol import enclave as wire
from veilnet.protocol import envelopes as proto
from veilnet.protocol import limits
from veilnet.protocol.errors import QueryRejected
from veilnet.testing.adversary import EnclaveNetwork

pytestmark = pytest.mark.slow  # the module starts enclave processes

AGENT = proto.pack_code(
    "js", b"export function query(req) { return { block: ctx.block_number, echo: req }; }\n"
)
OWNER = b"\x0c" * 20
WALLET = SecretKey.derive(b"\x72" * 32, "wallet")


@dataclass
class Setup:
    net: EnclaveNetwork
    contract: bytes


@pytest.fixture(scope="module")
def setup() -> Iterator[Setup]:
    with EnclaveNetwork() as net:
        cluster = net.bootstrap(workers=("w1", "w2"))
        contract = net.ledger.deploy_contract(
            sender=OWNER, salt=b"\x02" * 32, cluster_id=cluster, code=AGENT
        )
        net.settle()
        yield Setup(net, contract)


def _sealed(
    setup: Setup, request_id: bytes, *, worker: str = "w1", window: int | None = None
) -> tuple[bytes, proto.ClientSession]:
    body = b'{"n":' + str(request_id[0]).encode() + b"}"
    return setup.net.seal_query(
        worker, setup.contract, body, wallet=WALLET, request_id=request_id, window=window
    )


def test_a_query_twice_in_one_batch_is_answered_once(setup: Setup) -> None:
    """Each query of a batch spends its request id before the next is opened: the copy is
    refused as a replay, and so is the query sent alone afterwards."""
    request, session = _sealed(setup, b"\x10" * 32)
    answers, used_io = setup.net.hosts["w1"].enclave.queries([request, request])
    assert used_io == ()
    first, second = answers
    assert isinstance(first, bytes)
    assert setup.net.open_answer(first, session, b"\x10" * 32)["result"]["echo"] == {"n": 16}
    assert isinstance(second, QueryRejected)
    assert "already used" in second.message
    with pytest.raises(QueryRejected, match="already used"):
        setup.net.hosts["w1"].enclave.query(request)


def test_each_query_of_a_batch_is_checked_alone(setup: Setup) -> None:
    """Garbage, a query for another worker and one past its window sit between two good ones:
    each bad one gets the refusal it gets alone, and the good ones are answered, each sealed
    for its own request id."""
    head = setup.net.ledger.head.number
    good_a, session_a = _sealed(setup, b"\x21" * 32)
    good_b, session_b = _sealed(setup, b"\x22" * 32)
    other, _ = _sealed(setup, b"\x23" * 32, worker="w2")
    late, _ = _sealed(setup, b"\x24" * 32, window=head - limits.QUERY_WINDOW_BLOCKS - 1)
    answers, _ = setup.net.hosts["w1"].enclave.queries(
        [good_a, b"\x00not a query", other, late, good_b]
    )
    opened_a, garbage, wrong_worker, passed, opened_b = answers
    assert isinstance(opened_a, bytes)
    assert isinstance(opened_b, bytes)
    assert setup.net.open_answer(opened_a, session_a, b"\x21" * 32)["result"]["echo"] == {"n": 33}
    assert setup.net.open_answer(opened_b, session_b, b"\x22" * 32)["result"]["echo"] == {"n": 34}
    assert isinstance(garbage, QueryRejected)
    assert isinstance(wrong_worker, QueryRejected)
    assert "another worker" in wrong_worker.message
    assert isinstance(passed, QueryRejected)
    assert "window has passed" in passed.message
    # an answer is bound to its own request id: swapping two answers of a batch is caught
    with pytest.raises(SignatureInvalid, match="another request"):
        setup.net.open_answer(opened_b, session_a, b"\x21" * 32)


def test_a_batch_over_the_limit_is_refused_whole_and_spends_nothing(setup: Setup) -> None:
    sealed = [
        _sealed(setup, bytes([0x40 + i % 64, i // 64]) + b"\x33" * 30)
        for i in range(wire.MAX_QUERY_BATCH + 1)
    ]
    requests = [request for request, _ in sealed]
    with pytest.raises(wire.FrameInvalid, match=f"1 to {wire.MAX_QUERY_BATCH}"):
        setup.net.hosts["w1"].enclave.queries(requests)
    with pytest.raises(wire.FrameInvalid, match=f"1 to {wire.MAX_QUERY_BATCH}"):
        setup.net.hosts["w1"].enclave.queries([])
    # nothing was spent: the same queries, at the limit, are all answered
    answers, _ = setup.net.hosts["w1"].enclave.queries(requests[: wire.MAX_QUERY_BATCH])
    assert all(isinstance(answer, bytes) for answer in answers)
    last, session = sealed[wire.MAX_QUERY_BATCH]
    rid = bytes([0x40, 1]) + b"\x33" * 30
    raw = setup.net.hosts["w1"].enclave.query(last)
    assert setup.net.open_answer(raw, session, rid)["ok"] is True
