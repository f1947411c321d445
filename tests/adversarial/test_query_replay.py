"""A captured query replayed by a hostile host, against real enclave processes: after the worker
restarts, at another worker of the cluster, and after its window has passed. Each is refused."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from veilnet.crypto import SecretKey
from veilnet.protocol import envelopes as proto
from veilnet.protocol import limits
from veilnet.protocol.errors import NotReady, QueryRejected, QueryStale
from veilnet.testing.adversary import EnclaveNetwork

pytestmark = pytest.mark.slow  # the module starts enclave processes

AGENT = proto.pack_code(
    "js", b"export function query(req) { return { block: ctx.block_number }; }\n"
)
OWNER = b"\x0c" * 20
WALLET = SecretKey.derive(b"\x71" * 32, "wallet")


@dataclass
class Setup:
    """A cluster of two workers serving one agent."""

    net: EnclaveNetwork
    contract: bytes


@pytest.fixture
def setup() -> Iterator[Setup]:
    with EnclaveNetwork() as net:
        cluster = net.bootstrap(workers=("w1", "w2"))
        contract = net.ledger.deploy_contract(
            sender=OWNER, salt=b"\x01" * 32, cluster_id=cluster, code=AGENT
        )
        net.settle()
        yield Setup(net, contract)


def _query(
    setup: Setup,
    worker: str,
    *,
    request_id: bytes = b"\x07" * 32,
    window: int | None = None,
    boot_id: bytes | None = None,
) -> tuple[bytes, proto.ClientSession]:
    """A query sealed as the SDK seals it, addressed to ``worker`` at its current boot."""
    return setup.net.seal_query(
        worker,
        setup.contract,
        b"{}",
        wallet=WALLET,
        request_id=request_id,
        window=window,
        boot_id=boot_id,
    )


def _answered(setup: Setup, worker: str, request: bytes, session: proto.ClientSession) -> int:
    raw = setup.net.hosts[worker].enclave.query(request)
    answer = setup.net.open_answer(raw, session, b"\x07" * 32)
    assert answer["ok"] is True, answer
    block: int = answer["result"]["block"]
    return block


def test_a_query_is_answered_once_and_never_after_a_restart(setup: Setup) -> None:
    """The host keeps a query its worker answered, restarts the worker from its newest
    checkpoint, and hands the query in again: the new boot refuses it (it names the old boot),
    though a restored replay cache would have been the host's to roll back."""
    request, session = _query(setup, "w1")
    _answered(setup, "w1", request, session)
    with pytest.raises(QueryRejected, match="already used"):
        setup.net.hosts["w1"].enclave.query(request)
    old_boot = setup.net.boot_ids["w1"]
    setup.net.restart("w1")
    assert setup.net.boot_ids["w1"] != old_boot
    with pytest.raises(QueryStale) as info:
        setup.net.hosts["w1"].enclave.query(request)
    assert info.value.details["boot_id"] == "0x" + setup.net.boot_ids["w1"].hex()
    # the client re-seals for the new boot and is answered, on the restored state
    fresh, session = _query(setup, "w1", request_id=b"\x07" * 32)
    assert _answered(setup, "w1", fresh, session) == setup.net.ledger.head.number


def test_a_query_for_one_worker_is_refused_by_another(setup: Setup) -> None:
    request, session = _query(setup, "w1")
    _answered(setup, "w1", request, session)
    with pytest.raises(QueryRejected, match="another worker"):
        setup.net.hosts["w2"].enclave.query(request)
    # even sealed with w2's boot id, the worker named inside is still w1
    forged, _ = _query(setup, "w1", boot_id=setup.net.boot_ids["w2"])
    with pytest.raises(QueryRejected, match="another worker"):
        setup.net.hosts["w2"].enclave.query(forged)


def test_a_query_past_its_window_is_refused_and_one_ahead_waits(setup: Setup) -> None:
    head = setup.net.ledger.head.number
    late, _ = _query(setup, "w1", window=head - limits.QUERY_WINDOW_BLOCKS - 1)
    with pytest.raises(QueryRejected, match="window has passed"):
        setup.net.hosts["w1"].enclave.query(late)
    ahead, _ = _query(setup, "w1", window=head + limits.QUERY_WINDOW_AHEAD + 1)
    with pytest.raises(NotReady, match="behind"):
        setup.net.hosts["w1"].enclave.query(ahead)
    edge, session = _query(setup, "w1", window=head - limits.QUERY_WINDOW_BLOCKS)
    assert _answered(setup, "w1", edge, session) == head


def test_a_query_the_host_re_encodes_is_refused_and_not_spent(setup: Setup) -> None:
    """The host hands the enclave a client's query with the same values in other bytes: a
    longer head for the request id, or a byte after the record. The core's reader takes only
    the one canonical encoding (``codec._flat`` defers anything else to the generic decoder,
    which refuses it), and the refused bytes spend nothing: the query as sent is still
    answered once."""
    request, session = _query(setup, "w1")
    request_id = b"\x07" * 32
    assert request.count(b"\x58\x20" + request_id) == 1  # a 32-byte string's shortest head
    longer_head = request.replace(b"\x58\x20" + request_id, b"\x59\x00\x20" + request_id)
    for forged in (longer_head, request + b"\x00"):
        with pytest.raises(QueryRejected) as info:
            setup.net.hosts["w1"].enclave.query(forged)
        assert "canonical" in info.value.message or "after the value" in info.value.message
    _answered(setup, "w1", request, session)
