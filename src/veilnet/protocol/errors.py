"""Errors whose codes leave the enclave or the worker API: what hosts and clients are told.
Defined here, below the core, the worker and the SDK, so that all three name one class each.

InvalidInput
├── BlockRejected          a block does not extend the applied chain (409)
│   ├── BlockUnproven      its header, receipts or logs do not prove out in the core
│   └── FinalityUnproven   no finality evidence the chain-trust policy accepts
├── CheckpointInvalid      a checkpoint does not unseal or does not belong to this worker
│   └── CheckpointStale    a newer checkpoint of this identity exists (a rollback)
├── SnapshotRefused        a late joiner's state snapshot is not due, not its, or not verified
├── QueryRejected          a query envelope, certificate or request is bad
│   └── QueryStale         it names an earlier boot of the worker (re-seal under the new one)
└── RequestTooLarge        a request body is larger than the API accepts (413)
PolicyRejected
├── ContractUnavailable    unknown, paused or not yet keyed contract (404)
│   └── ContractPaused     the contract is paused by its controller (423)
├── KeyEpochExpired        an envelope names a key epoch outside the kept window (410)
├── RateLimited            this client sent too many requests; retry later (429)
├── IdentityFlagged        this worker identity ran twice and is flagged on chain (403)
├── StateDiverged          the Registry found this worker's state against its cluster's (403)
└── QuorumNotReached       fewer than k of the rpc-quorum endpoints agree on any block's hash
Unavailable
├── NotReady               the core has no key for this yet (catching up, not in the cluster)
└── TLSFailed              an HTTPS exchange the core ran through its host's relay failed
"""

from __future__ import annotations

from veilnet.errors import InvalidInput, PolicyRejected, Unavailable

__all__ = [
    "BlockRejected",
    "BlockUnproven",
    "CheckpointInvalid",
    "CheckpointStale",
    "ContractPaused",
    "ContractUnavailable",
    "FinalityUnproven",
    "IdentityFlagged",
    "KeyEpochExpired",
    "NotReady",
    "QueryRejected",
    "QueryStale",
    "QuorumNotReached",
    "RateLimited",
    "RequestTooLarge",
    "SnapshotRefused",
    "StateDiverged",
    "TLSFailed",
]


class QueryRejected(InvalidInput):
    """The query envelope, its certificate or the request inside it is not acceptable."""

    code = "runtime_query_rejected"


class QueryStale(QueryRejected):
    """The query names another boot of the worker (it restarted since the client read its boot
    id): ``details["boot_id"]`` is the current one; sealing the query again under it works."""

    code = "runtime_query_stale"
    http_status = 409


class RequestTooLarge(InvalidInput):
    """The request body is larger than the worker API accepts."""

    code = "request_too_large"
    http_status = 413


class ContractUnavailable(PolicyRejected):
    """The contract is unknown, paused, or has no key yet."""

    code = "runtime_contract_unavailable"
    http_status = 404


class ContractPaused(ContractUnavailable):
    """The contract is paused: it accepts no command and answers no query."""

    code = "runtime_contract_paused"
    http_status = 423


class KeyEpochExpired(PolicyRejected):
    """The envelope is encrypted to a key epoch that is no longer (or not yet) kept."""

    code = "runtime_key_epoch_expired"
    http_status = 410


class RateLimited(PolicyRejected):
    """This client sent too many requests; retry later."""

    code = "rate_limited"
    http_status = 429


class NotReady(Unavailable):
    """The core does not hold the keys for this yet; retry after it catches up."""

    code = "runtime_not_ready"


class BlockRejected(InvalidInput):
    """The block does not extend the applied chain (wrong number or parent hash)."""

    code = "runtime_block_rejected"
    http_status = 409


class BlockUnproven(BlockRejected):
    """The block's data does not prove out in the core: its header does not decode, its
    receipts do not hash to the header's receipts root, receipts the logs bloom calls for are
    missing, or a Registry/Bus log is malformed. A host that drops, adds, alters or reorders a
    log gets this; the core stays at its head."""

    code = "runtime_block_unproven"


class FinalityUnproven(BlockRejected):
    """The block carries no finality evidence that the network's chain-trust policy accepts
    (a wrong or missing sequencer signature, or no RPC quorum for its hash)."""

    code = "runtime_finality_unproven"


class QuorumNotReached(PolicyRejected):
    """No requested block number was reported with the same hash by ``threshold`` endpoints.

    ``details["reasons"]`` has one entry per endpoint, in policy order: ``"vouched"`` for one that
    answered and vouched for at least one block, otherwise why it did not (``"tls_failed:<stage>"``,
    ``"unavailable"``, ``"http_status:<n>"``, ``"malformed_answer"``, ``"rpc_error"``,
    ``"wrong_chain_id"``, ``"not_final"``)."""

    code = "runtime_quorum_not_reached"

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(self.details.get("reasons", ()))


class TLSFailed(Unavailable):
    """An HTTPS exchange through the host relay failed: refused or broken handshake, a certificate
    not valid at the chain's time, tampered or truncated records, a bad HTTP answer, or too much of
    one. ``details["stage"]`` says which, without the lower layer's text."""

    code = "runtime_tls_failed"


class CheckpointInvalid(InvalidInput):
    """The checkpoint does not unseal, or belongs to another worker or network."""

    code = "runtime_checkpoint_invalid"


class CheckpointStale(CheckpointInvalid):
    """This core was restored from a checkpoint older than the newest its identity sealed.

    Seen on chain: a heartbeat of this identity names a newer sealed height than the one this
    core started from. Every later block is refused the same way; restore the newest checkpoint.
    """

    code = "runtime_checkpoint_stale"
    http_status = 409


class SnapshotRefused(InvalidInput):
    """A state snapshot for a late joiner was refused (``reason`` says why): the joiner waits
    for none, it is sealed to another key, its height precedes the join or has no verdict yet,
    or it differs from what the cluster's majority committed to. The core is unchanged."""

    code = "runtime_snapshot_refused"
    http_status = 409


class StateDiverged(PolicyRejected):
    """The Registry found this worker's state commitment against its cluster's majority: its
    state is not the cluster's, so it answers nothing until it registers again (403)."""

    code = "runtime_state_diverged"
    http_status = 403


class IdentityFlagged(PolicyRejected):
    """The Registry flagged this worker identity: two live copies of it sent heartbeats."""

    code = "runtime_identity_flagged"
    http_status = 403
