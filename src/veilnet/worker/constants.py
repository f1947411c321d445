"""Limits and defaults of the worker host, named once.
Sizes in bytes, intervals in blocks unless a name says seconds."""

from __future__ import annotations

from typing import Final

MAX_QUERY_BODY: Final = 256 * 1024
"""Largest ``POST /v1/query`` body (413 ``request_too_large`` above it)."""
MAX_NONCE_HEX: Final = 64
DEFAULT_FINALITY_DEPTH: Final = 2
DEFAULT_CHECKPOINT_EVERY: Final = 50
"""Blocks between checkpoints (also written after a catch-up and at shutdown)."""
DEFAULT_KEEP_CHECKPOINTS: Final = 3
DEFAULT_MAX_LAG_BLOCKS: Final = 2
"""How far behind the final head the applied head may be while the worker still serves."""
DEFAULT_POLL_INTERVAL_S: Final = 0.25
DEFAULT_RATE_PER_S: Final = 50.0
"""Token-bucket refill rate per client address (requests per second)."""
DEFAULT_RATE_BURST: Final = 100
DEFAULT_QUERY_THREADS: Final = 8
"""Calls a worker host has in flight to its enclave at most (one computing, the others' agents
waiting on I/O); more queries wait in line."""
DEFAULT_QUERY_BATCH: Final = 32
"""Queries that waited while the enclave was busy, sent in one call at most."""
MAX_RATE_CLIENTS: Final = 10_000
"""Buckets kept before the idle ones are dropped."""
IDENTITY_FUNDING_WEI: Final = 10**17
"""ETH the host sends its identity from ``fund_from`` when the identity has less than this."""
REGISTRATION_GAS: Final = 1_500_000
"""Upper bound used when ``eth_estimateGas`` fails for ``register_worker`` (quote in calldata)."""
REGISTRATION_RETRY_S: Final = 2.0
REATTEST_RETRY_S: Final = 600.0
"""Wall-clock seconds between two re-attestations the host sends (the first lands and is
judged within a few blocks; this only bounds what a failing one costs in gas)."""
REGISTRATION_TIMEOUT_S: Final = 120.0
"""How long the host waits for its ``register_worker`` transaction to be mined."""
ERROR_BACKOFF_S: Final = 1.0
"""Wait after a failed poll (node down, proof failure) before trying again."""
IDENTITY_FILE: Final = "identity.sealed"
CHECKPOINT_DIR: Final = "checkpoints"
RELAY_JOURNAL_FILE: Final = "relay.journal"
CHECKPOINT_MAGIC: Final = b"VEILCKP1"

MAX_APPLY_FAILURES: Final = 3
"""Consecutive failures to apply one block before the worker halts instead of retrying."""

DEFAULT_FETCH_TIMEOUT_S: Final = 10.0
"""How long the host waits on one connect or receive of an agent's ``http.fetch``: the
``HTTP_TIMEOUT_S`` agents are promised (``veilnet.sandbox.constants``; a test keeps them equal,
since the host must not load sandbox code)."""

GATEWAY_TIMEOUT_S: Final = 120.0
"""How long the host waits for its inference gateway to answer one sealed call (a CPU model
may take tens of seconds to generate)."""
SNAPSHOT_FETCH_TIMEOUT_S: Final = 60.0
"""How long a late joiner waits for one member's snapshot (a large state is tens of MiB)."""
COLLATERAL_RETRY_S: Final = 5.0
"""A gatekeeper whose PCCS fetch failed asks again after this long (a new block alone does
not retry it, so a PCCS that is down is not hammered)."""
ROTATION_CHECK_BLOCKS: Final = 5
"""How often (in applied blocks) a gatekeeper's host checks whether the master key is due for
rotation (``Registry.rotation_interval``)."""
