"""Domain-separated secp256k1 signatures: EIP-712 typed messages and EIP-191 texts.
Digests are what Vyper recomputes on chain, so EVM ``ecrecover`` yields the signer's address."""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_abi.exceptions import EncodingError

from veilnet.crypto._hazmat import secp256k1
from veilnet.crypto._hazmat.keccak import keccak
from veilnet.crypto.constants import EIP712_DOMAIN_NAME, EIP712_DOMAIN_VERSION
from veilnet.crypto.errors import SignatureInvalid
from veilnet.crypto.keys import Address, SecretKey

__all__ = [
    "Domain",
    "MessageType",
    "recover_text",
    "recover_typed",
    "sign_text",
    "sign_typed",
    "text_digest",
    "typed_digest",
    "verify_text",
    "verify_typed",
]

_DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
_DOMAIN_TYPEHASH = keccak(_DOMAIN_TYPE.encode())
_ATOMIC = re.compile(
    r"^(address|bool|bytes|string|u?int(8|16|32|64|128|256)|bytes([1-9]|[12]\d|3[0-2]))$"
)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class Domain:
    """The EIP-712 domain: Veilnet, version 1, this chain, and the verifying contract."""

    chain_id: int
    verifying_contract: Address
    separator: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "separator", self._compute_separator())

    def _compute_separator(self) -> bytes:
        return keccak(
            abi_encode(
                ["bytes32", "bytes32", "bytes32", "uint256", "address"],
                [
                    _DOMAIN_TYPEHASH,
                    keccak(EIP712_DOMAIN_NAME.encode()),
                    keccak(EIP712_DOMAIN_VERSION.encode()),
                    self.chain_id,
                    self.verifying_contract.hex,
                ],
            )
        )

    def as_eip712(self) -> dict[str, Any]:
        """The domain as wallets and eth-account expect it."""
        return {
            "name": EIP712_DOMAIN_NAME,
            "version": EIP712_DOMAIN_VERSION,
            "chainId": self.chain_id,
            "verifyingContract": self.verifying_contract.hex,
        }


@dataclass(frozen=True, slots=True)
class MessageType:
    """A flat EIP-712 struct type: a name and ordered (field name, atomic Solidity type) pairs."""

    name: str
    fields: tuple[tuple[str, str], ...]
    typehash: bytes = field(init=False, repr=False, compare=False)
    _names: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"bad EIP-712 type name {self.name!r}")
        for fname, ftype in self.fields:
            if not _NAME.match(fname) or not _ATOMIC.match(ftype):
                raise ValueError(f"unsupported EIP-712 field {fname!r}: {ftype!r}")
        object.__setattr__(self, "typehash", keccak(self.type_string.encode()))
        object.__setattr__(self, "_names", frozenset(n for n, _ in self.fields))

    @property
    def type_string(self) -> str:
        return f"{self.name}({','.join(f'{t} {n}' for n, t in self.fields)})"

    def struct_hash(self, values: Mapping[str, Any]) -> bytes:
        """keccak256(typehash || encodeData(values)), per EIP-712 for atomic members."""
        if values.keys() != self._names:
            raise ValueError(f"{self.name} needs exactly the fields {[n for n, _ in self.fields]}")
        words = [self.typehash]
        for fname, ftype in self.fields:
            words.append(_encode_word(ftype, values[fname], self.name))
        return keccak(b"".join(words))

    def as_eip712(self) -> dict[str, list[dict[str, str]]]:
        """The ``types`` entry for eth-account / wallets."""
        return {self.name: [{"name": n, "type": t} for n, t in self.fields]}


def _encode_word(ftype: str, value: Any, type_name: str) -> bytes:
    """One 32-byte EIP-712 ``encodeData`` word; fast paths for the common static types."""
    if ftype in ("bytes", "string"):
        raw = value.encode() if isinstance(value, str) else bytes(value)
        return keccak(raw)
    if ftype == "address" and isinstance(value, Address):
        return b"\x00" * 12 + value.raw
    if ftype == "bytes32" and isinstance(value, bytes) and len(value) == 32:
        return value
    if (
        ftype.startswith("uint")
        and isinstance(value, int)
        and not isinstance(value, bool)
        and 0 <= value < 2 ** int(ftype[4:])
    ):
        return value.to_bytes(32, "big")
    try:
        return abi_encode([ftype], [value.hex if isinstance(value, Address) else value])
    except (EncodingError, TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"value does not fit {type_name}.{ftype}: {exc}") from exc


def typed_digest(domain: Domain, message_type: MessageType, values: Mapping[str, Any]) -> bytes:
    """keccak256(0x1901 || domainSeparator || hashStruct(message))."""
    return keccak(b"\x19\x01" + domain.separator + message_type.struct_hash(values))


def sign_typed(
    key: SecretKey, domain: Domain, message_type: MessageType, values: Mapping[str, Any]
) -> bytes:
    """65-byte deterministic signature (r || s || v) over an EIP-712 message."""
    return key.sign_digest(typed_digest(domain, message_type, values))


def recover_typed(
    signature: bytes, domain: Domain, message_type: MessageType, values: Mapping[str, Any]
) -> Address:
    """The address that signed; raises SignatureInvalid for malformed signatures."""
    digest = typed_digest(domain, message_type, values)
    return Address(secp256k1.address_of(secp256k1.recover_digest(digest, signature)))


def verify_typed(
    signer: Address,
    signature: bytes,
    domain: Domain,
    message_type: MessageType,
    values: Mapping[str, Any],
) -> None:
    """Return None if ``signer`` signed the message, else raise SignatureInvalid."""
    recovered = recover_typed(signature, domain, message_type, values)
    if not hmac.compare_digest(recovered.raw, signer.raw):
        raise SignatureInvalid("signature was not made by the expected signer")


def text_digest(text: bytes | str) -> bytes:
    """EIP-191 version 0x45 (personal_sign) digest of a text."""
    raw = text.encode() if isinstance(text, str) else text
    return keccak(b"\x19Ethereum Signed Message:\n" + str(len(raw)).encode() + raw)


def sign_text(key: SecretKey, text: bytes | str) -> bytes:
    """EIP-191 personal_sign signature, as a wallet would make it."""
    return key.sign_digest(text_digest(text))


def recover_text(signature: bytes, text: bytes | str) -> Address:
    return Address(secp256k1.address_of(secp256k1.recover_digest(text_digest(text), signature)))


def verify_text(signer: Address, signature: bytes, text: bytes | str) -> None:
    if not hmac.compare_digest(recover_text(signature, text).raw, signer.raw):
        raise SignatureInvalid("signature was not made by the expected signer")


def recover_digest(signature: bytes, digest: bytes) -> Address:
    """Hazardous: the address that signed a raw 32-byte digest (as Solidity/Vyper
    ``ecrecover`` checks one). Raises SignatureInvalid for malformed or high-s signatures."""
    return Address(secp256k1.address_of(secp256k1.recover_digest(digest, signature)))
