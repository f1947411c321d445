"""Limits and fixed values of ``veilnet.chain``, named once.
Contract-side limits mirror the constants in ``contracts/*.vy`` (a test checks they agree)."""

from __future__ import annotations

from typing import Final

from veilnet.protocol.topics import TOPIC_AGENT_SCHEDULE as TOPIC_AGENT_SCHEDULE
from veilnet.protocol.topics import TOPIC_CLUSTER_KEY as TOPIC_CLUSTER_KEY
from veilnet.protocol.topics import TOPIC_CONTRACT_KEY as TOPIC_CONTRACT_KEY
from veilnet.protocol.topics import TOPIC_ENDORSE as TOPIC_ENDORSE
from veilnet.protocol.topics import TOPIC_HEARTBEAT as TOPIC_HEARTBEAT
from veilnet.protocol.topics import TOPIC_INIT_FAILED as TOPIC_INIT_FAILED
from veilnet.protocol.topics import TOPIC_MASTER_KEY as TOPIC_MASTER_KEY
from veilnet.protocol.topics import TOPIC_ROTATION_CONFIRM as TOPIC_ROTATION_CONFIRM
from veilnet.protocol.topics import TOPIC_ROTATION_PROPOSE as TOPIC_ROTATION_PROPOSE
from veilnet.protocol.topics import TOPIC_STATE_COMMITMENT as TOPIC_STATE_COMMITMENT
from veilnet.protocol.topics import TOPIC_WORKER_KEY as TOPIC_WORKER_KEY

# --- contract limits (mirrors of the Vyper constants) ---------------------------------------
MAX_HPKE_KEY: Final = 1216
"""Largest worker/cluster/contract HPKE public key: the ML-KEM-768+X25519 hybrid key."""
MAX_QUOTE: Final = 8192
MAX_API_URL: Final = 256
"""Longest worker API URL ``register_worker`` takes (``protocol.registration.MAX_API_URL``)."""
MAX_CODE: Final = 24576
MAX_INIT: Final = 4096
MAX_REQUEST: Final = 4096
"""Largest job payload (``Bus.request``, ``Bus.schedule``)."""
MAX_PAYLOAD_BOUND: Final = 32768
"""Hard ABI bound of Bus payloads; the configurable limit is ``DEFAULT_MAX_PAYLOAD``."""
DEFAULT_MAX_PAYLOAD: Final = 16384
MAX_COMMAND_BATCH: Final = 32
"""Most commands one ``Bus.push_commands`` carries."""
MAX_BATCHED_PAYLOAD: Final = 2048
"""Hard ABI bound of each ``Bus.push_commands`` payload (under any ``max_payload``)."""
MAX_CLUSTER_WORKERS: Final = 64
MAX_EGRESS_HOSTS: Final = 16
"""Most host names on one agent's ``http.fetch`` allowlist (``Bus.set_egress``)."""
MAX_HOST_NAME: Final = 253
SIGNATURE_LENGTH: Final = 65

# --- origin kinds (Registry.origin_kind) -------------------------------------------------
KIND_NONE: Final = 0
KIND_WORKER: Final = 1
KIND_MASTER: Final = 2
KIND_CLUSTER: Final = 3
KIND_CONTRACT: Final = 4

# --- egress topics routed to the Registry (named once, in the enclave core that emits them)
ROUTED_TOPICS: Final = frozenset(
    {
        TOPIC_MASTER_KEY,
        TOPIC_ENDORSE,
        TOPIC_CLUSTER_KEY,
        TOPIC_CONTRACT_KEY,
        TOPIC_ROTATION_PROPOSE,
        TOPIC_ROTATION_CONFIRM,
        TOPIC_HEARTBEAT,
        TOPIC_STATE_COMMITMENT,
        TOPIC_WORKER_KEY,
        TOPIC_AGENT_SCHEDULE,
        TOPIC_INIT_FAILED,
    }
)
BUS_TOPICS: Final = frozenset({TOPIC_CONTRACT_KEY, TOPIC_AGENT_SCHEDULE, TOPIC_INIT_FAILED})
"""The routed topics the Bus handles itself (agent contracts live there); the Registry the rest."""
ROTATION_WINDOW: Final = 600
"""Blocks a master-key rotation may take from its lock before anyone may abort it."""
DEPOSIT_WINDOW: Final = 7200
"""Blocks after which a registration deposit nobody judged goes back to the operator."""
HEARTBEAT_WINDOW: Final = 256
"""Blocks a heartbeat stays postable (as far back as BLOCKHASH reaches)."""
ATTESTATION_WINDOW: Final = 256
"""How old the block a registration quote binds may be (as far back as BLOCKHASH reaches)."""
FLAG_CLONE: Final = 1
"""``Registry.flagged`` reason: two live copies of one worker identity."""

# --- follower / relay / devnet -------------------------------------------------------------
DEFAULT_FINALITY_DEPTH: Final = 2
"""A block is final once this many blocks are built on top of it."""
DEFAULT_BLOCK_TIME: Final = 0.5
MAX_BLOCKS_PER_POLL: Final = 256
"""The follower fetches at most this many headers in one batched request."""
MAX_RPC_BATCH: Final = 500
MAX_RPC_RESPONSE_BYTES: Final = 64 * 1024 * 1024
RPC_TIMEOUT_S: Final = 30.0
RELAY_MAX_ATTEMPTS: Final = 5
GAS_MARGIN_PERCENT: Final = 25
PRIORITY_FEE_WEI: Final = 10**9
"""The tip of every transaction we build: 1 gwei (fee caps are twice the base fee plus this)."""
POST_BASE_GAS: Final = 600_000
"""Gas limit for a routed post: the Bus asserts it can forward 400k to the Registry."""
DEFAULT_CHAIN_ID_EMBEDDED: Final = 1337
DEFAULT_CHAIN_ID_ANVIL: Final = 31337
EVM_VERSION: Final = "cancun"
VYPER_VERSION: Final = "0.4.3"
ANVIL_NPM_PACKAGE: Final = "@foundry-rs/anvil"
ANVIL_VERSION: Final = "1.7.1"
DEV_MNEMONIC: Final = "test test test test test test test test test test test junk"
DEV_ACCOUNTS: Final = 10
