"""Defaults and internal limits of the enclave core, named once.
Wire-level names (topics, envelope limits) live in ``veilnet.protocol``."""

from __future__ import annotations

from typing import Final

from veilnet.protocol.enclave import (  # network parameters, named with the interface
    DEFAULT_COMMITMENT_INTERVAL as DEFAULT_COMMITMENT_INTERVAL,
)
from veilnet.protocol.enclave import DEFAULT_HEARTBEAT_INTERVAL as DEFAULT_HEARTBEAT_INTERVAL
from veilnet.protocol.enclave import DEFAULT_KEY_WINDOW_BLOCKS as DEFAULT_KEY_WINDOW_BLOCKS
from veilnet.protocol.enclave import (
    DEFAULT_MAX_CONFIDENCE_LEVEL as DEFAULT_MAX_CONFIDENCE_LEVEL,
)

FIRST_CLUSTER_EPOCH: Final = 1
MAX_OUTCOMES_PER_CONTRACT: Final = 4096
COMMAND_NONCE_WINDOW: Final = 600 * 10**9
"""How far below a sender's highest used nonce a command may still land (the SDK's nonces are
nanosecond clock readings: ten minutes), so two clients of one wallet, or commands that land
out of order, all apply; each nonce still applies once."""
MAX_RECENT_NONCES: Final = 1024
"""Used nonces a contract keeps per sender inside the window; past it the oldest close it."""
"""Command outcomes kept per contract for senders to fetch (oldest dropped first)."""
MAX_CACHED_CERTIFICATES: Final = 10_000
"""Verified query certificates remembered (oldest forgotten first)."""
MAX_MEMOISED_CONTRACT_KEYS: Final = 4096
"""Derived contract keys a keyring keeps (each query needs one; deriving costs ~80 µs)."""
MAX_MEMOISED_QUERY_SESSIONS: Final = 10_000
"""Query sessions (one per client certificate, contract and epoch) kept, oldest dropped first."""

MAX_LOADED_AGENTS: Final = 1024
"""Compiled agents a core keeps, the least recently used dropped first (and compiled again, tens
of milliseconds, when used again). Of these, the ``MAX_WARM_AGENTS`` most recently used also
keep a warm instance; the others keep only their clean image (about 0.3 MiB for
``counter.js``). Every invocation starts from the clean image, so neither bound changes an
outcome."""
MAX_LOADED_AGENT_BYTES: Final = 512 * 1024 * 1024
"""Most bytes the loaded agents' clean images may hold together, the least recently used
dropped first: 1,024 ``counter.js`` images take about 0.3 GiB, but an agent may fill its 32 MiB
of memory before its image is taken."""
MAX_WARM_AGENTS: Final = 256
"""Agents that keep a warm instance (a JS agent's linear memory, about 1.3 MiB for
``counter.js``); the others instantiate afresh when used, about a millisecond."""

MAX_EXECUTIONS: Final = 64
"""Recent verified headers a core keeps for ``evm.call`` (queries run at the newest ones)."""
