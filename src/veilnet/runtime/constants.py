"""Fixed names and default limits of the enclave core, named once.
Egress topics are keccak256 of their names; routed ones match the Registry's constants."""

from __future__ import annotations

from typing import Final

from eth_hash.auto import keccak

# Topics routed by the Bus to the Registry (must equal Registry.vy's constants).
TOPIC_MASTER_KEY: Final = keccak(b"veil/egress/master-key")
TOPIC_ENDORSE: Final = keccak(b"veil/egress/endorse")
TOPIC_CLUSTER_KEY: Final = keccak(b"veil/egress/cluster-key")
TOPIC_CONTRACT_KEY: Final = keccak(b"veil/egress/contract-key")
TOPIC_ROTATION_PROPOSE: Final = keccak(b"veil/egress/rotation-propose")
TOPIC_ROTATION_CONFIRM: Final = keccak(b"veil/egress/rotation-confirm")
# Topics only workers read.
TOPIC_COLLATERAL: Final = keccak(b"veil/egress/collateral")
TOPIC_CLUSTER_KEY_SHARE: Final = keccak(b"veil/egress/cluster-key-share")
TOPIC_MASTER_KEY_SHARE: Final = keccak(b"veil/egress/master-key-share")
TOPIC_STATE_COMMITMENT: Final = keccak(b"veil/egress/state-commitment")
TOPIC_HEARTBEAT: Final = keccak(b"veil/egress/heartbeat")

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
MAX_COMMAND_PLAINTEXT: Final = 64 * 1024
MAX_QUERY_ENVELOPE: Final = 256 * 1024
MAX_STATE_VALUE: Final = 256 * 1024
MAX_CALL_DEPTH: Final = 4
DEFAULT_MIN_CONFIDENCE: Final = 1
"""Lowest attestation confidence level (1 best .. 5 worst) is configured as a maximum."""
DEFAULT_MAX_CONFIDENCE_LEVEL: Final = 3
QUERY_CERT_MAX_BLOCKS: Final = 7200
"""Longest lifetime a query certificate may claim, in blocks."""
MAX_CACHED_CERTIFICATES: Final = 10_000
"""Verified query certificates remembered (oldest forgotten first)."""
MAX_MEMOISED_CONTRACT_KEYS: Final = 4096
"""Derived contract keys a keyring keeps (each query needs one; deriving costs ~80 µs)."""
MAX_MEMOISED_QUERY_SESSIONS: Final = 10_000
"""Query sessions (one per client certificate, contract and epoch) kept, oldest dropped first."""
