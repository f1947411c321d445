"""Errors of ``veilnet.chain``: bad data from the node, failed transactions, node trouble.

InvalidInput
├── EventDecodeError          a log that is not a known Veilnet event, or malformed
├── ChainIntegrityError       the node's view does not prove out (base of the next three)
│   ├── HeaderHashMismatch    a header's fields do not hash to its claimed hash
│   ├── LogProofFailed        logs or receipts do not match the block's receipts root
│   └── ParentHashMismatch    parent-hash continuity broken within finalized blocks
PolicyRejected
├── ContractReverted          a call or transaction was rejected by a contract (reason)
└── ReorgBeyondFinality       a finalized (already applied) block was replaced
Unavailable
├── RPCUnavailable            the node could not be reached or timed out
├── RPCError                  the node answered with a JSON-RPC error
├── ChainNotReady             the chain process did not start / binary missing
└── RelayGaveUp               the relay exhausted its retries for one message
InternalError
└── ArtifactMismatch          compiled artifacts are missing or out of date
"""

from __future__ import annotations

from veilnet.errors import InternalError, InvalidInput, PolicyRejected, Unavailable

__all__ = [
    "ArtifactMismatch",
    "ChainIntegrityError",
    "ChainNotReady",
    "ContractReverted",
    "EventDecodeError",
    "HeaderHashMismatch",
    "LogProofFailed",
    "ParentHashMismatch",
    "RPCError",
    "RPCUnavailable",
    "RelayGaveUp",
    "ReorgBeyondFinality",
]


class EventDecodeError(InvalidInput):
    """The log is not a known Veilnet event or its fields do not decode."""

    code = "chain_event_invalid"


class ChainIntegrityError(InvalidInput):
    """The node's chain data does not prove out; nothing from it was applied."""

    code = "chain_integrity"
    http_status = 502


class HeaderHashMismatch(ChainIntegrityError):
    """A block header's fields do not hash to the block hash the node claimed."""

    code = "chain_header_hash_mismatch"


class LogProofFailed(ChainIntegrityError):
    """Logs or receipts do not match the receipts root of their block."""

    code = "chain_log_proof_failed"


class ParentHashMismatch(ChainIntegrityError):
    """A block's parent hash is not the hash of the block before it."""

    code = "chain_parent_hash_mismatch"


class ContractReverted(PolicyRejected):
    """A contract rejected the call or transaction; ``details['reason']`` says why."""

    code = "chain_reverted"
    http_status = 409

    @property
    def reason(self) -> str:
        return str(self.details.get("reason", ""))


class ReorgBeyondFinality(PolicyRejected):
    """A block at or below the last finalized block was replaced: finality was violated."""

    code = "chain_reorg_beyond_finality"
    http_status = 409


class RPCUnavailable(Unavailable):
    """The JSON-RPC node could not be reached, or timed out."""

    code = "chain_rpc_unavailable"


class RPCError(Unavailable):
    """The JSON-RPC node answered with an error object."""

    code = "chain_rpc_error"


class ChainNotReady(Unavailable):
    """The chain could not be started (binary missing, port in use, process exited)."""

    code = "chain_not_ready"


class RelayGaveUp(Unavailable):
    """The egress relay retried one message until its attempt limit and gave up."""

    code = "chain_relay_gave_up"


class ArtifactMismatch(InternalError):
    """Compiled contract artifacts are missing or do not match the Vyper sources."""

    code = "chain_artifact_mismatch"
