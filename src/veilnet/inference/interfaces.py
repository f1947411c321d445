"""Protocols the gateway and its clients are built from: enclave, model backend, quote verifier.
Concrete classes are passed in (P3); tests pass small fakes, the devnet passes the dev TEE."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

from veilnet.inference._requests import ChatRequest, CompletionRequest

__all__ = ["Backend", "Enclave", "MeasurementPolicy", "QuoteReport", "QuoteVerifier"]


@runtime_checkable
class Enclave(Protocol):
    """The TEE the gateway runs in: it quotes 64 bytes of report_data.

    ``veilnet.tee.DevEnclave`` and the dstack/Gramine backends satisfy this protocol.
    """

    @property
    def kind(self) -> str:
        """``"tdx"``, ``"sgx"``, ``"dev-tdx"``, ...: shown to clients, not trusted by them."""
        ...

    def quote(self, report_data: bytes) -> bytes:
        """A quote over exactly 64 bytes of ``report_data``."""
        ...

    def collateral(self) -> Any:
        """What a verifier needs next to the quote (bytes or a JSON-able document)."""
        ...


class Backend(Protocol):
    """A model server: the local llama.cpp model or an OpenAI-compatible upstream.

    Methods are synchronous and may block; the gateway calls them from worker threads. They
    return OpenAI-shaped dicts; the gateway replaces ``id`` with its receipt id. They raise only
    ``veilnet.inference.errors`` exceptions.
    """

    def models(self) -> list[dict[str, Any]]:
        """Model objects for ``/v1/models`` (each with at least ``id``)."""
        ...

    def chat(self, request: ChatRequest) -> dict[str, Any]:
        """A ``chat.completion`` object."""
        ...

    def chat_stream(self, request: ChatRequest) -> Iterator[dict[str, Any]]:
        """``chat.completion.chunk`` objects, in order."""
        ...

    def complete(self, request: CompletionRequest) -> dict[str, Any]:
        """A ``text_completion`` object."""
        ...

    def complete_stream(self, request: CompletionRequest) -> Iterator[dict[str, Any]]:
        """``text_completion`` chunk objects, in order."""
        ...

    def close(self) -> None:
        """Release the model or connection pool."""
        ...


class QuoteReport(Protocol):
    """What a verified quote tells: the TEE kind, its measurements and the 64-byte report_data."""

    @property
    def report_data(self) -> bytes: ...

    @property
    def measurements(self) -> Mapping[str, str]: ...


class QuoteVerifier(Protocol):
    """Checks a quote's signature chain and TCB at time ``at``; returns the report or raises."""

    def __call__(self, quote: bytes, collateral: Any, *, at: int) -> QuoteReport: ...


class MeasurementPolicy(Protocol):
    """Decides whether a verified report's measurements are allowed; raises if not."""

    def __call__(self, report: QuoteReport) -> None: ...
