"""Defaults and internal limits of the enclave core, named once.
Wire-level names (topics, envelope limits) live in ``veilnet.protocol``."""

from __future__ import annotations

from typing import Final

FIRST_CLUSTER_EPOCH: Final = 1
DEFAULT_KEY_WINDOW_BLOCKS: Final = 200
"""Blocks an old contract/cluster key epoch stays usable after the next one is keyed."""
DEFAULT_COMMITMENT_INTERVAL: Final = 20
"""A worker posts its state commitment every this many blocks (0 disables)."""
DEFAULT_HEARTBEAT_INTERVAL: Final = 50
"""Blocks between a registered worker's heartbeats (liveness for ``veil status``; 0 disables).
Challenge-response rules arrive with the economy milestone."""
MAX_OUTCOMES_PER_CONTRACT: Final = 4096
"""Command outcomes kept per contract for senders to fetch (oldest dropped first)."""
DEFAULT_MIN_CONFIDENCE: Final = 1
"""Lowest attestation confidence level (1 best .. 5 worst) is configured as a maximum."""
DEFAULT_MAX_CONFIDENCE_LEVEL: Final = 3
MAX_CACHED_CERTIFICATES: Final = 10_000
"""Verified query certificates remembered (oldest forgotten first)."""
MAX_MEMOISED_CONTRACT_KEYS: Final = 4096
"""Derived contract keys a keyring keeps (each query needs one; deriving costs ~80 µs)."""
MAX_MEMOISED_QUERY_SESSIONS: Final = 10_000
"""Query sessions (one per client certificate, contract and epoch) kept, oldest dropped first."""
MAX_REMEMBERED_QUERIES: Final = 100_000
"""Answered request ids kept before expired ones are swept (see issue on bounded replay)."""
