"""Keccak-256, Ethereum's hash (the original Keccak padding, not FIPS SHA3-256).
One C call per digest: safe-pysha3 hashes a short message in about a sixth of eth-hash's time."""

from sha3 import keccak_256


def keccak(data: bytes | bytearray | memoryview) -> bytes:
    """The 32-byte Keccak-256 digest of ``data``."""
    digest: bytes = keccak_256(data).digest()
    return digest
