"""Defaults and limits of the one-process devnet, named once.
What ``veil devnet`` starts when no option is given, and how long each step may take."""

from __future__ import annotations

from typing import Final

DEFAULT_WORKERS: Final = 2
DEFAULT_GATEKEEPERS: Final = 1
DEFAULT_BLOCK_TIME: Final = 0.5
DEFAULT_FINALITY: Final = 2
DEFAULT_DATA_DIR: Final = ".devnet"
DEFAULT_CLUSTER: Final = "c1"
NETWORK_FILE: Final = "network.json"
NODE_FUNDING_WEI: Final = 10**21
"""ETH (in wei) the devnet gives each node's operator account for gas."""
MAX_NODES: Final = 32
STEP_TIMEOUT_S: Final = 120.0
"""Longest any start-up step (deploy, registration, bootstrap) may take."""
HOST_POLL_INTERVAL_S: Final = 0.1
DEVNET_RATE_PER_S: Final = 200.0
"""Per-client query rate limit of devnet workers (the demo and tutorials poll often)."""
DEVNET_RATE_BURST: Final = 400
DEMO_TARGET_S: Final = 60.0

PRICE_API_KEY: Final = "devnet-price-api-key"
"""The devnet price API's key: the oracle demo stores it as an owner-set secret."""
PRICE_API_PRICE: Final = "3141.59"
"""What the devnet price API answers (``{"symbol": "ETH", "price": ...}``)."""
PRICE_FEED_EVERY: Final = 3
"""Blocks between the price oracle's ticks in the demo."""
