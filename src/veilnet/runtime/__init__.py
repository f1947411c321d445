"""The enclave core (Phala's pRuntime): a deterministic, sans-IO state machine over final blocks.
``EnclaveCore.apply_block`` returns egress messages; ``query`` answers encrypted queries."""

from veilnet.runtime.core import (
    CoreConfig,
    EnclaveCore,
    PreparedQuery,
    QueryIO,

)
from veilnet.runtime.errors import (
    BlockRejected,
    CheckpointInvalid,
    CommandRejected,
    ContractUnavailable,
    KeyEpochExpired,
    NotAuthorized,
    NotReady,
    QueryRejected,
)
from veilnet.runtime.interfaces import AgentEngine, Platform, QuoteVerifier, Verdict

__all__ = [
    "AgentEngine",
    "BlockRejected",
    "CheckpointInvalid",
    "CommandRejected",
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
