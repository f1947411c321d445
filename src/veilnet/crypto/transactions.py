"""EIP-1559 (type 2) transactions signed with a secp256k1 key: the raw bytes a node takes and
their hash. A few lines of RLP where eth-account builds the same bytes through its formatters.

Theory of operation: the signing hash is ``keccak(0x02 || rlp([chain_id, nonce, tip, fee cap,
gas, to, value, data, access_list]))``; the raw transaction appends ``y_parity, r, s`` to that
list (EIP-1559, EIP-2718). Signatures are RFC 6979 and low-s, as libsecp256k1 makes them, so a
transaction signs to the same bytes here and in eth-account (``tests/foundation`` checks it).
A wallet sending thousands of commands spent about half its CPU in eth-account's signing.
"""

from __future__ import annotations

from rlp.codec import encode_raw
from rlp.sedes import big_endian_int

from veilnet.crypto._hazmat import secp256k1
from veilnet.crypto._hazmat.keccak import keccak
from veilnet.crypto.errors import KeyInvalid
from veilnet.crypto.keys import Address

__all__ = ["TransactionSigner"]

_TYPE_EIP1559 = b"\x02"
_UINT256 = 1 << 256
_UINT64 = 1 << 64
_uint = big_endian_int.serialize


class TransactionSigner:
    """A private key that signs EIP-1559 transactions. The key is parsed once; it appears
    in no ``repr`` and is not picklable."""

    __slots__ = ("_signer", "address")

    def __init__(self, private_key: bytes) -> None:
        """Raises KeyInvalid: not a 32-byte secp256k1 private key."""
        if not isinstance(private_key, bytes) or len(private_key) != 32:
            raise KeyInvalid("a private key is 32 bytes")
        try:
            self._signer = secp256k1.signer(private_key)
        except ValueError as exc:  # zero, or not below the group order
            raise KeyInvalid("not a secp256k1 private key") from exc
        self.address = Address(secp256k1.address_of(secp256k1.public_key(private_key)))
        """The account that sends what this key signs."""

    def sign_eip1559(
        self,
        *,
        chain_id: int,
        nonce: int,
        to: Address | bytes | None,
        value: int,
        data: bytes,
        gas: int,
        max_fee_per_gas: int,
        max_priority_fee_per_gas: int,
    ) -> tuple[bytes, bytes]:
        """(raw transaction, transaction hash); ``to`` None creates a contract. The access
        list is empty.

        Raises:
            ValueError: a value no chain would take (negative, a nonce past 64 bits, another
                integer past 256 bits, a tip above the fee cap, ``to`` not 20 bytes).
        """
        numbers = (chain_id, value, gas, max_fee_per_gas, max_priority_fee_per_gas)
        if any(isinstance(n, bool) or not 0 <= n < _UINT256 for n in numbers):
            raise ValueError("transaction integers are unsigned 256-bit values")
        if isinstance(nonce, bool) or not 0 <= nonce < _UINT64 - 1:
            raise ValueError("a nonce is below 2**64 - 1 (EIP-2681)")
        if max_priority_fee_per_gas > max_fee_per_gas:
            raise ValueError("the priority fee is above the fee cap")
        destination = b"" if to is None else to.raw if isinstance(to, Address) else bytes(to)
        if to is not None and len(destination) != 20:
            raise ValueError("a destination is a 20-byte address")
        # Integers serialized here and the list encoded raw: rlp.encode would infer a sedes
        # for every item, a third of a wallet's signing time.
        fields = [
            _uint(chain_id),
            _uint(nonce),
            _uint(max_priority_fee_per_gas),
            _uint(max_fee_per_gas),
            _uint(gas),
            destination,
            _uint(value),
            bytes(data),
            [],
        ]
        digest = keccak(_TYPE_EIP1559 + encode_raw(fields))
        signature = secp256k1.sign_digest(self._signer, digest)
        # r and s as minimal big-endian integers: RLP forbids leading zero bytes
        r = signature[:32].lstrip(b"\0")
        s = signature[32:64].lstrip(b"\0")
        raw = _TYPE_EIP1559 + encode_raw([*fields, _uint(signature[64] - 27), r, s])
        return raw, keccak(raw)

    def __repr__(self) -> str:
        return "TransactionSigner(<redacted>)"

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("transaction signers are not picklable")
