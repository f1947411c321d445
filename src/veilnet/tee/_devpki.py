"""INSECURE development DCAP PKI, derived from a per-network seed, and the quotes it signs.

Theory of operation: the same shape as Intel's PKI — root CA → PCK platform CA → PCK leaf with
the SGX extension (1.2.840.113741.1.13.1), TCB-signing and QE-identity-signing certs, root and
PCK CRLs — all ECDSA P-256, keys derived from the seed so every node of a network derives the
same root. Quotes are ordinary TDX v4 / SGX v3 quotes (cert data type 6 → QE report → type 5
PCK chain), so dcap-qvl verifies them on its normal path with ``verify_with_root_ca``.
Certificates and collateral use deterministic ECDSA so they are reproducible byte for byte.
"""

from __future__ import annotations

import functools
import hashlib
import json
import struct
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from veilnet.attestation import Collateral, Measurement, TEEKind
from veilnet.attestation.constants import INTEL_QE_VENDOR_ID, TEE_TYPE_SGX, TEE_TYPE_TDX
from veilnet.crypto import SecretKey
from veilnet.tee.constants import (
    DEV_CERT_NOT_AFTER,
    DEV_CERT_NOT_BEFORE,
    DEV_ORGANIZATION,
    DEV_QE_ISV_PROD_ID,
    DEV_QE_ISV_SVN,
    DEV_QE_MRSIGNER,
    DEV_QE_SVN,
    DEV_SGX_ATTRIBUTES,
    DEV_TD_ATTRIBUTES,
    MIN_NETWORK_SEED_LENGTH,
    SGX_EXTENSION_OID,
)

__all__ = ["DevPKI", "dev_collateral", "dev_pki"]

_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_DETERMINISTIC = ec.ECDSA(hashes.SHA256(), deterministic_signing=True)


# --- minimal DER for the SGX extension (cryptography has no generic ASN.1 encoder) ---------


def _tlv(tag: int, value: bytes) -> bytes:
    n = len(value)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + value


def _oid(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    body = bytearray([40 * parts[0] + parts[1]])
    for part in parts[2:]:
        chunk = [part & 0x7F]
        part >>= 7
        while part:
            chunk.append(0x80 | (part & 0x7F))
            part >>= 7
        body.extend(reversed(chunk))
    return _tlv(0x06, bytes(body))


def _int(value: int) -> bytes:
    raw = value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big")
    return _tlv(0x02, raw)


def _seq(*items: bytes) -> bytes:
    return _tlv(0x30, b"".join(items))


def _sgx_extension(*, ppid: bytes, fmspc: bytes, pce_id: bytes) -> bytes:
    base = SGX_EXTENSION_OID
    tcb = [_seq(_oid(f"{base}.2.{i}"), _int(0)) for i in range(1, 17)]
    tcb.append(_seq(_oid(f"{base}.2.17"), _int(0)))  # PCESVN
    tcb.append(_seq(_oid(f"{base}.2.18"), _tlv(0x04, bytes(16))))  # CPUSVN
    return _seq(
        _seq(_oid(f"{base}.1"), _tlv(0x04, ppid)),
        _seq(_oid(f"{base}.2"), _seq(*tcb)),
        _seq(_oid(f"{base}.3"), _tlv(0x04, pce_id)),
        _seq(_oid(f"{base}.4"), _tlv(0x04, fmspc)),
        _seq(_oid(f"{base}.5"), _tlv(0x0A, b"\x00")),  # SGX type: standard
    )


# --- keys and certificates -------------------------------------------------------------------


def _raw_signature(der: bytes) -> bytes:
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _raw_public(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)[1:]


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, DEV_ORGANIZATION),
        ]
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class DevPKI:
    """The keys and certificates of one network's development PKI."""

    root_key: ec.EllipticCurvePrivateKey
    platform_key: ec.EllipticCurvePrivateKey
    pck_key: ec.EllipticCurvePrivateKey
    tcb_key: ec.EllipticCurvePrivateKey
    qe_identity_key: ec.EllipticCurvePrivateKey
    attestation_key: ec.EllipticCurvePrivateKey
    root_cert: x509.Certificate
    platform_cert: x509.Certificate
    pck_cert: x509.Certificate
    tcb_cert: x509.Certificate
    qe_identity_cert: x509.Certificate
    attestation_public: bytes
    quote_tails: dict[TEEKind, bytes]
    """Per TEE kind: everything after the quote signature and attestation key (QE report,
    its signature, auth data, PCK chain) — identical for every quote, so built once."""

    @property
    def root_der(self) -> bytes:
        return self.root_cert.public_bytes(Encoding.DER)

    def pem(self, *certs: x509.Certificate) -> str:
        return "".join(c.public_bytes(Encoding.PEM).decode() for c in certs)


@functools.lru_cache(maxsize=16)
def dev_pki(network_seed: bytes) -> DevPKI:
    """The development PKI of the network with ``network_seed`` (cached per seed)."""
    if not isinstance(network_seed, bytes) or len(network_seed) < MIN_NETWORK_SEED_LENGTH:
        raise ValueError(f"a network seed is at least {MIN_NETWORK_SEED_LENGTH} bytes")
    prf = SecretKey.derive(network_seed, "dev-tee", "pki").symmetric("dev-tee-pki")

    def key(label: str) -> ec.EllipticCurvePrivateKey:
        scalar = int.from_bytes(prf.mac(b"key:" + label.encode()), "big") % (_P256_ORDER - 1)
        return ec.derive_private_key(scalar + 1, ec.SECP256R1())

    def serial(label: str) -> int:
        return int.from_bytes(prf.mac(b"serial:" + label.encode())[:19], "big") | 1

    keys = {
        label: key(label) for label in ("root", "platform", "pck", "tcb", "qe-identity", "attest")
    }

    def cert(
        label: str, subject: str, issuer: x509.Certificate | None, issuer_label: str, *, ca: bool
    ) -> x509.Certificate:
        public = keys[label].public_key()
        issuer_name = issuer.subject if issuer is not None else _name(subject)
        issuer_public = keys[issuer_label].public_key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(subject))
            .issuer_name(issuer_name)
            .public_key(public)
            .serial_number(serial(label))
            .not_valid_before(DEV_CERT_NOT_BEFORE)
            .not_valid_after(DEV_CERT_NOT_AFTER)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public), critical=False
            )
        )
        if ca:
            builder = builder.add_extension(
                x509.BasicConstraints(ca=True, path_length=None), critical=True
            ).add_extension(_key_usage(cert_sign=True), critical=True)
        else:
            builder = builder.add_extension(
                _key_usage(cert_sign=False), critical=True
            ).add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
        if label == "pck":
            builder = builder.add_extension(
                x509.UnrecognizedExtension(
                    x509.ObjectIdentifier(SGX_EXTENSION_OID),
                    _sgx_extension(ppid=bytes(16), fmspc=bytes(6), pce_id=bytes(2)),
                ),
                critical=False,
            )
        return builder.sign(keys[issuer_label], hashes.SHA256(), ecdsa_deterministic=True)

    root = cert("root", "Veilnet Dev SGX Root CA (INSECURE)", None, "root", ca=True)
    platform = cert("platform", "Veilnet Dev SGX PCK Platform CA", root, "root", ca=True)
    pck = cert("pck", "Veilnet Dev SGX PCK Certificate", platform, "platform", ca=False)
    tcb = cert("tcb", "Veilnet Dev SGX TCB Signing", root, "root", ca=False)
    qe_identity = cert("qe-identity", "Veilnet Dev SGX QE Identity Signing", root, "root", ca=False)
    attestation_public = _raw_public(keys["attest"])
    chain_pem = b"".join(c.public_bytes(Encoding.PEM) for c in (pck, platform, root))
    tails = {
        kind: _quote_tail(kind, attestation_public, keys["pck"], chain_pem) for kind in TEEKind
    }
    return DevPKI(
        root_key=keys["root"],
        platform_key=keys["platform"],
        pck_key=keys["pck"],
        tcb_key=keys["tcb"],
        qe_identity_key=keys["qe-identity"],
        attestation_key=keys["attest"],
        root_cert=root,
        platform_cert=platform,
        pck_cert=pck,
        tcb_cert=tcb,
        qe_identity_cert=qe_identity,
        attestation_public=attestation_public,
        quote_tails=tails,
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


# --- quotes -------------------------------------------------------------------------------------


def _sgx_report_body(
    *,
    attributes: bytes,
    mr_enclave: bytes,
    mr_signer: bytes,
    isv_prod_id: int,
    isv_svn: int,
    report_data: bytes,
) -> bytes:
    body = (
        bytes(16)  # cpu_svn
        + bytes(4)  # misc_select
        + bytes(28)
        + attributes
        + mr_enclave
        + bytes(32)
        + mr_signer
        + bytes(96)
        + struct.pack("<HH", isv_prod_id, isv_svn)
        + bytes(60)
        + report_data
    )
    return body


def _quote_tail(
    kind: TEEKind, attestation_public: bytes, pck_key: ec.EllipticCurvePrivateKey, chain: bytes
) -> bytes:
    auth_data = bytes(32)
    qe_report = _sgx_report_body(
        attributes=bytes(16),
        mr_enclave=bytes(32),
        mr_signer=DEV_QE_MRSIGNER,
        isv_prod_id=DEV_QE_ISV_PROD_ID,
        isv_svn=DEV_QE_ISV_SVN,
        report_data=hashlib.sha256(attestation_public + auth_data).digest() + bytes(32),
    )
    qe_signature = _raw_signature(pck_key.sign(qe_report, _DETERMINISTIC))
    qe_part = (
        qe_report
        + qe_signature
        + struct.pack("<H", len(auth_data))
        + auth_data
        + struct.pack("<HI", 5, len(chain))
        + chain
    )
    if kind is TEEKind.TDX:
        return struct.pack("<HI", 6, len(qe_part)) + qe_part
    return qe_part


def header(kind: TEEKind) -> bytes:
    """A v4 TDX or v3 SGX quote header from the dev QE."""
    if kind is TEEKind.TDX:
        start = struct.pack("<HHIHH", 4, 2, TEE_TYPE_TDX, DEV_QE_SVN, 0)
    else:
        start = struct.pack("<HHIHH", 3, 2, TEE_TYPE_SGX, DEV_QE_SVN, 0)
    return start + INTEL_QE_VENDOR_ID + bytes(20)


def body(measurement: Measurement, report_data: bytes) -> bytes:
    """The TD report 1.0 or SGX report body for ``measurement`` and ``report_data``."""
    if measurement.tee is TEEKind.TDX:
        return (
            bytes(16)  # tee_tcb_svn
            + bytes(48)  # mr_seam
            + bytes(48)  # mr_signer_seam
            + bytes(8)  # seam_attributes
            + DEV_TD_ATTRIBUTES
            + bytes(8)  # xfam
            + measurement.mrtd
            + bytes(48 * 3)  # mr_config_id, mr_owner, mr_owner_config
            + measurement.rtmr0
            + measurement.rtmr1
            + measurement.rtmr2
            + measurement.rtmr3
            + report_data
        )
    return _sgx_report_body(
        attributes=DEV_SGX_ATTRIBUTES,
        mr_enclave=measurement.mr_enclave,
        mr_signer=measurement.mr_signer,
        isv_prod_id=measurement.isv_prod_id,
        isv_svn=measurement.isv_svn,
        report_data=report_data,
    )


def build_quote(pki: DevPKI, measurement: Measurement, report_data: bytes) -> bytes:
    """A signed quote; only the ECDSA signature over header ‖ body is computed per call."""
    signed = header(measurement.tee) + body(measurement, report_data)
    signature = _raw_signature(pki.attestation_key.sign(signed, ec.ECDSA(hashes.SHA256())))
    tail = pki.quote_tails[measurement.tee]
    signature_data = signature + pki.attestation_public + tail
    return signed + struct.pack("<I", len(signature_data)) + signature_data


# --- collateral ---------------------------------------------------------------------------------


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@functools.lru_cache(maxsize=64)
def dev_collateral(
    network_seed: bytes,
    kind: TEEKind,
    *,
    issued_at: int,
    validity_s: int,
    tcb_status: str = "UpToDate",
    advisory_ids: tuple[str, ...] = (),
) -> Collateral:
    """Signed TCB info (v3), QE identity (v2) and CRLs for the dev platform (cached)."""
    pki = dev_pki(network_seed)
    issue, next_update = _iso(issued_at), _iso(issued_at + validity_s)
    components = [{"svn": 0} for _ in range(16)]
    tcb: dict[str, object] = {"sgxtcbcomponents": components, "pcesvn": 0}
    level: dict[str, object] = {"tcb": tcb, "tcbDate": issue, "tcbStatus": tcb_status}
    if advisory_ids:
        level["advisoryIDs"] = list(advisory_ids)
    tcb_info: dict[str, object] = {
        "id": "TDX" if kind is TEEKind.TDX else "SGX",
        "version": 3,
        "issueDate": issue,
        "nextUpdate": next_update,
        "fmspc": "000000000000",
        "pceId": "0000",
        "tcbType": 0,
        "tcbEvaluationDataNumber": 1,
    }
    if kind is TEEKind.TDX:
        tcb["tdxtcbcomponents"] = [{"svn": 0} for _ in range(16)]
        tcb_info["tdxModule"] = {
            "mrsigner": "00" * 48,
            "attributes": "00" * 8,
            "attributesMask": "00" * 8,
        }
    tcb_info["tcbLevels"] = [level]
    qe_identity = {
        "id": "TD_QE" if kind is TEEKind.TDX else "QE",
        "version": 2,
        "issueDate": issue,
        "nextUpdate": next_update,
        "tcbEvaluationDataNumber": 1,
        "miscselect": "00000000",
        "miscselectMask": "00000000",
        "attributes": "00" * 16,
        "attributesMask": "00" * 16,
        "mrsigner": DEV_QE_MRSIGNER.hex(),
        "isvprodid": DEV_QE_ISV_PROD_ID,
        "tcbLevels": [
            {"tcb": {"isvsvn": DEV_QE_ISV_SVN}, "tcbDate": issue, "tcbStatus": "UpToDate"}
        ],
    }
    tcb_text = json.dumps(tcb_info, separators=(",", ":"))
    qe_text = json.dumps(qe_identity, separators=(",", ":"))

    def crl(issuer: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> str:
        built = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(issuer.subject)
            .last_update(datetime.fromtimestamp(issued_at, UTC))
            .next_update(datetime.fromtimestamp(issued_at + validity_s, UTC))
            .add_extension(x509.CRLNumber(1), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()),
                critical=False,
            )
            .sign(key, hashes.SHA256(), ecdsa_deterministic=True)
        )
        return built.public_bytes(Encoding.DER).hex()

    return Collateral.from_fields(
        pck_crl_issuer_chain=pki.pem(pki.platform_cert, pki.root_cert),
        root_ca_crl=crl(pki.root_cert, pki.root_key),
        pck_crl=crl(pki.platform_cert, pki.platform_key),
        tcb_info_issuer_chain=pki.pem(pki.tcb_cert, pki.root_cert),
        tcb_info=tcb_text,
        tcb_info_signature=_raw_signature(
            pki.tcb_key.sign(tcb_text.encode(), _DETERMINISTIC)
        ).hex(),
        qe_identity_issuer_chain=pki.pem(pki.qe_identity_cert, pki.root_cert),
        qe_identity=qe_text,
        qe_identity_signature=_raw_signature(
            pki.qe_identity_key.sign(qe_text.encode(), _DETERMINISTIC)
        ).hex(),
    )
