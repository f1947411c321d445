"""What the enclave builds itself from its configuration: the TEE platform, the attestation
verifier and the agent engine. The host hands in none of them, only the configuration bytes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from veilnet.attestation import Policy, TrustRoot
from veilnet.errors import InvalidInput
from veilnet.protocol.enclave import EnclaveConfig
from veilnet.runtime import CoreConfig
from veilnet.runtime.adapters import PolicyVerifier, TEEPlatform
from veilnet.runtime.interfaces import AgentEngine, Platform, QuoteVerifier
from veilnet.sandbox.interfaces import Limits

TEE_DEV = "dev"
TEE_DSTACK = "dstack"
TEE_GRAMINE = "gramine"
TEES = (TEE_DEV, TEE_DSTACK, TEE_GRAMINE)


class EnclaveConfigInvalid(InvalidInput):
    """The enclave configuration names an unknown TEE, or lacks what its TEE needs."""

    code = "enclave_config_invalid"


@dataclass(slots=True)
class Parts:
    """The core's collaborators, built inside the enclave process."""

    platform: Platform
    verifier: QuoteVerifier
    engine: AgentEngine
    owned_engine: Any = None
    """An engine this process made (closed with the enclave)."""

    def close(self) -> None:
        if self.owned_engine is not None:
            self.owned_engine.close()


def core_config(config: EnclaveConfig) -> CoreConfig:
    return CoreConfig(
        chain_id=config.chain_id,
        registry=config.registry,
        bus=config.bus,
        chain_trust=config.chain_trust,
        key_window_blocks=config.key_window_blocks,
        commitment_interval=config.commitment_interval,
        heartbeat_interval=config.heartbeat_interval,
        max_confidence_level=config.max_confidence_level,
        limits=Limits(),
        egress_roots=config.egress_roots,
        pccs_url=config.pccs_url,
        pccs_roots=config.pccs_roots,
        plain_http_loopback=config.tee == TEE_DEV,
        gateway_measurements=_gateway_measurements(config),
        config_digest=config.network_digest,
    )


def _gateway_measurements(config: EnclaveConfig) -> tuple[bytes, ...]:
    """The network's allowed gateway measurements; on the development TEE with none named, the
    dev TEE's own defaults (a devnet's gateway runs on it)."""
    if config.gateway_measurements or config.tee != TEE_DEV:
        return tuple(config.gateway_measurements)
    from veilnet.tee import DEFAULT_DEV_MEASUREMENTS

    return tuple(m.id for m in DEFAULT_DEV_MEASUREMENTS.values())


def build_parts(
    config: EnclaveConfig, *, platform: Platform | None = None, engine: AgentEngine | None = None
) -> Parts:
    """The platform, verifier and engine that ``config`` names.

    ``platform`` and ``engine`` replace the built ones in an in-process enclave (tests: a
    seeded TEE, one engine shared by many cores); a real enclave process passes neither.

    Raises:
        EnclaveConfigInvalid: unknown TEE, or a dev TEE without a 32-byte seed.
        TEEUnavailable: the named hardware TEE is not there.
    """
    verifier = verifier_for(config)
    if platform is None:
        platform = platform_for(config)
    if engine is not None:
        return Parts(platform=platform, verifier=verifier, engine=engine)
    from veilnet.sandbox import AgentRuntime

    owned = AgentRuntime()
    return Parts(platform=platform, verifier=verifier, engine=owned, owned_engine=owned)


def _dev_seed(config: EnclaveConfig) -> bytes:
    seed = config.dev_network_seed
    if seed is None or len(seed) < 32:
        raise EnclaveConfigInvalid("the dev TEE needs a network seed of at least 32 bytes")
    return seed


def verifier_for(config: EnclaveConfig) -> QuoteVerifier:
    """Intel's root and the production policy; the dev TEE's root only for ``tee == "dev"``."""
    if config.tee == TEE_DEV:
        from veilnet.tee import DevEnclave

        root = DevEnclave(_dev_seed(config), allow_insecure_dev_tee=True).trust_root
        return PolicyVerifier(policy=Policy.development(), root=root)
    if config.tee not in TEES:
        raise EnclaveConfigInvalid(f"unknown TEE {config.tee!r}", allowed=list(TEES))
    if config.dev_network_seed is not None:
        raise EnclaveConfigInvalid("a dev network seed is only allowed with the dev TEE")
    return PolicyVerifier(policy=Policy(), root=TrustRoot.intel())


def platform_for(config: EnclaveConfig) -> Platform:
    """The TEE backend ``config`` names, built here (its entropy and sealing stay inside)."""
    if config.tee == TEE_DEV:
        from veilnet.tee import DevEnclave

        return TEEPlatform(DevEnclave(_dev_seed(config), allow_insecure_dev_tee=True))
    if config.tee == TEE_DSTACK:
        from veilnet.tee import DstackEnclave

        return TEEPlatform(DstackEnclave())
    if config.tee == TEE_GRAMINE:
        from veilnet.tee import GramineEnclave

        return TEEPlatform(GramineEnclave())
    raise EnclaveConfigInvalid(f"unknown TEE {config.tee!r}", allowed=list(TEES))
