"""The enclave core (Phala's pRuntime): a deterministic, sans-IO state machine over final blocks.
``EnclaveCore.apply_block`` returns egress messages; ``query`` answers encrypted queries."""

from veilnet.runtime.core import (
    CoreConfig,
    EnclaveCore,
    PreparedQuery,
    QueryIO,
    RegistrationRequest,
)
from veilnet.runtime.egress import EGRESS_TYPE, EgressMessage
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
    "EGRESS_TYPE",
    "AgentEngine",
    "BlockRejected",
    "CheckpointInvalid",
    "CommandRejected",
    "ContractUnavailable",
    "CoreConfig",
    "EgressMessage",
    "EnclaveCore",
    "KeyEpochExpired",
    "NotAuthorized",
    "NotReady",
    "Platform",
    "PreparedQuery",
    "QueryIO",
    "QueryRejected",
    "QuoteVerifier",
    "RegistrationRequest",
    "Verdict",
]
