"""The enclave core (Phala's pRuntime): a deterministic, sans-IO state machine over final blocks.
``EnclaveCore.apply_block`` returns egress messages; ``query`` answers encrypted queries."""

from veilnet.runtime.agents import QueryIO
from veilnet.runtime.config import CoreConfig
from veilnet.runtime.core import EnclaveCore
from veilnet.runtime.errors import (
    BlockRejected,
    CheckpointInvalid,
    CommandRejected,
    CommandReplayed,
    ContractPaused,
    ContractUnavailable,
    KeyEpochExpired,
    NotAuthorized,
    NotReady,
    QueryRejected,
)
from veilnet.runtime.interfaces import AgentEngine, Platform, QuoteVerifier, Verdict
from veilnet.runtime.queries import PreparedQuery

__all__ = [
    "AgentEngine",
    "BlockRejected",
    "CheckpointInvalid",
    "CommandRejected",
    "CommandReplayed",
    "ContractPaused",
    "ContractUnavailable",
    "CoreConfig",
    "EnclaveCore",
    "KeyEpochExpired",
    "NotAuthorized",
    "NotReady",
    "Platform",
    "PreparedQuery",
    "QueryIO",
    "QueryRejected",
    "QuoteVerifier",
    "Verdict",
]
