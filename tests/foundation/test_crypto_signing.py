"""Signatures: RFC 6979 vector, EIP-712/EIP-191 against eth-account, EVM ecrecover via py-evm."""

from __future__ import annotations

import hashlib

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from hypothesis import given
from hypothesis import strategies as st

from veilnet.crypto import (
    Address,
    Domain,
    MessageType,
    SecretKey,
    SignatureInvalid,
    recover_text,
    recover_typed,
    sign_text,
    sign_typed,
    typed_digest,
    verify_text,
    verify_typed,
)
from veilnet.crypto._hazmat import secp256k1
from veilnet.crypto.constants import SECP256K1_N

KEY = SecretKey.derive(b"\x31" * 32, "worker")
DOMAIN = Domain(chain_id=31337, verifying_contract=Address(b"\x5b" * 20))
EGRESS = MessageType(
    "Egress",
    (("origin", "address"), ("seq", "uint64"), ("topic", "bytes32"), ("payload", "bytes")),
)
VALUES = {"origin": KEY.address, "seq": 9, "topic": b"\x07" * 32, "payload": b"state commitment"}


def test_rfc6979_secp256k1_known_answer() -> None:
    """Private key 1, SHA-256("Satoshi Nakamoto"): the widely published deterministic vector."""
    digest = hashlib.sha256(b"Satoshi Nakamoto").digest()
    sig = secp256k1.sign_digest((1).to_bytes(32, "big"), digest)
    assert sig[:32].hex() == "934b1ea10a4b3c1757e2b0c017d0b6143ce3c9a7e6a4a49860d7a6ab210ee3d8"
    assert sig[32:64].hex() == "2442ce9d2b916064108014783e923ec36b49743e2ffa1c4496f01a512aafd9e5"


def test_signatures_are_deterministic_and_low_s() -> None:
    a = sign_typed(KEY, DOMAIN, EGRESS, VALUES)
    assert a == sign_typed(KEY, DOMAIN, EGRESS, VALUES)
    assert int.from_bytes(a[32:64], "big") <= SECP256K1_N // 2
    assert a[64] in (27, 28)


def test_eip712_matches_eth_account() -> None:
    signature = sign_typed(KEY, DOMAIN, EGRESS, VALUES)
    message = encode_typed_data(
        domain_data=DOMAIN.as_eip712(),
        message_types=EGRESS.as_eip712(),
        message_data={**VALUES, "origin": KEY.address.hex},
    )
    assert Account.recover_message(message, signature=signature) == KEY.address.hex
    assert recover_typed(signature, DOMAIN, EGRESS, VALUES) == KEY.address
    verify_typed(KEY.address, signature, DOMAIN, EGRESS, VALUES)


def test_eip191_matches_eth_account() -> None:
    text = "veilnet query certificate"
    signature = sign_text(KEY, text)
    assert (
        Account.recover_message(encode_defunct(text=text), signature=signature) == KEY.address.hex
    )
    wallet = Account.from_key(b"\x07" * 32)
    wallet_sig = wallet.sign_message(encode_defunct(text=text)).signature
    assert recover_text(bytes(wallet_sig), text).hex == wallet.address
    verify_text(Address.parse(wallet.address), bytes(wallet_sig), text)
    with pytest.raises(SignatureInvalid):
        verify_text(KEY.address, bytes(wallet_sig), text)


@pytest.mark.parametrize(
    ("field", "value"),
    [("seq", 10), ("origin", Address(b"\x01" * 20)), ("topic", b"\x08" * 32), ("payload", b"x")],
)
def test_any_changed_field_fails_verification(field: str, value: object) -> None:
    signature = sign_typed(KEY, DOMAIN, EGRESS, VALUES)
    with pytest.raises(SignatureInvalid) as info:
        verify_typed(KEY.address, signature, DOMAIN, EGRESS, {**VALUES, field: value})
    assert info.value.code == "signature_invalid"


def test_wrong_chain_or_contract_fails_verification() -> None:
    signature = sign_typed(KEY, DOMAIN, EGRESS, VALUES)
    for domain in (Domain(1, DOMAIN.verifying_contract), Domain(31337, Address(b"\x01" * 20))):
        with pytest.raises(SignatureInvalid):
            verify_typed(KEY.address, signature, domain, EGRESS, VALUES)


def test_malformed_signatures_are_typed_errors() -> None:
    good = sign_typed(KEY, DOMAIN, EGRESS, VALUES)
    high_s = (
        good[:32]
        + (SECP256K1_N - int.from_bytes(good[32:64], "big")).to_bytes(32, "big")
        + bytes([good[64] ^ 1])
    )
    for bad in (
        b"",
        good[:64],
        good + b"\x00",
        good[:64] + b"\x00",
        good[:64] + b"\x1d",
        b"\x00" * 65,
        high_s,
    ):
        with pytest.raises(SignatureInvalid):
            recover_typed(bad, DOMAIN, EGRESS, VALUES)


@given(st.binary(min_size=65, max_size=65))
def test_random_signatures_never_crash(sig: bytes) -> None:
    try:
        recover_typed(sig, DOMAIN, EGRESS, VALUES)
    except SignatureInvalid:
        pass


def test_message_type_validation() -> None:
    with pytest.raises(ValueError):
        MessageType("Bad Name", (("a", "uint256"),))
    with pytest.raises(ValueError):
        MessageType("T", (("a", "uint7"),))
    with pytest.raises(ValueError):
        EGRESS.struct_hash({"origin": KEY.address})
    with pytest.raises(ValueError):
        EGRESS.struct_hash({**VALUES, "seq": 2**64})


def test_evm_ecrecover_precompile_recovers_our_signer() -> None:
    """A digest signed here is recovered to the same address by the EVM (py-evm's ecrecover)."""
    from eth_tester import EthereumTester, PyEVMBackend

    tester = EthereumTester(PyEVMBackend())
    digest = typed_digest(DOMAIN, EGRESS, VALUES)
    signature = sign_typed(KEY, DOMAIN, EGRESS, VALUES)
    r, s, v = signature[:32], signature[32:64], signature[64]
    calldata = digest + v.to_bytes(32, "big") + r + s
    result = tester.call(
        {
            "from": tester.get_accounts()[0],
            "to": "0x" + "00" * 19 + "01",
            "data": "0x" + calldata.hex(),
            "gas": 100_000,
        }
    )
    raw = bytes.fromhex(result[2:]) if isinstance(result, str) else bytes(result)
    assert raw[12:] == KEY.address.raw


def test_keccak_is_ethereums_hash_not_sha3() -> None:
    """``veilnet.crypto.keccak`` is Keccak-256 with the original padding (what the EVM's
    KECCAK256 computes), checked against published digests and against eth-hash."""
    from eth_hash.auto import keccak as reference

    from veilnet.crypto import keccak

    empty = "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    assert keccak(b"").hex() == empty
    assert keccak(b"").hex() != hashlib.sha3_256(b"").hexdigest()
    assert keccak(b"transfer(address,uint256)")[:4].hex() == "a9059cbb"
    assert keccak(bytearray(b"abc")) == keccak(memoryview(b"abc")) == reference(b"abc")


@given(st.binary(max_size=600))
def test_keccak_agrees_with_eth_hash(data: bytes) -> None:
    from eth_hash.auto import keccak as reference

    from veilnet.crypto import keccak

    assert keccak(data) == reference(data)


_TX = st.fixed_dictionaries(
    {
        "chain_id": st.integers(1, 2**64),
        "nonce": st.integers(0, 2**64 - 2),
        "to": st.one_of(st.none(), st.binary(min_size=20, max_size=20)),
        "value": st.integers(0, 2**256 - 1),
        "data": st.binary(max_size=300),
        "gas": st.integers(0, 2**64),
        "max_fee_per_gas": st.integers(2**40, 2**200),
        "max_priority_fee_per_gas": st.integers(0, 2**40),
    }
)


@given(st.binary(min_size=32, max_size=32), _TX)
def test_eip1559_transactions_sign_to_eth_accounts_bytes(key: bytes, tx: dict[str, object]) -> None:
    """``TransactionSigner`` (what wallets, the relay and the core's registration sign with)
    makes the bytes and hash eth-account makes for the same transaction and key."""
    from hypothesis import assume

    from veilnet.crypto import KeyInvalid, TransactionSigner

    try:
        signer = TransactionSigner(key)
    except KeyInvalid:
        assume(False)
        return
    raw, tx_hash = signer.sign_eip1559(**tx)  # type: ignore[arg-type]
    to = tx["to"]
    reference = Account.from_key(key).sign_transaction(
        {
            "chainId": tx["chain_id"],
            "nonce": tx["nonce"],
            "to": b"" if to is None else Address(to).hex,  # type: ignore[arg-type]
            "value": tx["value"],
            "data": tx["data"],
            "gas": tx["gas"],
            "maxFeePerGas": tx["max_fee_per_gas"],
            "maxPriorityFeePerGas": tx["max_priority_fee_per_gas"],
        }
    )
    assert raw == bytes(reference.raw_transaction)
    assert tx_hash == bytes(reference.hash)
    assert Account.recover_transaction(raw) == Account.from_key(key).address
    assert signer.address == Address.parse(Account.from_key(key).address)


def test_signatures_with_leading_zero_bytes_encode_as_eth_account_does() -> None:
    """r or s below 2**248 is a shorter RLP integer (no leading zero byte): a case random
    transactions reach only once in about 128 signatures."""
    from veilnet.crypto import TransactionSigner

    key = b"\x07" * 32
    signer = TransactionSigner(key)
    account = Account.from_key(key)
    short = 0
    for nonce in range(2000):
        raw, _ = signer.sign_eip1559(
            chain_id=31337, nonce=nonce, to=b"\x22" * 20, value=nonce, data=b"\x01",
            gas=50_000, max_fee_per_gas=10**9, max_priority_fee_per_gas=1,
        )  # fmt: skip
        tx = {
            "chainId": 31337, "nonce": nonce, "to": Address(b"\x22" * 20).hex, "value": nonce,
            "data": b"\x01", "gas": 50_000, "maxFeePerGas": 10**9, "maxPriorityFeePerGas": 1,
        }  # fmt: skip
        reference = account.sign_transaction(tx)
        if reference.r < 2**248 or reference.s < 2**248:
            assert raw == bytes(reference.raw_transaction)
            short += 1
            if short == 2:
                return
    pytest.fail("no signature with a leading zero byte in 2,000 tries")


def test_a_transaction_no_chain_would_take_is_refused() -> None:
    from veilnet.crypto import KeyInvalid, TransactionSigner

    signer = TransactionSigner(b"\x01" * 32)
    good = {
        "chain_id": 1, "nonce": 0, "to": b"\x11" * 20, "value": 0, "data": b"", "gas": 21_000,
        "max_fee_per_gas": 2, "max_priority_fee_per_gas": 1,
    }  # fmt: skip
    signer.sign_eip1559(**good)  # type: ignore[arg-type]
    for bad in (
        {"nonce": 2**64 - 1},
        {"value": -1},
        {"gas": 2**256},
        {"max_priority_fee_per_gas": 3},
        {"to": b"\x11" * 19},
        {"chain_id": True},
    ):
        with pytest.raises(ValueError):
            signer.sign_eip1559(**{**good, **bad})  # type: ignore[arg-type]
    for key in (b"\x00" * 32, b"\xff" * 32, b"\x01" * 31):
        with pytest.raises(KeyInvalid):
            TransactionSigner(key)
    assert "01" not in repr(signer)
    with pytest.raises(TypeError):
        signer.__reduce__()  # what pickling calls: a key never leaves in a pickle
