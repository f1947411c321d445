"""Outcome queries that name many commands: answered in order, each only to its sender, within
a size budget; a malformed list is refused and the replay cache keeps nothing of it."""

from __future__ import annotations

import pytest

from veilnet.protocol import limits
from veilnet.runtime.errors import QueryRejected
from veilnet.sandbox import AgentRuntime
from veilnet.testing import Network, query_core

from .conftest import ALICE, EXAMPLES, MALLORY, OWNER


@pytest.fixture
def net(engine: AgentRuntime) -> Network:
    network = Network(engine=engine)
    network.bootstrap()
    return network


def test_one_query_reads_many_outcomes_in_the_order_asked(net: Network) -> None:
    contract = net.deploy(OWNER, "js", (EXAMPLES / "counter.js").read_bytes(), init={"start": 1})
    seqs = [net.command(ALICE, contract, {"by": n}, nonce=n) for n in (1, 2, 3)]
    net.settle()
    asked = [seqs[2], seqs[0], 999, seqs[1]]
    answer = query_core(net, ALICE, contract, asked, kind="outcome")
    third, first, unknown, second = answer["outcomes"]
    assert (first["status"], first["result"]) == ("applied", 2)
    assert (second["status"], second["result"]) == ("applied", 4)
    assert (third["status"], third["result"]) == ("applied", 7)
    assert unknown == {"status": "pending"}
    single = query_core(net, ALICE, contract, seqs[0], kind="outcome")
    assert single == first  # one seq alone: the same answer, not wrapped


def test_a_list_naming_another_senders_command_is_refused_whole(net: Network) -> None:
    contract = net.deploy(OWNER, "js", (EXAMPLES / "counter.js").read_bytes())
    mine = net.command(ALICE, contract, {"by": 1}, nonce=1)
    theirs = net.command(MALLORY, contract, {"by": 1}, nonce=1)
    net.settle()
    core = net.cores["w1"]
    remembered = len(core._replay.seen)
    with pytest.raises(QueryRejected, match="sender"):
        query_core(net, ALICE, contract, [mine, theirs], kind="outcome")
    assert len(core._replay.seen) == remembered  # nothing of the refused query is kept
    assert query_core(net, MALLORY, contract, [theirs], kind="outcome")["outcomes"][0]["ok"]


@pytest.mark.parametrize(
    "asked",
    [[], list(range(limits.MAX_OUTCOMES_PER_QUERY + 1)), [True], ["1"], [[1]], "1", [0, 0]],
    ids=["empty", "too_many", "bool", "text", "nested", "not_a_list", "repeated"],
)
def test_malformed_outcome_lists_are_refused(net: Network, asked: object) -> None:
    contract = net.deploy(OWNER, "js", (EXAMPLES / "counter.js").read_bytes())
    with pytest.raises(QueryRejected):
        query_core(net, ALICE, contract, asked, kind="outcome")


def test_large_results_fill_one_answer_and_the_rest_come_later(net: Network) -> None:
    big = b"export function handle(m) { return 'x'.repeat(200000); }\n"
    contract = net.deploy(OWNER, "js", big)
    seqs = [net.command(ALICE, contract, {}, nonce=n) for n in range(1, 8)]
    net.settle()
    answer = query_core(net, ALICE, contract, seqs, kind="outcome")["outcomes"]
    statuses = [one["status"] for one in answer]
    applied = statuses.count("applied")
    assert applied * 200_000 <= limits.MAX_OUTCOMES_ANSWER_BYTES < (applied + 1) * 200_000
    assert statuses == ["applied"] * applied + ["later"] * (len(seqs) - applied)
    rest = query_core(net, ALICE, contract, seqs[applied:], kind="outcome")["outcomes"]
    assert rest[0]["status"] == "applied" and len(rest[0]["result"]) == 200_000
