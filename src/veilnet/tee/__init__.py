"""TEE backends behind one ``Enclave`` interface: dev (INSECURE), dstack (TDX), gramine (SGX).
Backends are imported lazily so that using the dev TEE does not need dstack-sdk."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from veilnet.tee.base import Enclave
from veilnet.tee.dev import DEFAULT_DEV_MEASUREMENTS, DevEnclave
from veilnet.tee.errors import (
    CollateralUnavailable,
    DevTEENotAllowed,
    TEEResponseInvalid,
    TEEUnavailable,
    UnsealFailed,
)

if TYPE_CHECKING:
    from veilnet.tee.dstack import DstackEnclave
    from veilnet.tee.gramine import GramineEnclave

__all__ = [
    "DEFAULT_DEV_MEASUREMENTS",
    "CollateralUnavailable",
    "DevEnclave",
    "DevTEENotAllowed",
    "DstackEnclave",
    "Enclave",
    "GramineEnclave",
    "TEEResponseInvalid",
    "TEEUnavailable",
    "UnsealFailed",
]


def __getattr__(name: str) -> Any:
    if name == "DstackEnclave":
        from veilnet.tee.dstack import DstackEnclave

        return DstackEnclave
    if name == "GramineEnclave":
        from veilnet.tee.gramine import GramineEnclave

        return GramineEnclave
    raise AttributeError(name)
