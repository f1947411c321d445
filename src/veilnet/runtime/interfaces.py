"""What the enclave core needs from outside, as Protocols passed to its constructor.
The TEE platform, the quote verifier and the agent engine; fakes live in ``veilnet.testing``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from veilnet.sandbox.interfaces import Context, Entry, HostAPI, JSONValue, Language, Limits, Outcome


class Platform(Protocol):
    """The trusted platform the core runs on (a TEE backend from ``veilnet.tee``)."""

    @property
    def kind(self) -> str:
        """``"tdx"``, ``"sgx"`` or ``"dev"``."""

    @property
    def measurement(self) -> bytes:
        """32-byte measurement id of the running code, as the Registry allowlist stores it."""

    def random_bytes(self, n: int) -> bytes:
        """Entropy from inside the TEE. While applying blocks it only draws keys (master keys,
        proposals, encryption keys, checkpoint keys), which a replay takes back from the sealed
        keys instead of drawing again: it never decides an outcome."""

    def quote(self, report_data: bytes) -> bytes:
        """A DCAP quote over 64 bytes of report data."""

    def collateral(self) -> bytes:
        """Serialized collateral for this platform's quotes (JSON bytes); the same bytes until
        ``renew_collateral`` (their hash is registered on chain)."""

    def renew_collateral(self) -> None:
        """Fetch collateral afresh on the next ``collateral()`` (for a re-attestation)."""

    def seal(self, data: bytes, aad: bytes) -> bytes:
        """Encrypt for this enclave only (survives restarts of the same code)."""

    def unseal(self, blob: bytes, aad: bytes) -> bytes:
        """Inverse of ``seal``; raises a VeilnetError subclass if it does not open."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """A gatekeeper's reading of a registration quote."""

    accepted: bool
    confidence: int
    """1 (best) .. 5; meaningful only when accepted."""
    measurement: bytes
    """32-byte measurement id found in the quote."""
    reasons: tuple[str, ...] = ()
    valid_until: int = 0
    """Unix seconds until which the verdict holds: the earliest expiry of the collateral
    (TCB info, QE identity, CRLs) it was judged under. The endorsement lapses then."""


class QuoteVerifier(Protocol):
    """Verifies a worker's quote at a given time (the block timestamp) under the network policy."""

    def __call__(
        self, *, quote: bytes, collateral: bytes, at: int, report_data: bytes
    ) -> Verdict: ...


class AgentEngine(Protocol):
    """Runs agent code: loads it once, then invokes entry points against a HostAPI."""

    def load(self, language: Language, code: bytes, limits: Limits | None = None) -> Any:
        """Validate and prepare code; raises a SandboxError for code that can never run."""

    def footprint(self, agent: Any) -> int:
        """Bytes a loaded agent holds while parked (bounds the cache of loaded agents)."""

    def holds_instance(self, agent: Any) -> bool:
        """Whether a loaded agent keeps something between invocations that ``park`` frees."""

    def park(self, agent: Any) -> bool:
        """Free what a loaded agent holds to run at once, keeping it loaded (no outcome
        changes); an agent being invoked is left as it is. Returns whether it held something
        to free (freed now, or left while it runs); False if it held nothing."""

    def invoke(
        self,
        agent: Any,
        entry: Entry,
        payload: JSONValue,
        host: HostAPI,
        ctx: Context,
        limits: Limits | None = None,
    ) -> Outcome:
        """Run one entry point; deterministic in command mode."""
