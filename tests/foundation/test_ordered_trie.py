"""The core's one-pass Merkle-Patricia root equals py-trie's HexaryTrie on any key/value set."""

from __future__ import annotations

import pytest
import rlp
from hypothesis import given
from hypothesis import strategies as st
from trie.hexary import HexaryTrie

from veilnet.protocol.chain import EMPTY_TRIE_ROOT, ordered_trie_root, receipts_root


def _reference(items: list[tuple[bytes, bytes]]) -> bytes:
    trie = HexaryTrie({})
    for key, value in items:
        trie[key] = value
    return bytes(trie.root_hash)


@given(
    st.dictionaries(
        st.binary(min_size=1, max_size=6), st.binary(min_size=1, max_size=80), max_size=60
    )
)
def test_any_key_set_has_the_reference_root(pairs: dict[bytes, bytes]) -> None:
    """Keys of mixed lengths, prefixes of each other included (branch values, extensions)."""
    items = list(pairs.items())
    assert ordered_trie_root(items) == _reference(items)


@pytest.mark.parametrize("count", [0, 1, 2, 16, 17, 127, 128, 129, 300])
def test_receipt_tries_of_every_shape(count: int) -> None:
    receipts = [bytes([index % 251]) * (1 + index % 90) for index in range(count)]
    expected = _reference([(rlp.encode(i), r) for i, r in enumerate(receipts)])
    assert receipts_root(receipts) == (EMPTY_TRIE_ROOT if count == 0 else expected)


def test_a_duplicate_key_is_refused() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        ordered_trie_root([(b"\x01", b"a"), (b"\x01", b"b")])


@given(st.integers(min_value=0, max_value=2**256 - 1))
def test_rlp_integers_encode_as_pyrlp_encodes_them(value: int) -> None:
    """Receipts and trie keys are encoded with ``encode_raw`` over ``big_endian_int`` bytes
    (no type inference); that is RLP's integer encoding."""
    from rlp.codec import encode_raw
    from rlp.sedes import big_endian_int

    assert encode_raw(big_endian_int.serialize(value)) == rlp.encode(value)
