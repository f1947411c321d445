"""Errors of the Python SDK: what a client can tell apart about a call that did not succeed.
Every check on a worker's answer fails with its own stable code; messages carry no plaintext.

InvalidInput
├── ResponseInvalid        the response does not parse, is not signed by its worker, answers
│                          another request or contract, or does not decrypt (tampered)
├── StaleBlock             the response was computed at a block too far behind the chain head
├── UnknownBlock           the response names a block that is not on the client's chain view
├── RequestTooLarge        the request is larger than a worker accepts
├── NetworkConfigInvalid   network.json is missing, unreadable or incomplete
└── AgentInvalid           an agent file is not .js/.py, does not compile, or its init fails
PolicyRejected
├── WorkerUnverified       the worker is not registered, endorsed, allowed or freshly attested
├── WorkerRefused          a worker refused the query (expired certificate, replay, bad wallet)
├── AgentFailed            the agent ran and reported an error (its code is in ``agent_code``)
├── TransactionReverted    the chain refused a transaction (reason attached)
└── ContractNotFound       no such agent contract on this network
Unavailable
├── WorkerUnavailable      no worker of the contract's cluster answered
├── ChainUnavailable       the JSON-RPC endpoint failed or answered nonsense
├── RateLimited            a worker asked the client to slow down
└── Timeout                a wait (key on chain, command applied, rotation) ran past its deadline

A worker answers a refusal as ``{"error": {"code", "message"}}``; ``WORKER_ERRORS`` maps its code
to the SDK class raised (``BaseClient.worker_error``), and the code stays in ``worker_code``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from veilnet.errors import InvalidInput, PolicyRejected, Unavailable, VeilnetError
from veilnet.protocol import errors as wire

__all__ = [
    "AgentFailed",
    "AgentInvalid",
    "ChainUnavailable",
    "ContractNotFound",
    "NetworkConfigInvalid",
    "QueryRejected",
    "RateLimited",
    "RequestTooLarge",
    "ResponseInvalid",
    "StaleBlock",
    "Timeout",
    "TransactionReverted",
    "UnknownBlock",
    "WorkerRefused",
    "WorkerUnavailable",
    "WorkerUnverified",
]


class ResponseInvalid(InvalidInput):
    """The worker's response is malformed, mis-signed, for another request, or tampered with."""

    code = "sdk_response_invalid"
    http_status = 502


class StaleBlock(InvalidInput):
    """The response was computed at a block older than the client's freshness bound."""

    code = "sdk_stale_block"
    http_status = 502


class UnknownBlock(InvalidInput):
    """The response names a block (number and hash) that is not on the client's chain view."""

    code = "sdk_unknown_block"
    http_status = 502


class RequestTooLarge(InvalidInput):
    """The request is larger than a worker accepts."""

    code = "sdk_request_too_large"
    http_status = 413


class NetworkConfigInvalid(InvalidInput):
    """The network description (network.json) is missing, unreadable or incomplete."""

    code = "sdk_network_invalid"


class AgentInvalid(InvalidInput):
    """An agent file is not ``.js``/``.py``, does not compile, or its ``init`` fails when run
    the way a worker will (checked before anything is sent); ``details["sandbox_code"]``."""

    code = "sdk_agent_invalid"


class WorkerUnverified(PolicyRejected):
    """The worker is not registered, not endorsed, runs a disallowed measurement, or its fresh
    attestation did not verify."""

    code = "sdk_worker_unverified"


class WorkerRefused(PolicyRejected):
    """A worker refused the query; ``worker_code`` says why (expired certificate, replay...).

    Not ``veilnet.runtime.errors.QueryRejected`` (a malformed envelope, inside the core): that
    is one of the reasons a worker refuses, and arrives here as its ``worker_code``.
    """

    # The code predates the class's name and is kept: codes are stable, names may move.
    code = "sdk_query_rejected"

    @property
    def worker_code(self) -> str | None:
        """The worker's error code (``runtime_query_rejected``, ``rate_limited``...)."""
        found: Any = self.details.get("worker_code")
        return found if isinstance(found, str) else None


QueryRejected = WorkerRefused
"""Deprecated alias of ``WorkerRefused`` (the name clashed with the core's ``QueryRejected``)."""


class AgentFailed(PolicyRejected):
    """The agent ran and reported an error; ``agent_code`` is the runtime's error code."""

    code = "sdk_agent_failed"
    http_status = 422


class TransactionReverted(PolicyRejected):
    """The chain refused a transaction (``reason`` is the contract's revert reason)."""

    code = "sdk_transaction_reverted"
    http_status = 409


class ContractNotFound(PolicyRejected):
    """No agent contract with this id exists on the network."""

    code = "sdk_contract_not_found"
    http_status = 404


class WorkerUnavailable(Unavailable):
    """No worker serving the contract's cluster answered (connection refused, not ready)."""

    code = "sdk_worker_unavailable"


class ChainUnavailable(Unavailable):
    """The chain's JSON-RPC endpoint failed or gave an answer that does not parse."""

    code = "sdk_chain_unavailable"


class RateLimited(Unavailable):
    """A worker rate-limited this client (``veilnet.worker.errors.RateLimited``, seen from the
    client: retryable, so ``Unavailable``); ``retry_after_s`` is the worker's wait."""

    code = "sdk_rate_limited"
    http_status = 429


class Timeout(Unavailable):
    """A wait (contract key on chain, command applied, key rotation) ran past its deadline."""

    code = "sdk_timeout"
    http_status = 504


# ---- the worker's codes ------------------------------------------------------------------
# Each is the ``code`` of the error class in ``veilnet.protocol.errors`` that the core or the
# worker API raises; the SDK names them under its own names so that its errors stay its own.

WORKER_NOT_READY: Final = wire.NotReady.code
"""The core has no key for this yet."""
WORKER_KEY_EPOCH_EXPIRED: Final = wire.KeyEpochExpired.code
"""Sealed to a key epoch the workers dropped."""
WORKER_QUERY_REJECTED: Final = wire.QueryRejected.code
"""A bad envelope, certificate or request."""
WORKER_QUERY_STALE: Final = wire.QueryStale.code
"""Sealed for an earlier boot of the worker (it restarted): the refusal names the new boot id."""
WORKER_REQUEST_TOO_LARGE: Final = wire.RequestTooLarge.code
"""The body is over the API's limit."""
WORKER_RATE_LIMITED: Final = wire.RateLimited.code
"""Too many requests from this client."""
WORKER_CONTRACT_PAUSED: Final = wire.ContractPaused.code
"""The contract is paused (a command outcome's code, and the SDK's own refusal to send)."""

WORKER_ERRORS: Final[Mapping[str, type[VeilnetError]]] = MappingProxyType(
    {
        WORKER_NOT_READY: WorkerUnavailable,
        WORKER_REQUEST_TOO_LARGE: RequestTooLarge,
        WORKER_RATE_LIMITED: RateLimited,
    }
)
"""A worker's error code → the SDK error raised; any other refusal is ``WorkerRefused``
(or ``WorkerUnavailable`` for a 5xx)."""
