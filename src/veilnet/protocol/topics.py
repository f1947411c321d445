"""Egress topics: keccak256 of their names, shared by the core, the chain code and the SDK.
The routed ones must equal Registry.vy's constants (checked against the compiled ABI in tests)."""

from __future__ import annotations

from typing import Final

from veilnet.crypto import keccak

# Topics routed by the Bus to the Registry (must equal Registry.vy's constants).
TOPIC_MASTER_KEY: Final = keccak(b"veil/egress/master-key")
TOPIC_ENDORSE: Final = keccak(b"veil/egress/endorse")
TOPIC_CLUSTER_KEY: Final = keccak(b"veil/egress/cluster-key")
TOPIC_CONTRACT_KEY: Final = keccak(b"veil/egress/contract-key")
TOPIC_ROTATION_PROPOSE: Final = keccak(b"veil/egress/rotation-propose")
TOPIC_ROTATION_CONFIRM: Final = keccak(b"veil/egress/rotation-confirm")
TOPIC_WORKER_KEY: Final = keccak(b"veil/egress/worker-key")
TOPIC_AGENT_SCHEDULE: Final = keccak(b"veil/egress/agent-schedule")
"""An agent's own ``jobs.schedule`` / ``jobs.cancel``, posted by its cluster key; the Bus
handles it itself: ``abi(bytes32 agent, uint256 cancel_id, address consumer, uint64 every,
bytes payload)`` (``cancel_id`` 0: a new schedule)."""
TOPIC_INIT_FAILED: Final = keccak(b"veil/egress/init-failed")
"""An agent's ``init`` failed on its workers, posted by its cluster key; the Bus pauses the agent
and logs ``ContractInitFailed``: ``abi(bytes32 agent, string code)`` (``code`` at most
``MAX_ERROR_CODE`` bytes, the failure's stable error code)."""
MAX_ERROR_CODE: Final = 64
"""Longest error code ``TOPIC_INIT_FAILED`` carries (``Bus.MAX_ERROR_CODE``)."""
# Topics only workers (and clients checking registrations) read.
TOPIC_COLLATERAL: Final = keccak(b"veil/egress/collateral")
TOPIC_PCCS_COLLATERAL: Final = keccak(b"veil/egress/pccs-collateral")
"""A gatekeeper's core fetched a registrant's collateral from the network's PCCS over TLS that
ends in the core: ``abi(bytes32 quote_hash, bytes zlib(collateral JSON))``. Where the network
names a PCCS, every core judges the quote under the first such post, not the registrant's."""
TOPIC_CLUSTER_KEY_SHARE: Final = keccak(b"veil/egress/cluster-key-share")
TOPIC_MASTER_KEY_SHARE: Final = keccak(b"veil/egress/master-key-share")
TOPIC_STATE_COMMITMENT: Final = keccak(b"veil/egress/state-commitment")
TOPIC_HEARTBEAT: Final = keccak(b"veil/egress/heartbeat")
TOPIC_SKIPPED: Final = keccak(b"veil/egress/skipped")
"""Stands in for a payload above ``limits.MAX_EGRESS_PAYLOAD``: ``abi(bytes32 topic, bytes32
keccak(payload), uint256 length)``, so the origin's numbering goes on."""
