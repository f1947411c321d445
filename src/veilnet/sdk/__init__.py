"""Veilnet's Python SDK: deploy agents, send encrypted commands, make verified queries.
``Client`` is generated from ``AsyncClient`` (``scripts/unasync.py``); checks live in ``_base``."""

from veilnet.sdk._async import AsyncAgent, AsyncClient
from veilnet.sdk._base import BaseClient, ChainView, PendingQuery
from veilnet.sdk._models import (
    AuditEntry,
    ClusterRecord,
    CommandResult,
    ContractKey,
    ContractRecord,
    NetworkConfig,
    QueryResult,
    Wallet,
    WorkerRecord,
    WorkerVerification,
    find_network_file,
)
from veilnet.sdk._sync import Agent, Client
from veilnet.sdk.errors import (
    AgentFailed,
    AgentInvalid,
    ChainUnavailable,
    ContractNotFound,
    NetworkConfigInvalid,
    QueryRejected,  # deprecated alias of WorkerRefused
    RateLimited,
    RequestTooLarge,
    ResponseInvalid,
    StaleBlock,
    Timeout,
    TransactionReverted,
    UnknownBlock,
    WorkerRefused,
    WorkerUnavailable,
    WorkerUnverified,
)

__all__ = [
    "Agent",
    "AgentFailed",
    "AgentInvalid",
    "AsyncAgent",
    "AsyncClient",
    "AuditEntry",
    "BaseClient",
    "ChainUnavailable",
    "ChainView",
    "Client",
    "ClusterRecord",
    "CommandResult",
    "ContractKey",
    "ContractNotFound",
    "ContractRecord",
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
    "WorkerRecord",
    "WorkerRefused",
    "WorkerUnavailable",
    "WorkerUnverified",
    "WorkerVerification",
    "find_network_file",
]
