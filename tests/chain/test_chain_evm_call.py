"""``runtime.evm``: a read-only call executed in the core over state proven from a verified state
root, against real nodes (the embedded chain and anvil): the answer equals the node's own
``eth_call``; a host that withholds or forges state gets an error value, never a wrong answer."""

from __future__ import annotations

from typing import Any

import pytest
import rlp
from eth_hash.auto import keccak

from veilnet.chain.interfaces import ChainBackend
from veilnet.chain.proofs import state_witness, verify_header_rlp
from veilnet.chain.testing import KeyedAgent, keyed_agent
from veilnet.protocol.chain import HeaderFields, decode_header
from veilnet.runtime import evm


@pytest.fixture
def agent(any_backend: ChainBackend) -> KeyedAgent:
    return keyed_agent(any_backend)


def _header(agent: KeyedAgent) -> HeaderFields:
    doc = agent.network.client.call("eth_getBlockByNumber", "latest", False)
    _, encoded = verify_header_rlp(doc)
    return decode_header(encoded)


def _honest(agent: KeyedAgent) -> Any:
    asked: list[tuple[bytes, bytes | None]] = []

    def witness(block: int, address: bytes, slot: bytes | None) -> tuple[list[bytes], list[bytes]]:
        asked.append((address, slot))
        return state_witness(agent.network.client, block, address, slot)

    witness.asked = asked  # type: ignore[attr-defined]
    return witness


def _eth_call(agent: KeyedAgent, to: str, data: str, block: int) -> str:
    return str(agent.network.client.call("eth_call", {"to": to, "data": data}, hex(block)))


def test_a_view_call_equals_the_nodes_own_answer(agent: KeyedAgent) -> None:
    """``Bus.contracts(id)`` (a struct over several slots) and ``Registry.cluster_info``: the
    core's result is byte for byte the node's, proven slot by slot from the state root."""
    header = _header(agent)
    bus = agent.network.bus
    chain_id = agent.network.addresses.chain_id
    for handle, fn, args in (
        (bus, "contracts", (agent.contract_id,)),
        (agent.network.registry, "cluster_info", (agent.cluster_id,)),
        (bus, "max_payload", ()),
    ):
        data = "0x" + handle.encode(fn, *args).hex()
        witness = _honest(agent)
        answer = evm.call(
            {"to": handle.address.hex, "data": data},
            header=header,
            chain_id=chain_id,
            witness=witness,
        )
        assert answer["output"] == _eth_call(agent, handle.address.hex, data, header.number), fn
        assert witness.asked and witness.asked[0] == (handle.address.raw, None)


def test_a_revert_is_reported_with_its_data(agent: KeyedAgent) -> None:
    header = _header(agent)
    bus = agent.network.bus
    data = "0x" + bus.encode("recover", bytes(32), b"\x01" * 64).hex()  # bad signature length
    answer = evm.call(
        {"to": bus.address.hex, "data": data},
        header=header,
        chain_id=agent.network.addresses.chain_id,
        witness=_honest(agent),
    )
    assert answer["reverted"] is True and answer["output"].startswith("0x08c379a0")


def test_a_host_that_withholds_or_forges_state_gets_no_answer(agent: KeyedAgent) -> None:
    header = _header(agent)
    bus = agent.network.bus
    data = "0x" + bus.encode("contracts", agent.contract_id).hex()
    chain_id = agent.network.addresses.chain_id

    def nothing(block: int, address: bytes, slot: bytes | None) -> tuple[list[bytes], list[bytes]]:
        return [], []

    answer = evm.call({"to": bus.address.hex, "data": data}, header=header, chain_id=chain_id,
                      witness=nothing)  # fmt: skip
    assert answer["error"]["code"] == "evm_unproven"

    def forged(block: int, address: bytes, slot: bytes | None) -> tuple[list[bytes], list[bytes]]:
        """Real nodes, except that the storage leaf says something else: it no longer hashes
        to what its parent names, so it is never reached."""
        nodes, codes = state_witness(agent.network.client, block, address, slot)
        if slot is None:
            return nodes, codes
        leaf = rlp.decode(nodes[-1])
        leaf[-1] = rlp.encode(b"\x42" * 20)
        return [*nodes[:-1], rlp.encode(leaf)], codes

    answer = evm.call({"to": bus.address.hex, "data": data}, header=header, chain_id=chain_id,
                      witness=forged)  # fmt: skip
    assert answer["error"]["code"] == "evm_unproven"
    # and a state root the header does not carry (the host cannot choose it) changes nothing
    assert keccak(b"") != header.state_root


@pytest.mark.parametrize(
    "request_",
    [
        {"to": "0x1234", "data": "0x"},
        {"to": "0x" + "11" * 20, "data": "zz"},
        {"to": "0x" + "11" * 20, "data": "0x", "gas": 10**9},
        {"to": "0x" + "11" * 20, "value": 1},
        "0x" + "11" * 20,
    ],
)
def test_malformed_calls_are_refused_before_any_io(request_: Any) -> None:
    def never(block: int, address: bytes, slot: bytes | None) -> tuple[list[bytes], list[bytes]]:
        raise AssertionError("no I/O for a malformed call")

    answer = evm.call(request_, header=None, chain_id=1, witness=never)
    assert answer["error"]["code"] == "evm_request_invalid"
