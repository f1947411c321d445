"""Trust roots for DCAP verification: Intel's SGX Root CA (default) or a development root.
A development root exists only behind ``allow_insecure_dev_tee=True``; production refuses it."""

from __future__ import annotations

import base64
import hashlib
from typing import Final

from veilnet.attestation.errors import InsecureDevTEENotAllowed

__all__ = ["INTEL_SGX_ROOT_CA_DER", "DevAttestationRoot", "TrustRoot"]

INTEL_SGX_ROOT_CA_DER: Final = base64.b64decode(
    "MIICjzCCAjSgAwIBAgIUImUM1lqdNInzg7SVUr9QGzknBqwwCgYIKoZIzj0EAwIwaDEaMBgGA1UE"
    "AwwRSW50ZWwgU0dYIFJvb3QgQ0ExGjAYBgNVBAoMEUludGVsIENvcnBvcmF0aW9uMRQwEgYDVQQH"
    "DAtTYW50YSBDbGFyYTELMAkGA1UECAwCQ0ExCzAJBgNVBAYTAlVTMB4XDTE4MDUyMTEwNDUxMFoX"
    "DTQ5MTIzMTIzNTk1OVowaDEaMBgGA1UEAwwRSW50ZWwgU0dYIFJvb3QgQ0ExGjAYBgNVBAoMEUlu"
    "dGVsIENvcnBvcmF0aW9uMRQwEgYDVQQHDAtTYW50YSBDbGFyYTELMAkGA1UECAwCQ0ExCzAJBgNV"
    "BAYTAlVTMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEC6nEwMDIYZOj/iPWsCzaEKi71OiOSLRF"
    "hWGjbnBVJfVnkY4u3IjkDYYL0MxO4mqsyYjlBalTVYxFP2sJBK5zlKOBuzCBuDAfBgNVHSMEGDAW"
    "gBQiZQzWWp00ifODtJVSv1AbOScGrDBSBgNVHR8ESzBJMEegRaBDhkFodHRwczovL2NlcnRpZmlj"
    "YXRlcy50cnVzdGVkc2VydmljZXMuaW50ZWwuY29tL0ludGVsU0dYUm9vdENBLmRlcjAdBgNVHQ4E"
    "FgQUImUM1lqdNInzg7SVUr9QGzknBqwwDgYDVR0PAQH/BAQDAgEGMBIGA1UdEwEB/wQIMAYBAf8C"
    "AQEwCgYIKoZIzj0EAwIDSQAwRgIhAOW/5QkR+S9CiSDcNoowLuPRLsWGf/Yi7GSX94BgwTwgAiEA"
    "4J0lrHoMs+Xo5o/sX6O9QWxHRAvZUGOdRQ7cvqRXaqI="
)
"""Intel SGX Root CA (public; the anchor dcap-qvl has built in). SHA-256 44a0196b…74d3."""


class TrustRoot:
    """The root CA a quote's PCK chain and collateral must chain to.

    ``TrustRoot.intel()`` is the production default. Any other root is a
    ``DevAttestationRoot`` and needs an explicit ``allow_insecure_dev_tee=True``.
    """

    __slots__ = ("der", "is_dev", "name")

    der: bytes
    is_dev: bool
    name: str

    def __init__(self, der: bytes, *, name: str, is_dev: bool, _token: object = None) -> None:
        if _token is not _CONSTRUCT:
            raise TypeError("use TrustRoot.intel(), TrustRoot.from_der() or DevAttestationRoot()")
        self.der = der
        self.name = name
        self.is_dev = is_dev

    @classmethod
    def intel(cls) -> TrustRoot:
        """Intel's SGX Root CA: the only root a production policy accepts."""
        return _INTEL

    @classmethod
    def from_der(cls, der: bytes, *, allow_insecure_dev_tee: bool = False) -> TrustRoot:
        """Intel's root if ``der`` is Intel's certificate, else a development root.

        Raises:
            InsecureDevTEENotAllowed: a non-Intel root without ``allow_insecure_dev_tee``.
        """
        if der == INTEL_SGX_ROOT_CA_DER:
            return _INTEL
        return DevAttestationRoot(der, allow_insecure_dev_tee=allow_insecure_dev_tee)

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the root certificate, hex."""
        return hashlib.sha256(self.der).hexdigest()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TrustRoot) and other.der == self.der

    def __hash__(self) -> int:
        return hash(self.der)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name}, sha256={self.fingerprint[:16]}…)"


class DevAttestationRoot(TrustRoot):
    """INSECURE: a development DCAP root (e.g. the dev TEE's per-network root).

    Quotes under it prove nothing about hardware. Constructing one requires
    ``allow_insecure_dev_tee=True`` (the CLI's ``--insecure-dev-tee``), and a verifier with
    ``Policy(production=True)`` refuses it.
    """

    __slots__ = ()

    def __init__(self, der: bytes, *, allow_insecure_dev_tee: bool = False) -> None:
        if allow_insecure_dev_tee is not True:
            raise InsecureDevTEENotAllowed(
                "a development attestation root needs allow_insecure_dev_tee=True "
                "(--insecure-dev-tee)"
            )
        if not isinstance(der, bytes) or not der:
            raise TypeError("a root CA is DER bytes")
        super().__init__(der, name="development (INSECURE)", is_dev=True, _token=_CONSTRUCT)


_CONSTRUCT = object()
_INTEL = TrustRoot(INTEL_SGX_ROOT_CA_DER, name="Intel SGX Root CA", is_dev=False, _token=_CONSTRUCT)
