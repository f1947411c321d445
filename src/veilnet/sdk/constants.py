"""Limits and defaults of the Python SDK, named once.
Freshness, certificate lifetime, polling and size bounds used by ``Client`` and ``AsyncClient``."""

from __future__ import annotations

from typing import Final

from veilnet.protocol import enclave as _enclave

MAX_QUERY_REQUEST: Final = 256 * 1024
"""Largest query a worker accepts (``POST /v1/query`` answers 413 above it)."""
MAX_QUERY_RESPONSE: Final = 4 * 1024 * 1024
"""Largest response body the client reads from a worker."""
MAX_ATTESTATION_RESPONSE: Final = 1024 * 1024
CERT_LIFETIME_BLOCKS: Final = 600
"""Blocks a query certificate stays valid (the core refuses more than 7200)."""
CERT_RENEW_MARGIN_BLOCKS: Final = 20
"""A certificate this close to expiry is replaced before the next query."""
DEFAULT_FRESHNESS_BLOCKS: Final = 32
"""A response may be at most finality + this many blocks behind the client's head."""
DEFAULT_FINALITY: Final = 2
DEFAULT_COMMITMENT_INTERVAL: Final = _enclave.DEFAULT_COMMITMENT_INTERVAL
"""Members post state commitments at heights that are multiples of this (``network.json``'s
``commitment_interval`` overrides it); answers at those heights are checked against the verdict."""
MAX_CACHED_VERDICTS: Final = 4096
HEAD_CACHE_S: Final = 0.25
"""How long the client reuses its node's head number (bounds the extra staleness accepted)."""
MAX_CACHED_BLOCKS: Final = 4096
MAX_CACHED_SESSIONS: Final = 1024
"""Query sessions (contract keys) one certificate keeps before starting over."""
WORKER_VERIFICATION_TTL_S: Final = 600.0
"""A worker's fresh attestation is re-checked after this long."""
ATTESTATION_NONCE_BYTES: Final = 32
REQUEST_ID_BYTES: Final = 32
SESSION_SECRET_BYTES: Final = 32
MAX_CONFIDENCE_LEVEL: Final = 3
"""Worst endorsement confidence (1 best .. 5 worst) the client accepts by default."""
HTTP_TIMEOUT_S: Final = 30.0
RATE_LIMIT_WAIT_S: Final = 5.0
"""Longest a query waits out workers' rate limits in all before raising RateLimited."""
POLL_INTERVAL_S: Final = 0.05
MAX_RPC_BATCH: Final = 500
"""Calls per JSON-RPC batch request (``Agent.commands`` sends and polls in batches of this many):
nodes bound a request's size, and a batch this big is far below their usual limits."""
OUTCOME_POLL_S: Final = 0.1
"""Between two verified ``outcome`` queries while waiting for a command to be applied."""
SHARED_HEAD_S: Final = 0.05
"""How old a head read may be for the waits that poll it (``is_final`` for outcomes, a new
block for receipts): waits running at once share reads, at the cost of seeing a new block up to
this much later."""
ROTATION_POLL_S: Final = 0.25
MAX_AGENT_CODE: Final = 24576
"""The Registry's limit on packed agent code (``MAX_CODE`` in Registry.vy)."""
MAX_INIT_ARGS: Final = 4096
DEFAULT_WAIT_S: Final = 60.0
CONSUMER_TTL_BLOCKS: Final = 100
"""Blocks a ``VeilConsumer``'s requests wait for their result unless told otherwise."""
ROTATION_WAIT_S: Final = 180.0
GAS_MARGIN_PERCENT: Final = 25
PRIORITY_FEE_WEI: Final = 10**9
NETWORK_ENV: Final = "VEIL_NETWORK"
PRIVATE_KEY_ENV: Final = "VEIL_PRIVATE_KEY"
DEFAULT_NETWORK_FILE: Final = ".devnet/network.json"
MAX_NETWORK_FILE: Final = 1024 * 1024

CONSISTENCY_WAIT_S: Final = 10.0
DISCOVERY_TTL_S: Final = 30.0
"""How long a client trusts its list of a cluster's members and the API URLs they registered
before it reads the chain again (a worker added meanwhile is found by the next read)."""
"""How long a query waits for a replica to reach the newest block this client has seen the
contract at (read-your-writes, monotonic reads) before giving up."""
