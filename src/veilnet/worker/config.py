"""``WorkerConfig``: everything one worker host needs, as a small immutable value.
Network parameters shared by every replica come from the deployment (network.json)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from veilnet.chain.deploy import Deployment
from veilnet.protocol import enclave as RC  # noqa: N812 - network parameter defaults
from veilnet.protocol.chain import ChainTrust
from veilnet.worker import constants as C  # noqa: N812

__all__ = ["WorkerConfig"]


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerConfig:
    """Configuration of one ``WorkerHost``.

    Args:
        name: label for logs and metrics.
        data_dir: sealed identity, checkpoints and the relay journal live here.
        rpc_url: any JSON-RPC endpoint (anvil, the served embedded chain, geth, an L2).
        deployment: the network's contract addresses and genesis block.
        chain_trust: the network's chain-trust policy and trust anchor (network.json
            ``chain_trust``); measured into the enclave configuration.
        sequencer_url: under the ``sequencer`` policy, where the host fetches block signatures.
        operator_key: funded EOA paying gas for egress posts; also the registered operator.
        network_seed: the devnet's dev-TEE seed (only with ``allow_insecure_dev_tee``).
        allow_insecure_dev_tee: run on the INSECURE development TEE.
        enclave: a production TEE backend (``veilnet.tee``); None means the dev TEE.
        engine: agent engine to share (tests); None makes one and closes it at stop.
        finality_depth: confirmations before a block is applied.
        api_host, api_port: where the HTTP API listens (port 0 = ephemeral); serve_api=False
            runs without HTTP.
        public_url: the address clients reach the API at, registered on chain so they find
            this worker (behind NAT or a proxy); None: the API's own ``http://host:port``
            (nothing when it listens on a wildcard address).
        checkpoint_every: blocks between checkpoints; keep_checkpoints: how many are kept.
        gateway_url: attested inference gateway for ``llm.chat`` in query mode.
        gateway_measurements: allowed gateway measurement ids (dev defaults in dev mode).
        fund_from: a funded dev key the host sends its identity gas money from (devnets).
        poll_interval: seconds between chain polls when idle.
        max_lag_blocks: how far behind the final head the worker may be and still serve.
        rate_per_s, rate_burst: token bucket per client address for the API.
        query_threads: most calls in flight to the enclave, each on a connection of its own
            (``worker/lane.py``: one lane call computes at a time; the others are queries of
            agents that do I/O); more wait in line on the API's event loop.
        query_batch: most queries that waited while the enclave was busy sent in one call
            (1: each query alone).
        key_window_blocks, commitment_interval: network parameters (identical on replicas).
        egress_roots: PEM CA certificates agents' HTTPS servers must chain to (a network
            parameter, network.json ``egress_roots_pem``); empty: the enclave image's Mozilla
            roots.
        pccs_url, pccs_roots: the PCCS-compatible service (``https://``) gatekeepers fetch
            registrants' collateral from inside their cores, and the PEM CA certificates its
            TLS certificate must chain to (network parameters, network.json ``pccs_url`` and
            ``pccs_roots_pem``); empty: judge under the collateral the registrant posted.
        fetch_timeout_s: how long the host waits on one connect or receive of an agent's
            ``http.fetch`` (the limit agents are promised is ``HTTP_TIMEOUT_S``).
        enclave_mode: ``"process"`` (the default: the core runs in its own enclave process,
            ``veil enclave serve``, behind the bytes-only interface) or ``"local"`` (the same
            interface served in this process; unit tests only, required with ``engine``).
    """

    name: str = "worker"
    data_dir: Path
    rpc_url: str
    deployment: Deployment
    chain_trust: ChainTrust
    operator_key: bytes
    sequencer_url: str | None = None
    network_seed: bytes | None = None
    allow_insecure_dev_tee: bool = False
    enclave: Any = field(default=None, repr=False, compare=False)
    engine: Any = field(default=None, repr=False, compare=False)
    finality_depth: int = C.DEFAULT_FINALITY_DEPTH
    api_host: str = "127.0.0.1"
    api_port: int = 0
    serve_api: bool = True
    public_url: str | None = None
    checkpoint_every: int = C.DEFAULT_CHECKPOINT_EVERY
    keep_checkpoints: int = C.DEFAULT_KEEP_CHECKPOINTS
    gateway_url: str | None = None
    gateway_measurements: tuple[bytes, ...] = ()
    fund_from: bytes | None = field(default=None, repr=False)
    poll_interval: float = C.DEFAULT_POLL_INTERVAL_S
    max_lag_blocks: int = C.DEFAULT_MAX_LAG_BLOCKS
    rate_per_s: float = C.DEFAULT_RATE_PER_S
    rate_burst: int = C.DEFAULT_RATE_BURST
    query_threads: int = C.DEFAULT_QUERY_THREADS
    query_batch: int = C.DEFAULT_QUERY_BATCH
    key_window_blocks: int = RC.DEFAULT_KEY_WINDOW_BLOCKS
    commitment_interval: int = RC.DEFAULT_COMMITMENT_INTERVAL
    enclave_mode: str = "process"
    egress_roots: bytes = field(default=b"", repr=False)
    pccs_url: str = ""
    pccs_roots: bytes = field(default=b"", repr=False)
    fetch_timeout_s: float = C.DEFAULT_FETCH_TIMEOUT_S

    def __repr__(self) -> str:
        return (
            f"WorkerConfig(name={self.name!r}, data_dir={str(self.data_dir)!r}, "
            f"rpc_url={self.rpc_url!r}, dev_tee={self.allow_insecure_dev_tee}, <keys redacted>)"
        )
