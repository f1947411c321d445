"""The network parameters a core judges by: chain, contracts, key window, intervals, limits.
Every replica of a network shares one ``CoreConfig``; the signing domains derive from it."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from veilnet.crypto import Address, Domain
from veilnet.protocol.chain import ChainTrust
from veilnet.runtime import constants
from veilnet.sandbox.interfaces import Limits


@dataclass(frozen=True, slots=True, kw_only=True)
class CoreConfig:
    """Network parameters every replica must share (from genesis / ``network.json``)."""

    chain_id: int
    registry: bytes
    bus: bytes
    chain_trust: ChainTrust
    """Where the core's chain starts and what makes a block final (``lightclient``)."""
    key_window_blocks: int = constants.DEFAULT_KEY_WINDOW_BLOCKS
    commitment_interval: int = constants.DEFAULT_COMMITMENT_INTERVAL
    heartbeat_interval: int = constants.DEFAULT_HEARTBEAT_INTERVAL
    max_confidence_level: int = constants.DEFAULT_MAX_CONFIDENCE_LEVEL
    limits: Limits = field(default_factory=Limits)
    egress_roots: bytes = b""
    """PEM CA certificates agents' HTTPS servers must chain to; empty: the Mozilla roots of
    the enclave image (``certifi``)."""
    pccs_url: str = ""
    """``https://`` base URL of the PCCS gatekeepers fetch registrants' collateral from (in the
    core, over the host's relay); empty: judge under the collateral the registrant posted."""
    pccs_roots: bytes = b""
    """PEM CA certificates the PCCS's TLS certificate must chain to."""
    gateway_measurements: tuple[bytes, ...] = ()
    """Measurement ids an inference gateway may run for agents' ``llm.chat`` (none: no
    ``llm.chat``)."""
    plain_http_loopback: bool = False
    """Agents may fetch plain ``http://`` from loopback (the development TEE only)."""
    config_digest: bytes = b""
    """``EnclaveConfig.network_digest`` of the configuration the enclave built this core from;
    bound into the registration report data, so a worker whose host chose another configuration
    is not endorsed. Empty in in-process harnesses that build cores directly."""

    @property
    def domain(self) -> Domain:
        """EIP-712 domain of egress messages: bound to the Bus."""
        return _domain(self.chain_id, self.bus)

    @property
    def response_domain(self) -> Domain:
        """EIP-712 domain of query responses: bound to the Registry, not the Bus."""
        return _domain(self.chain_id, self.registry)

    @property
    def identity_aad(self) -> bytes:
        """What a sealed identity is bound to: this chain and this Registry."""
        return b"veil/v1/identity" + self.chain_id.to_bytes(8, "big") + self.registry


@functools.lru_cache(maxsize=64)
def _domain(chain_id: int, verifying_contract: bytes) -> Domain:
    """Domains are immutable and their separators cost a keccak of an ABI encoding: cache."""
    return Domain(chain_id=chain_id, verifying_contract=Address(verifying_contract))
