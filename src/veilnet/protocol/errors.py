"""Errors whose codes leave the enclave or the worker API: what hosts and clients are told.
Defined here, below the core, the worker and the SDK, so that all three name one class each.

InvalidInput
├── BlockRejected          a block does not extend the applied chain (409)
├── CheckpointInvalid      a checkpoint does not unseal or does not belong to this worker
│   └── CheckpointStale    a newer checkpoint of this identity exists (a rollback)
├── QueryRejected          a query envelope, certificate or request is bad
└── RequestTooLarge        a request body is larger than the API accepts (413)
PolicyRejected
├── ContractUnavailable    unknown, paused or not yet keyed contract (404)
│   └── ContractPaused     the contract is paused by its controller (423)
├── KeyEpochExpired        an envelope names a key epoch outside the kept window (410)
├── RateLimited            this client sent too many requests; retry later (429)
└── IdentityFlagged        this worker identity ran twice and is flagged on chain (403)
Unavailable
└── NotReady               the core has no key for this yet (catching up, not in the cluster)
"""

from __future__ import annotations

from veilnet.errors import InvalidInput, PolicyRejected, Unavailable

__all__ = [
    "BlockRejected",
    "CheckpointInvalid",
    "CheckpointStale",
    "ContractPaused",
    "ContractUnavailable",
    "IdentityFlagged",
    "KeyEpochExpired",
    "NotReady",
    "QueryRejected",
    "RateLimited",
    "RequestTooLarge",
]


class QueryRejected(InvalidInput):
    """The query envelope, its certificate or the request inside it is not acceptable."""

    code = "runtime_query_rejected"


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


class IdentityFlagged(PolicyRejected):
    """The Registry flagged this worker identity: two live copies of it sent heartbeats."""

    code = "runtime_identity_flagged"
    http_status = 403
