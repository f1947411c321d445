"""Veilnet's cryptographic recipes: keys, HPKE envelopes, typed signatures, sealed values.
Suites, version tags and bindings are fixed here; raw primitives live in ``crypto._hazmat``."""

from veilnet.crypto._hazmat.keccak import keccak
from veilnet.crypto.envelope import (
    Binding,
    EnvelopeHeader,
    open_envelope,
    open_key_envelope,
    peek_envelope,
    seal_for,
    seal_key_for,
    suite_for_public_key,
)
from veilnet.crypto.errors import EnvelopeInvalid, KeyInvalid, SignatureInvalid, UnsupportedVersion
from veilnet.crypto.keys import Address, PublicKeys, SecretKey, Suite, SymmetricKey
from veilnet.crypto.session import QuerySession
from veilnet.crypto.signing import (
    Domain,
    MessageType,
    recover_digest,
    recover_text,
    recover_typed,
    sign_text,
    sign_typed,
    text_digest,
    typed_digest,
    verify_text,
    verify_typed,
)
from veilnet.crypto.transactions import TransactionSigner

__all__ = [
    "Address",
    "Binding",
    "Domain",
    "EnvelopeHeader",
    "EnvelopeInvalid",
    "KeyInvalid",
    "MessageType",
    "PublicKeys",
    "QuerySession",
    "SecretKey",
    "SignatureInvalid",
    "Suite",
    "SymmetricKey",
    "TransactionSigner",
    "UnsupportedVersion",
    "keccak",
    "open_envelope",
    "open_key_envelope",
    "peek_envelope",
    "recover_digest",
    "recover_text",
    "recover_typed",
    "seal_for",
    "seal_key_for",
    "sign_text",
    "sign_typed",
    "suite_for_public_key",
    "text_digest",
    "typed_digest",
    "verify_text",
    "verify_typed",
]
