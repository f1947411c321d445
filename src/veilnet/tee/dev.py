"""INSECURE development TEE: real-format DCAP quotes signed by a per-network dev PKI.
Usable only with ``allow_insecure_dev_tee=True`` (``--insecure-dev-tee``); verifiers need the
network's ``DevAttestationRoot`` and a non-production policy to accept its quotes."""

from __future__ import annotations

import hashlib
import os
import time

from veilnet.attestation import Collateral, DevAttestationRoot, Measurement, TEEKind
from veilnet.crypto import SecretKey
from veilnet.tee import _devpki
from veilnet.tee._sealing import seal_with, unseal_with
from veilnet.tee.base import check_report_data
from veilnet.tee.constants import DEV_COLLATERAL_VALIDITY_S
from veilnet.tee.errors import DevTEENotAllowed

__all__ = ["DEFAULT_DEV_MEASUREMENTS", "DevEnclave"]


def _digest(label: str, size: int) -> bytes:
    return hashlib.sha384(b"veil/v1 dev-tee " + label.encode()).digest()[:size]


DEFAULT_DEV_MEASUREMENTS = {
    TEEKind.TDX: Measurement.tdx(
        mrtd=_digest("mrtd", 48),
        rtmr0=_digest("rtmr0", 48),
        rtmr1=_digest("rtmr1", 48),
        rtmr2=_digest("rtmr2", 48),
    ),
    TEEKind.SGX: Measurement.sgx(
        mr_enclave=_digest("mr_enclave", 32), mr_signer=_digest("mr_signer", 32)
    ),
}
"""Measurements a dev enclave reports unless given one (stand-ins for the veilnet runtime)."""


class DevEnclave:
    """A development enclave of the network with ``network_seed``.

    Args:
        network_seed: 32+ secret bytes shared by the devnet; the dev PKI derives from it.
        measurement: what the enclave reports; defaults to ``DEFAULT_DEV_MEASUREMENTS[kind]``.
        kind: ``"tdx"`` (TD report 1.0 in a v4 quote) or ``"sgx"`` (v3 quote).
        allow_insecure_dev_tee: must be True; the dev TEE proves nothing about hardware.
        collateral_issued_at: issue time of ``collateral()`` (unix s); None = the current hour.
        collateral_validity_s: validity of the collateral from its issue time (30 days).
        tcb_status, advisory_ids: what the dev TCB info reports (to exercise policies).
    """

    __slots__ = (
        "_advisories",
        "_issued_at",
        "_kind",
        "_measurement",
        "_pki",
        "_sealer",
        "_seed",
        "_status",
        "_validity",
    )

    def __init__(
        self,
        network_seed: bytes,
        *,
        measurement: Measurement | None = None,
        kind: TEEKind | str = TEEKind.TDX,
        allow_insecure_dev_tee: bool = False,
        collateral_issued_at: int | None = None,
        collateral_validity_s: int = DEV_COLLATERAL_VALIDITY_S,
        tcb_status: str = "UpToDate",
        advisory_ids: tuple[str, ...] = (),
    ) -> None:
        if allow_insecure_dev_tee is not True:
            raise DevTEENotAllowed(
                "the development TEE needs allow_insecure_dev_tee=True (--insecure-dev-tee)"
            )
        kind = TEEKind(measurement.tee if measurement is not None else kind)
        if measurement is not None and measurement.tee is not kind:
            raise ValueError("measurement and kind disagree")
        if collateral_validity_s <= 0:
            raise ValueError("collateral_validity_s must be positive")
        self._seed = bytes(network_seed)
        self._pki = _devpki.dev_pki(self._seed)
        self._kind = kind
        self._measurement = measurement or DEFAULT_DEV_MEASUREMENTS[kind]
        self._issued_at = collateral_issued_at
        self._validity = collateral_validity_s
        self._status = tcb_status
        self._advisories = tuple(advisory_ids)
        self._sealer = SecretKey.derive(
            self._seed, "dev-tee", "seal", self._measurement.id
        ).symmetric("seal")

    @property
    def kind(self) -> TEEKind:
        return self._kind

    @property
    def measurement(self) -> Measurement:
        return self._measurement

    @property
    def root_ca_der(self) -> bytes:
        """DER of the network's dev root CA (the same for every enclave of the network)."""
        return self._pki.root_der

    @property
    def trust_root(self) -> DevAttestationRoot:
        """The verifier-side root for this network's dev quotes."""
        return DevAttestationRoot(self._pki.root_der, allow_insecure_dev_tee=True)

    def quote(self, report_data: bytes) -> bytes:
        """A v4 TDX or v3 SGX quote over this enclave's measurement and ``report_data``."""
        return _devpki.build_quote(self._pki, self._measurement, check_report_data(report_data))

    def collateral(self, *, issued_at: int | None = None) -> Collateral:
        """Collateral signed by the dev PKI, valid ``collateral_validity_s`` from ``issued_at``."""
        when = issued_at if issued_at is not None else self._issued_at
        if when is None:
            when = int(time.time()) // 3600 * 3600
        return _devpki.dev_collateral(
            self._seed,
            self._kind,
            issued_at=when,
            validity_s=self._validity,
            tcb_status=self._status,
            advisory_ids=self._advisories,
        )

    def seal(self, data: bytes, aad: bytes = b"") -> bytes:
        return seal_with(self._sealer, data, aad)

    def unseal(self, blob: bytes, aad: bytes = b"") -> bytes:
        return unseal_with(self._sealer, blob, aad)

    def random_bytes(self, n: int) -> bytes:
        if n < 0:
            raise ValueError("n must be non-negative")
        return os.urandom(n)

    def __repr__(self) -> str:
        return f"DevEnclave(kind={self._kind.value}, INSECURE, <seed redacted>)"
