"""SGX through Gramine's ``/dev/attestation`` pseudo-files (DCAP attestation type).
Write ``user_report_data``, read ``quote``; sealing uses ``keys/_sgx_mrenclave``."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from veilnet.attestation import (
    Collateral,
    Measurement,
    QuoteMalformed,
    QuoteTooLarge,
    TEEKind,
    UnsupportedTEE,
    parse_quote,
)
from veilnet.attestation.constants import SGX_REPORT_SIZE
from veilnet.crypto import SymmetricKey
from veilnet.tee._sealing import seal_with, unseal_with
from veilnet.tee.base import check_report_data
from veilnet.tee.constants import GRAMINE_ATTESTATION_DIR
from veilnet.tee.errors import CollateralUnavailable, TEEResponseInvalid, TEEUnavailable

__all__ = ["GramineEnclave"]


class GramineEnclave:
    """An SGX enclave under Gramine with DCAP attestation.

    Args:
        root: the attestation pseudo-filesystem (``/dev/attestation``; a directory in tests).
        collateral_provider: ``quote -> Collateral``; without it ``collateral()`` raises.
    """

    __slots__ = ("_last", "_measurement", "_provider", "_root", "_sealer")

    def __init__(
        self,
        root: str | os.PathLike[str] = GRAMINE_ATTESTATION_DIR,
        *,
        collateral_provider: Callable[[bytes], Collateral] | None = None,
    ) -> None:
        self._root = Path(root)
        try:
            kind = (self._root / "attestation_type").read_text().strip()
        except OSError as exc:
            raise TEEUnavailable("Gramine /dev/attestation is not available") from exc
        if kind != "dcap":
            raise TEEUnavailable(f"Gramine attestation type is {kind!r}, DCAP is required")
        self._provider = collateral_provider
        self._last: bytes | None = None
        self._measurement: Measurement | None = None
        self._sealer: SymmetricKey | None = None

    def _read(self, name: str) -> bytes:
        try:
            return (self._root / name).read_bytes()
        except OSError as exc:
            raise TEEUnavailable(f"cannot read /dev/attestation/{name}") from exc

    @property
    def kind(self) -> TEEKind:
        return TEEKind.SGX

    def quote(self, report_data: bytes) -> bytes:
        check_report_data(report_data)
        try:
            (self._root / "user_report_data").write_bytes(report_data)
        except OSError as exc:
            raise TEEUnavailable("cannot write /dev/attestation/user_report_data") from exc
        raw = self._read("quote")
        try:
            parsed = parse_quote(raw)
        except (QuoteMalformed, QuoteTooLarge, UnsupportedTEE) as exc:
            raise TEEResponseInvalid("/dev/attestation/quote is not a DCAP quote") from exc
        if parsed.tee is not TEEKind.SGX:
            raise TEEResponseInvalid("/dev/attestation/quote is not an SGX quote")
        if parsed.report_data != report_data:
            raise TEEResponseInvalid("the quote does not bind the requested report_data")
        self._last = raw
        return raw

    @property
    def measurement(self) -> Measurement:
        """MRENCLAVE, MRSIGNER, ISV ids from the enclave's own local report."""
        if self._measurement is None:
            report = self._read("report")
            if len(report) < SGX_REPORT_SIZE:
                raise TEEResponseInvalid("/dev/attestation/report is too short")
            body = report[:SGX_REPORT_SIZE]
            self._measurement = Measurement.sgx(
                mr_enclave=body[64:96],
                mr_signer=body[128:160],
                isv_prod_id=int.from_bytes(body[256:258], "little"),
                isv_svn=int.from_bytes(body[258:260], "little"),
            )
        return self._measurement

    def collateral(self) -> Collateral:
        if self._provider is None or self._last is None:
            raise CollateralUnavailable("Gramine has no offline collateral; fetch it from a PCCS")
        return self._provider(self._last)

    def _seal_key(self) -> SymmetricKey:
        if self._sealer is None:
            key = self._read("keys/_sgx_mrenclave")
            if len(key) != 16:
                raise TEEResponseInvalid("the MRENCLAVE sealing key is not 16 bytes")
            entropy = hashlib.sha256(b"veil/v1 gramine-seal:" + key).digest()
            self._sealer = SymmetricKey.generate(entropy=entropy)
        return self._sealer

    def seal(self, data: bytes, aad: bytes = b"") -> bytes:
        """Seal under the MRENCLAVE-bound key (only this exact enclave can unseal)."""
        return seal_with(self._seal_key(), data, aad)

    def unseal(self, blob: bytes, aad: bytes = b"") -> bytes:
        return unseal_with(self._seal_key(), blob, aad)

    def random_bytes(self, n: int) -> bytes:
        if n < 0:
            raise ValueError("n must be non-negative")
        return os.urandom(n)

    def __repr__(self) -> str:
        return f"GramineEnclave(root={str(self._root)!r})"
