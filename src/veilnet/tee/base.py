"""The one interface every TEE backend implements (dev, dstack, gramine).
The worker host passes an ``Enclave`` into the runtime; nothing looks a backend up globally."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from veilnet.attestation import Collateral, Measurement, TEEKind
from veilnet.tee.constants import REPORT_DATA_LENGTH

__all__ = ["Enclave", "check_report_data"]


@runtime_checkable
class Enclave(Protocol):
    """A trusted execution environment as the worker sees it.

    ``quote(report_data)`` returns a DCAP quote binding exactly those 64 bytes;
    ``collateral()`` returns collateral to verify it (or raises ``CollateralUnavailable``);
    ``seal``/``unseal`` bind data to this enclave's measurement; ``random_bytes`` draws from
    the TEE's RNG.
    """

    @property
    def kind(self) -> TEEKind: ...

    @property
    def measurement(self) -> Measurement: ...

    def quote(self, report_data: bytes) -> bytes: ...

    def collateral(self) -> Collateral: ...

    def seal(self, data: bytes, aad: bytes = b"") -> bytes: ...

    def unseal(self, blob: bytes, aad: bytes = b"") -> bytes: ...

    def random_bytes(self, n: int) -> bytes: ...


def check_report_data(report_data: bytes) -> bytes:
    """Validate caller-supplied report_data (a caller bug raises TypeError/ValueError)."""
    if not isinstance(report_data, bytes):
        raise TypeError("report_data is bytes")
    if len(report_data) != REPORT_DATA_LENGTH:
        raise ValueError(f"report_data is exactly {REPORT_DATA_LENGTH} bytes")
    return report_data
