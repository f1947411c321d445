"""TDX through the dstack guest agent (``dstack-sdk``): quotes, event logs and key derivation.
Collateral is not available offline from the agent; pass a ``collateral_provider`` (e.g. PCCS)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import httpx
import pydantic
from dstack_sdk import DstackClient

from veilnet.attestation import (
    Collateral,
    Measurement,
    QuoteMalformed,
    QuoteTooLarge,
    TEEKind,
    UnsupportedTEE,
    parse_quote,
)
from veilnet.crypto import SymmetricKey
from veilnet.tee._sealing import seal_with, unseal_with
from veilnet.tee.base import check_report_data
from veilnet.tee.constants import DSTACK_SOCKET_PATHS, DSTACK_TIMEOUT_S
from veilnet.tee.errors import CollateralUnavailable, TEEResponseInvalid, TEEUnavailable

__all__ = ["DstackEnclave"]

_SEAL_KEY_PATH = "veilnet/v1/seal"


class DstackEnclave:
    """A TDX confidential VM run by dstack, reached through its guest agent.

    Args:
        endpoint: Unix socket path or http(s) URL of the agent; default: dstack's socket.
        timeout: seconds per agent call.
        collateral_provider: ``quote -> Collateral`` (PCCS fetch); without it ``collateral()``
            raises ``CollateralUnavailable``.
    """

    __slots__ = ("_client", "_last", "_measurement", "_provider", "_sealer")

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        timeout: float = DSTACK_TIMEOUT_S,
        collateral_provider: Callable[[bytes], Collateral] | None = None,
    ) -> None:
        if endpoint is None:
            endpoint = next((p for p in DSTACK_SOCKET_PATHS if os.path.exists(p)), None)
            if endpoint is None:
                raise TEEUnavailable("no dstack guest agent socket found")
        try:
            self._client = DstackClient(endpoint, timeout=timeout)
        except FileNotFoundError as exc:
            raise TEEUnavailable("the dstack guest agent socket does not exist") from exc
        self._provider = collateral_provider
        self._last: tuple[bytes, str] | None = None
        self._measurement: Measurement | None = None
        self._sealer: SymmetricKey | None = None

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return getattr(self._client, method)(*args, **kwargs)
        except httpx.HTTPError as exc:
            raise TEEUnavailable(f"dstack guest agent {method} failed") from exc
        except (pydantic.ValidationError, ValueError, KeyError) as exc:
            raise TEEResponseInvalid(f"dstack guest agent {method} answered badly") from exc

    @property
    def kind(self) -> TEEKind:
        return TEEKind.TDX

    def _fetch(self, report_data: bytes) -> tuple[bytes, str]:
        response = self._call("get_quote", report_data)
        try:
            raw = bytes.fromhex(response.quote)
            parsed = parse_quote(raw)
        except (ValueError, QuoteMalformed, QuoteTooLarge, UnsupportedTEE) as exc:
            raise TEEResponseInvalid("the guest agent returned a malformed quote") from exc
        if parsed.tee is not TEEKind.TDX:
            raise TEEResponseInvalid("the guest agent returned a non-TDX quote")
        self._measurement = Measurement.of_quote(parsed)
        return raw, str(response.event_log)

    def quote(self, report_data: bytes) -> bytes:
        """A TDX quote binding ``report_data``; its event log is kept in ``last_event_log``."""
        raw, event_log = self._fetch(check_report_data(report_data))
        if parse_quote(raw).report_data != report_data:
            raise TEEResponseInvalid("the quote does not bind the requested report_data")
        self._last = (raw, event_log)
        return raw

    @property
    def last_event_log(self) -> str | None:
        """The event log (JSON text) returned with the last quote, for RTMR replay."""
        return self._last[1] if self._last is not None else None

    @property
    def measurement(self) -> Measurement:
        """MRTD and RTMRs from the most recent quote (one is fetched if none was made)."""
        if self._measurement is None:
            self._fetch(bytes(64))
        if self._measurement is None:  # pragma: no cover - _fetch always sets it
            raise TEEResponseInvalid("no measurement available")
        return self._measurement

    def collateral(self) -> Collateral:
        if self._provider is None or self._last is None:
            raise CollateralUnavailable("dstack has no offline collateral; fetch it from a PCCS")
        return self._provider(self._last[0])

    def _seal_key(self) -> SymmetricKey:
        if self._sealer is None:
            response = self._call("get_key", _SEAL_KEY_PATH, "seal")
            try:
                material = bytes.fromhex(response.key)
            except ValueError as exc:
                raise TEEResponseInvalid("the guest agent returned a non-hex key") from exc
            if len(material) < 32:
                raise TEEResponseInvalid("the guest agent returned a short key")
            self._sealer = SymmetricKey.generate(entropy=material)
        return self._sealer

    def seal(self, data: bytes, aad: bytes = b"") -> bytes:
        """Seal under a key the agent derives for this app (KMS-backed, stable across VMs)."""
        return seal_with(self._seal_key(), data, aad)

    def unseal(self, blob: bytes, aad: bytes = b"") -> bytes:
        return unseal_with(self._seal_key(), blob, aad)

    def random_bytes(self, n: int) -> bytes:
        if n < 0:
            raise ValueError("n must be non-negative")
        return os.urandom(n)

    def __repr__(self) -> str:
        return "DstackEnclave(kind=tdx)"
