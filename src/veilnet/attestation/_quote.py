"""A bounded, total parser for SGX v3 and TDX v4/v5 DCAP quotes (layout only, no crypto).
dcap-qvl checks the signatures; this parser names the fields and never raises anything but
``QuoteMalformed``/``QuoteTooLarge``/``UnsupportedTEE`` on hostile bytes."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from veilnet.attestation.constants import (
    ATTESTATION_KEY_ECDSA_P256,
    ATTESTATION_KEY_SIZE,
    ECDSA_SIGNATURE_SIZE,
    HEADER_SIZE,
    MAX_QUOTE_SIZE,
    MR_SGX_LENGTH,
    MR_TDX_LENGTH,
    REPORT_DATA_LENGTH,
    SGX_REPORT_SIZE,
    SUPPORTED_VERSIONS,
    TD_REPORT10_SIZE,
    TD_REPORT15_SIZE,
    TEE_TYPE_SGX,
    TEE_TYPE_TDX,
    V5_BODY_TD10,
    V5_BODY_TD15,
)
from veilnet.attestation.errors import QuoteMalformed, QuoteTooLarge, UnsupportedTEE

__all__ = ["ParsedQuote", "TEEKind", "parse_quote"]

_CERT_TYPE_PCK_CHAIN = 5
_CERT_TYPE_QE_REPORT = 6
_QE_REPORT_SIZE = SGX_REPORT_SIZE


class TEEKind(StrEnum):
    """The kind of trusted execution environment a quote (or an enclave) belongs to."""

    TDX = "tdx"
    SGX = "sgx"


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedQuote:
    """The named fields of a quote; ``signed`` is the header and body the attestation key signs."""

    version: int
    tee: TEEKind
    qe_svn: int
    pce_svn: int
    body: bytes
    report_data: bytes
    signed: bytes
    signature: bytes
    attestation_key: bytes
    qe_report: bytes
    qe_report_signature: bytes
    qe_auth_data: bytes
    pck_chain_pem: bytes
    trailing: int
    """Bytes after the signature data (zero padding from the quote device); not signed."""

    # TDX fields (empty for SGX)
    mrtd: bytes = b""
    rtmr0: bytes = b""
    rtmr1: bytes = b""
    rtmr2: bytes = b""
    rtmr3: bytes = b""
    td_attributes: bytes = b""
    # SGX fields (empty for TDX)
    mr_enclave: bytes = b""
    mr_signer: bytes = b""
    isv_prod_id: int = 0
    isv_svn: int = 0
    attributes: bytes = b""


class _Reader:
    """Cursor over untrusted bytes; every read is bounds-checked."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def take(self, n: int, what: str) -> bytes:
        end = self.pos + n
        if n < 0 or end > len(self.data):
            raise QuoteMalformed(f"quote truncated in {what}", field=what)
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def u16(self, what: str) -> int:
        value: int = struct.unpack("<H", self.take(2, what))[0]
        return value

    def u32(self, what: str) -> int:
        value: int = struct.unpack("<I", self.take(4, what))[0]
        return value


def parse_quote(raw: bytes) -> ParsedQuote:
    """Parse ``raw`` into its fields.

    Raises:
        TypeError: ``raw`` is not bytes (a caller bug).
        QuoteTooLarge: over ``MAX_QUOTE_SIZE``.
        UnsupportedTEE: unknown TEE type, quote version or attestation key type.
        QuoteMalformed: truncated or inconsistent lengths.
    """
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise TypeError("a quote is bytes")
    raw = bytes(raw)
    if len(raw) > MAX_QUOTE_SIZE:
        raise QuoteTooLarge(
            f"quote is {len(raw)} bytes, the limit is {MAX_QUOTE_SIZE}", size=len(raw)
        )
    if len(raw) < HEADER_SIZE:
        raise QuoteMalformed(f"quote is {len(raw)} bytes, shorter than a header", size=len(raw))
    reader = _Reader(raw)
    version = reader.u16("header.version")
    key_type = reader.u16("header.attestation_key_type")
    tee_type = reader.u32("header.tee_type")
    qe_svn = reader.u16("header.qe_svn")
    pce_svn = reader.u16("header.pce_svn")
    reader.take(HEADER_SIZE - 12, "header")
    versions = SUPPORTED_VERSIONS.get(tee_type)
    if versions is None:
        raise UnsupportedTEE(f"unknown TEE type 0x{tee_type:08x}", tee_type=tee_type)
    if version not in versions:
        raise UnsupportedTEE(
            f"quote version {version} is not supported for this TEE type", version=version
        )
    if key_type != ATTESTATION_KEY_ECDSA_P256:
        raise UnsupportedTEE(f"attestation key type {key_type} is not supported")

    tee = TEEKind.TDX if tee_type == TEE_TYPE_TDX else TEEKind.SGX
    if tee is TEEKind.SGX:
        body = reader.take(SGX_REPORT_SIZE, "body")
    elif version == 4:
        body = reader.take(TD_REPORT10_SIZE, "body")
    else:
        body_type = reader.u16("body.type")
        body_size = reader.u32("body.size")
        expected = {V5_BODY_TD10: TD_REPORT10_SIZE, V5_BODY_TD15: TD_REPORT15_SIZE}.get(body_type)
        if expected is None:
            raise UnsupportedTEE(f"quote v5 body type {body_type} is not supported")
        if body_size != expected:
            raise QuoteMalformed("quote v5 body size does not match its type", field="body.size")
        body = reader.take(body_size, "body")
    signed = raw[: reader.pos]

    sig_len = reader.u32("signature_data_len")
    sig_end = reader.pos + sig_len
    if sig_end > len(raw):
        raise QuoteMalformed("signature data runs past the end of the quote", field="signature")
    sig = _Reader(raw[:sig_end], reader.pos)
    signature = sig.take(ECDSA_SIGNATURE_SIZE, "signature")
    attestation_key = sig.take(ATTESTATION_KEY_SIZE, "attestation_key")
    if tee is TEEKind.TDX:
        outer_type = sig.u16("certification_data.type")
        outer_size = sig.u32("certification_data.size")
        if outer_type != _CERT_TYPE_QE_REPORT:
            raise UnsupportedTEE(f"certification data type {outer_type} is not supported")
        if sig.pos + outer_size != sig_end:
            raise QuoteMalformed("certification data size is inconsistent", field="cert_data")
    qe_report = sig.take(_QE_REPORT_SIZE, "qe_report")
    qe_report_signature = sig.take(ECDSA_SIGNATURE_SIZE, "qe_report_signature")
    auth_len = sig.u16("qe_auth_data.size")
    qe_auth_data = sig.take(auth_len, "qe_auth_data")
    inner_type = sig.u16("pck_cert_data.type")
    inner_size = sig.u32("pck_cert_data.size")
    if inner_type != _CERT_TYPE_PCK_CHAIN:
        raise UnsupportedTEE(f"PCK certification data type {inner_type} is not supported")
    pck_chain_pem = sig.take(inner_size, "pck_cert_data")
    if sig.pos != sig_end:
        raise QuoteMalformed("signature data has unparsed bytes", field="signature_data")

    def common(report_data: bytes) -> dict[str, Any]:
        return {
            "version": version,
            "tee": tee,
            "qe_svn": qe_svn,
            "pce_svn": pce_svn,
            "body": body,
            "report_data": report_data,
            "signed": signed,
            "signature": signature,
            "attestation_key": attestation_key,
            "qe_report": qe_report,
            "qe_report_signature": qe_report_signature,
            "qe_auth_data": qe_auth_data,
            "pck_chain_pem": pck_chain_pem,
            "trailing": len(raw) - sig_end,
        }

    if tee is TEEKind.TDX:
        mr = MR_TDX_LENGTH
        return ParsedQuote(
            **common(body[520 : 520 + REPORT_DATA_LENGTH]),
            td_attributes=body[120:128],
            mrtd=body[136 : 136 + mr],
            rtmr0=body[328 : 328 + mr],
            rtmr1=body[376 : 376 + mr],
            rtmr2=body[424 : 424 + mr],
            rtmr3=body[472 : 472 + mr],
        )
    prod_id, svn = struct.unpack("<HH", body[256:260])
    return ParsedQuote(
        **common(body[320 : 320 + REPORT_DATA_LENGTH]),
        attributes=body[48:64],
        mr_enclave=body[64 : 64 + MR_SGX_LENGTH],
        mr_signer=body[128 : 128 + MR_SGX_LENGTH],
        isv_prod_id=prod_id,
        isv_svn=svn,
    )


def tee_type_code(tee: TEEKind) -> int:
    """The header's TEE type value for ``tee``."""
    return TEE_TYPE_TDX if tee is TEEKind.TDX else TEE_TYPE_SGX
