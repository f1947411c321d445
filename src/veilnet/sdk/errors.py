"""Errors of the Python SDK: what a client can tell apart about a call that did not succeed.
Every check on a worker's answer fails with its own stable code; messages carry no plaintext.

InvalidInput
├── ResponseInvalid        the response does not parse, is not signed by its worker, answers
│                          another request or contract, or does not decrypt (tampered)
├── StaleBlock             the response was computed at a block too far behind the chain head
├── UnknownBlock           the response names a block that is not on the client's chain view
├── RequestTooLarge        the request is larger than a worker accepts
└── NetworkConfigInvalid   network.json is missing, unreadable or incomplete
PolicyRejected
├── WorkerUnverified       the worker is not registered, endorsed, allowed or freshly attested
├── QueryRejected          a worker refused the query (expired certificate, replay, bad wallet)
├── AgentFailed            the agent ran and reported an error (its code is in ``agent_code``)
├── TransactionReverted    the chain refused a transaction (reason attached)
└── ContractNotFound       no such agent contract on this network
Unavailable
├── WorkerUnavailable      no worker of the contract's cluster answered
├── ChainUnavailable       the JSON-RPC endpoint failed or answered nonsense
├── RateLimited            a worker asked the client to slow down
└── Timeout                a wait (key on chain, command applied, rotation) ran past its deadline
"""

from __future__ import annotations

from veilnet.errors import InvalidInput, PolicyRejected, Unavailable

__all__ = [
    "AgentFailed",
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


class WorkerUnverified(PolicyRejected):
    """The worker is not registered, not endorsed, runs a disallowed measurement, or its fresh
    attestation did not verify."""

    code = "sdk_worker_unverified"


class QueryRejected(PolicyRejected):
    """A worker refused the query; ``worker_code`` says why (expired certificate, replay...)."""

    code = "sdk_query_rejected"


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
    """A worker rate-limited this client; retry later."""

    code = "sdk_rate_limited"
    http_status = 429


class Timeout(Unavailable):
    """A wait (contract key on chain, command applied, key rotation) ran past its deadline."""

    code = "sdk_timeout"
    http_status = 504
