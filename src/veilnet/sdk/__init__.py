"""Veilnet's Python SDK: deploy agents, send encrypted commands, make verified queries.
``Client`` is generated from ``AsyncClient`` (``scripts/unasync.py``); checks live in ``_base``."""

from veilnet.sdk._async import AsyncAgent, AsyncClient
from veilnet.sdk._base import BaseClient, ChainView, PendingQuery
from veilnet.sdk._models import (
    AuditEntry,
    CommandResult,
    ContractKey,
    NetworkConfig,
    QueryResult,
    Wallet,
    WorkerVerification,
    find_network_file,
)
from veilnet.sdk._sync import Agent, Client
from veilnet.sdk.errors import (
    AgentFailed,
    ChainUnavailable,
    ContractNotFound,
    NetworkConfigInvalid,
    QueryRejected,
    RateLimited,
    RequestTooLarge,
    ResponseInvalid,
    StaleBlock,
    Timeout,
    TransactionReverted,
    UnknownBlock,
    WorkerUnavailable,
    WorkerUnverified,
)

__all__ = [
    "Agent",
    "AgentFailed",
    "AsyncAgent",
    "AsyncClient",
    "AuditEntry",
    "BaseClient",
    "ChainUnavailable",
    "ChainView",
    "Client",
    "CommandResult",
    "ContractKey",
    "ContractNotFound",
    "NetworkConfig",
    "NetworkConfigInvalid",
    "PendingQuery",
    "QueryRejected",
    "QueryResult",
    "RateLimited",
    "RequestTooLarge",
    "ResponseInvalid",
    "StaleBlock",
    "Timeout",
    "TransactionReverted",
    "UnknownBlock",
    "Wallet",
    "WorkerUnavailable",
    "WorkerUnverified",
    "WorkerVerification",
    "find_network_file",
]
