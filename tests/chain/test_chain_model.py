"""decode_log: typed errors for unknown, misplaced or malformed logs; artifacts and constants."""

from __future__ import annotations

import pytest
from eth_abi import encode
from hypothesis import given, settings
from hypothesis import strategies as st

from veilnet.chain import ArtifactMismatch
from veilnet.chain.artifacts import CONTRACTS_DIR
from veilnet.chain.constants import ROUTED_TOPICS
from veilnet.chain.errors import EventDecodeError
from veilnet.chain.model import ChainAddresses, Command, RawLog, decode_log, event_topic
from veilnet.crypto import Address

ADDRS = ChainAddresses(chain_id=1, registry=Address(b"\x01" * 20), bus=Address(b"\x02" * 20))


def _command_log(**overrides: object) -> RawLog:
    fields: dict[str, object] = {
        "address": b"\x02" * 20,
        "topics": (event_topic(Command), b"\x09" * 32, b"\x00" * 12 + b"\x05" * 20),
        "data": encode(["uint64", "bytes"], [3, b"hello"]),
        "block_number": 7,
        "log_index": 1,
        "tx_hash": b"\xaa" * 32,
    }
    fields.update(overrides)
    return RawLog(**fields)  # type: ignore[arg-type]


def test_decode_command() -> None:
    event = decode_log(_command_log(), ADDRS)
    assert isinstance(event, Command)
    assert (event.seq, event.payload, event.sender) == (3, b"hello", Address(b"\x05" * 20))


@pytest.mark.parametrize(
    "overrides",
    [
        {"address": b"\x01" * 20},  # a Command from the Registry
        {"address": b"\x03" * 20},  # from an unknown contract
        {"topics": (b"\x00" * 32,)},  # unknown event
        {"topics": ()},
        {"topics": (event_topic(Command), b"\x09" * 32)},  # missing indexed field
        {"data": b"\x00" * 10},  # truncated data
        {"topics": (event_topic(Command), b"\x09" * 32, b"\xff" * 32)},  # dirty address
        {"data": b"\x00" * (200 * 1024)},
    ],
)
def test_decode_rejects(overrides: dict[str, object]) -> None:
    with pytest.raises(EventDecodeError) as info:
        decode_log(_command_log(**overrides), ADDRS)
    assert info.value.code == "chain_event_invalid"


def test_routed_topics_match_vyper_constants() -> None:
    """Bus.vy routes the eleven topics the enclave core names, each the keccak of that name;
    Registry.vy handles all but the Bus's own (the contract key, agents' own schedules and a
    failed init: agent contracts live there). The constants have no getter: read the sources."""
    import re

    from eth_hash.auto import keccak

    from veilnet.chain.constants import BUS_TOPICS

    pattern = re.compile(r'^(TOPIC_\w+): constant\(bytes32\) = keccak256\("([^"]+)"\)', re.M)
    topics = {}
    for contract in ("Registry.vy", "Bus.vy"):
        found = dict(pattern.findall((CONTRACTS_DIR / contract).read_text()))
        topics[contract] = {keccak(name.encode()) for name in found.values()}
    assert topics["Bus.vy"] == set(ROUTED_TOPICS) and len(ROUTED_TOPICS) == 11
    assert topics["Registry.vy"] == set(ROUTED_TOPICS) - BUS_TOPICS


@pytest.mark.requires_tool("vyper")
def test_artifacts_match_sources() -> None:
    from veilnet.chain.compile import check_artifacts

    try:
        check_artifacts()
    except ArtifactMismatch as exc:
        pytest.fail(str(exc))


def test_limits_match_vyper_constants() -> None:
    """Every integer limit ``veilnet.chain.constants`` mirrors equals the Vyper constant of the
    same name, in whichever contract declares it."""
    import re

    from veilnet.chain import constants

    pattern = re.compile(r"^(\w+): constant\(uint\d+\) = (\d+)$", re.M)
    checked = []
    for contract in ("Registry.vy", "Bus.vy"):
        for name, value in pattern.findall((CONTRACTS_DIR / contract).read_text()):
            mirror = getattr(constants, name, None)
            if isinstance(mirror, int):
                assert mirror == int(value), (contract, name)
                checked.append(name)
    assert {"MAX_CODE", "MAX_EGRESS_HOSTS", "MAX_HOST_NAME", "MAX_HPKE_KEY"} <= set(checked)


@settings(max_examples=300)
@given(
    st.sampled_from(["address", "bytes32", "uint256"]),
    st.one_of(
        st.binary(min_size=32, max_size=32),
        st.binary(min_size=20, max_size=20).map(lambda raw: bytes(12) + raw),
    ),
)
def test_topics_decode_as_eth_abi_decodes_them(abi_type: str, topic: bytes) -> None:
    """The topic types read directly (``_topic_value``) give eth-abi's strict values and
    refuse what it refuses (an address with dirty padding)."""
    from eth_abi import decode as abi_decode
    from eth_abi.exceptions import DecodingError

    from veilnet.chain.model import _convert, _topic_value

    try:
        expected = _convert(abi_type, abi_decode([abi_type], topic)[0])
    except DecodingError:
        with pytest.raises(DecodingError):
            _topic_value(abi_type, topic)
        return
    assert _topic_value(abi_type, topic) == expected
