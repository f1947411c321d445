"""What code a quote attests to, and its stable 32-byte id for the on-chain allowlist.
TDX: MRTD and RTMR0-2 (firmware, kernel, cmdline); RTMR3 is runtime and checked via the event
log. SGX: MRENCLAVE and MRSIGNER (ISV product id and SVN are reported, not part of the id)."""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import Any

from veilnet.attestation._quote import ParsedQuote, TEEKind
from veilnet.attestation.constants import MEASUREMENT_ID_TAG, MR_SGX_LENGTH, MR_TDX_LENGTH

__all__ = ["Measurement", "measurement_id"]

_ZERO48 = bytes(MR_TDX_LENGTH)


@dataclass(frozen=True, slots=True, kw_only=True)
class Measurement:
    """A TDX or SGX measurement. Build with ``Measurement.tdx(...)``/``.sgx(...)``."""

    tee: TEEKind
    mrtd: bytes = b""
    rtmr0: bytes = b""
    rtmr1: bytes = b""
    rtmr2: bytes = b""
    rtmr3: bytes = b""
    mr_enclave: bytes = b""
    mr_signer: bytes = b""
    isv_prod_id: int = 0
    isv_svn: int = 0

    def __post_init__(self) -> None:
        if self.tee is TEEKind.TDX:
            for name in ("mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3"):
                if len(getattr(self, name)) != MR_TDX_LENGTH:
                    raise ValueError(f"{name} is {MR_TDX_LENGTH} bytes")
            if self.mr_enclave or self.mr_signer or self.isv_prod_id or self.isv_svn:
                raise ValueError("a TDX measurement has no SGX fields")
        elif self.tee is TEEKind.SGX:
            for name in ("mr_enclave", "mr_signer"):
                if len(getattr(self, name)) != MR_SGX_LENGTH:
                    raise ValueError(f"{name} is {MR_SGX_LENGTH} bytes")
            if not (0 <= self.isv_prod_id < 2**16 and 0 <= self.isv_svn < 2**16):
                raise ValueError("isv_prod_id and isv_svn are 16-bit")
            if self.mrtd or self.rtmr0 or self.rtmr1 or self.rtmr2 or self.rtmr3:
                raise ValueError("an SGX measurement has no TDX fields")
        else:
            raise TypeError("tee must be a TEEKind")

    @classmethod
    def tdx(
        cls, *, mrtd: bytes, rtmr0: bytes, rtmr1: bytes, rtmr2: bytes, rtmr3: bytes = _ZERO48
    ) -> Measurement:
        return cls(tee=TEEKind.TDX, mrtd=mrtd, rtmr0=rtmr0, rtmr1=rtmr1, rtmr2=rtmr2, rtmr3=rtmr3)

    @classmethod
    def sgx(
        cls, *, mr_enclave: bytes, mr_signer: bytes, isv_prod_id: int = 0, isv_svn: int = 0
    ) -> Measurement:
        return cls(
            tee=TEEKind.SGX,
            mr_enclave=mr_enclave,
            mr_signer=mr_signer,
            isv_prod_id=isv_prod_id,
            isv_svn=isv_svn,
        )

    @classmethod
    def of_quote(cls, quote: ParsedQuote) -> Measurement:
        """The measurement a parsed quote reports."""
        if quote.tee is TEEKind.TDX:
            return cls.tdx(
                mrtd=quote.mrtd,
                rtmr0=quote.rtmr0,
                rtmr1=quote.rtmr1,
                rtmr2=quote.rtmr2,
                rtmr3=quote.rtmr3,
            )
        return cls.sgx(
            mr_enclave=quote.mr_enclave,
            mr_signer=quote.mr_signer,
            isv_prod_id=quote.isv_prod_id,
            isv_svn=quote.isv_svn,
        )

    @property
    def id(self) -> bytes:
        """Stable 32-byte id (bytes32 on chain); see ``measurement_id``."""
        return measurement_id(self)

    def to_json(self) -> dict[str, Any]:
        """The ``measurements`` object of INTERFACES.md (hex strings, SVNs as ints)."""
        if self.tee is TEEKind.TDX:
            return {
                "mrtd": self.mrtd.hex(),
                "rtmr0": self.rtmr0.hex(),
                "rtmr1": self.rtmr1.hex(),
                "rtmr2": self.rtmr2.hex(),
                "rtmr3": self.rtmr3.hex(),
            }
        return {
            "mr_enclave": self.mr_enclave.hex(),
            "mr_signer": self.mr_signer.hex(),
            "isv_prod_id": self.isv_prod_id,
            "isv_svn": self.isv_svn,
        }


def measurement_id(measurement: Measurement) -> bytes:
    """``sha256(tag ‖ len(kind) ‖ kind ‖ fields)`` with fixed-length fields.

    TDX fields: MRTD ‖ RTMR0 ‖ RTMR1 ‖ RTMR2. SGX fields: MRENCLAVE ‖ MRSIGNER.
    """
    kind = measurement.tee.value.encode()
    if measurement.tee is TEEKind.TDX:
        fields = measurement.mrtd + measurement.rtmr0 + measurement.rtmr1 + measurement.rtmr2
    else:
        fields = measurement.mr_enclave + measurement.mr_signer
    prefix = MEASUREMENT_ID_TAG + struct.pack(">B", len(kind)) + kind
    return hashlib.sha256(prefix + fields).digest()
