"""Limits and version numbers of Veilnet's canonical encoding, named once.
Decoders take these as defaults; callers facing smaller budgets pass tighter ones."""

from typing import Final

CODEC_VERSION: Final = 1
"""First byte of every canonical encoding."""

MAX_ENCODED_SIZE: Final = 8 * 1024 * 1024
MAX_DEPTH: Final = 32
MAX_ITEMS: Final = 100_000
"""Largest number of values (all containers' members together) one decode accepts."""
BULK_MAX_ITEMS: Final = 64_000_000
BULK_MAX_SIZE: Final = 1024 * 1024 * 1024
"""Bounds for bulk values a core makes and reads back itself (its checkpoints, its state root):
a state of millions of entries, never input from anyone else."""
MAX_INT: Final = 2**64 - 1
MIN_INT: Final = -(2**64)
