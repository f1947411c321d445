"""A multi-replica harness: several enclave cores fed the same blocks from a LedgerSim.
Runs whole protocols (registration, clusters, rotation) in-process and deterministically."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from veilnet.attestation import Policy
from veilnet.codec import encode
from veilnet.crypto import SecretKey
from veilnet.protocol import envelopes as proto
from veilnet.protocol import topics
from veilnet.protocol.egress import EgressMessage
from veilnet.protocol.errors import SnapshotRefused
from veilnet.runtime import CoreConfig, EnclaveCore
from veilnet.runtime.adapters import PolicyVerifier, TEEPlatform
from veilnet.runtime.interfaces import AgentEngine
from veilnet.tee import DEFAULT_DEV_MEASUREMENTS, DevEnclave
from veilnet.testing.ledger import LedgerSim, Revert

NETWORK_SEED = b"veilnet-testing-network-seed-000"
TEST_TIME = 1_767_225_600  # 2026-01-01T00:00:00Z: dev collateral is issued here


@dataclass(slots=True)
class Network:
    """A LedgerSim, a gatekeeper and workers, each with its own core, run block by block."""

    engine: AgentEngine
    ledger: LedgerSim = field(default_factory=LedgerSim)
    cores: dict[str, EnclaveCore] = field(default_factory=dict)
    platforms: dict[str, TEEPlatform] = field(default_factory=dict)
    config: CoreConfig | None = None
    key_window_blocks: int = 20
    commitment_interval: int = 0
    finality: int = 0
    heartbeat_interval: int = 0
    config_digest: bytes = b"\x5d" * 32
    """Stands in for ``EnclaveConfig.network_digest`` (registration and attestation bind it)."""
    """The network digest every core is built with (``add_core`` may give one another)."""
    """Cores see block n only once n + finality blocks exist (as the real follower does)."""
    posted: list[EgressMessage] = field(default_factory=list)
    sealed_keys: dict[str, bytes] = field(default_factory=dict)
    """Per core, the newest keys it drew from TEE entropy, sealed (what a host stores)."""
    withhold: Callable[[EgressMessage], bool] | None = None
    """A host's choice: egress it keeps back instead of posting (kept in ``withheld``)."""
    withheld: list[EgressMessage] = field(default_factory=list)
    gateway_measurements: tuple[bytes, ...] | None = None
    """Gateway measurements ``llm.chat`` accepts; None: the dev TEE's defaults (as a dev
    enclave configuration with none named)."""
    pccs_url: str = ""
    """The network's PCCS (``CoreConfig.pccs_url``): gatekeepers fetch collateral from it."""
    pccs_roots: bytes = b""
    pccs_relay: Any = None
    """What carries gatekeepers' TLS records to the PCCS (``testing.https.SocketRelay``)."""
    pccs_failures: list[str] = field(default_factory=list)
    """Reasons of every collateral fetch that failed, in order."""
    ferry_snapshots: bool = True
    """Carry state snapshots from members to late joiners after each block, as hosts do."""
    syncs: list[tuple[str, str, int]] = field(default_factory=list)
    """(joiner, member, height) of every snapshot a joiner took."""

    def __post_init__(self) -> None:
        if self.gateway_measurements is None:
            self.gateway_measurements = tuple(m.id for m in DEFAULT_DEV_MEASUREMENTS.values())
        self.ledger.genesis_time = TEST_TIME
        self.config = CoreConfig(
            chain_id=self.ledger.chain_id,
            registry=self.ledger.registry,
            bus=self.ledger.bus,
            chain_trust=self.ledger.chain_trust,
            key_window_blocks=self.key_window_blocks,
            commitment_interval=self.commitment_interval,
            heartbeat_interval=self.heartbeat_interval,
            config_digest=self.config_digest,
            gateway_measurements=self.gateway_measurements,
            pccs_url=self.pccs_url,
            pccs_roots=self.pccs_roots,
        )

    def _platform(self, name: str) -> TEEPlatform:
        enclave = DevEnclave(
            NETWORK_SEED, allow_insecure_dev_tee=True, collateral_issued_at=TEST_TIME - 3600
        )
        return SeededPlatform(enclave, seed=name.encode())

    def verifier(self) -> PolicyVerifier:
        root = DevEnclave(NETWORK_SEED, allow_insecure_dev_tee=True).trust_root
        return PolicyVerifier(policy=Policy.development(), root=root)

    def add_core(
        self,
        name: str,
        *,
        sealed_identity: bytes | None = None,
        sealed_keys: bytes | None = None,
        config: CoreConfig | None = None,
    ) -> EnclaveCore:
        """A core replaying the chain so far; ``config`` replaces the network's (a host that
        built its enclave from a configuration of its own choosing); ``sealed_keys`` are the
        keys an earlier run of this identity drew (``sealed_keys[name]``)."""
        assert self.config is not None
        platform = self.platforms.get(name) or self._platform(name)
        self.platforms[name] = platform
        core = EnclaveCore.boot(
            config=config or self.config,
            platform=platform,
            engine=self.engine,
            verifier=self.verifier(),
            sealed_identity=sealed_identity,
        )
        if sealed_keys is not None:
            core.import_keys(sealed_keys)
        final = self.ledger.raw_blocks[: max(0, len(self.ledger.raw_blocks) - self.finality)]
        for block in final:  # a new worker replays the chain from genesis
            for message in core.apply_block(block):
                self._post(message)
        self.cores[name] = core
        return core

    def register(self, name: str, *, config: CoreConfig | None = None) -> EnclaveCore:
        core = self.cores.get(name) or self.add_core(name, config=config)
        self.ledger.set_measurement(core.platform.measurement)
        self.ledger.register_worker(core.registration(operator=b"\x0b" * 20))
        return core

    def step(self, *, only: Iterable[str] | None = None) -> None:
        """Mine one block, feed it to every core, post their egress in name order."""
        self.ledger.mine()
        final_number = len(self.ledger.blocks) - self.finality
        if final_number < 1:
            return
        block = self.ledger.raw_blocks[final_number - 1]
        number = self.ledger.blocks[final_number - 1].header.number
        outputs: list[EgressMessage] = []
        for name in sorted(self.cores):
            if only is not None and name not in only:
                continue
            core = self.cores[name]
            if core.head is not None and core.head.number >= number:
                continue
            outputs.extend(core.apply_block(block))
            sealed = core.generated_keys()
            if sealed is not None:  # as a host stores them, before it posts the egress
                self.sealed_keys[name] = sealed
        if self.ferry_snapshots:
            outputs.extend(self.ferry())
        if self.pccs_relay is not None:
            self.fetch_collateral()
        for message in outputs:
            if self._post(message):
                self.posted.append(message)

    def fetch_collateral(self) -> None:
        """Every gatekeeper that wants collateral fetches it from the PCCS (as hosts do)."""
        for name in sorted(self.cores):
            core = self.cores[name]
            if not core.collateral_wanted:
                continue
            try:
                found, failures = core.fetch_collateral(self.pccs_relay)
            finally:
                self.pccs_relay.close_all()
            core.keep_collateral(found)
            self.pccs_failures.extend(failures)

    def ferry(self) -> list[EgressMessage]:
        """Each core waiting for a cluster's state asks the members in name order for a
        snapshot and takes the first its core accepts (what a worker host does)."""
        out: list[EgressMessage] = []
        for joiner_name in sorted(self.cores):
            joiner = self.cores[joiner_name]
            cluster_id = joiner.snapshot_due
            if cluster_id is None:
                continue
            for member_name in sorted(self.cores):
                member = self.cores[member_name]
                if member is joiner or member.address not in member.clusters[cluster_id].members:
                    continue
                try:
                    blob = member.export_snapshot(joiner.address)
                    height, egress = joiner.import_snapshot(blob)
                except SnapshotRefused:
                    continue
                self.syncs.append((joiner_name, member_name, height))
                out.extend(egress)
                break
        return out

    def _post(self, message: EgressMessage) -> bool:
        """Post as a relay does: a heartbeat the Bus refuses on a used sequence (a replayed,
        stale one) is dropped, like any message someone else posted first."""
        if self.withhold is not None and self.withhold(message):
            self.withheld.append(message)
            return False
        try:
            return self.ledger.post(message)
        except Revert:
            if message.topic == topics.TOPIC_HEARTBEAT and message.seq < self.ledger.next_seq.get(
                message.origin, 0
            ):
                return False
            raise

    def settle(self, max_blocks: int = 30) -> None:
        """Step until a block with no events, then one more (bounded)."""
        quiet = 0
        for _ in range(max_blocks):
            self.step()
            busy = self.ledger.blocks[-1].events or self.ledger.pending
            if busy or any(core.collateral_held for core in self.cores.values()):
                quiet = 0
            else:
                quiet += 1
            if quiet > self.finality:
                return
        raise AssertionError("network did not settle")

    def bootstrap(
        self,
        *,
        gatekeeper: str = "gk",
        workers: Iterable[str] = ("w1", "w2"),
        clusters: dict[str, list[str]] | None = None,
    ) -> None:
        """Genesis: gatekeeper registered and added, workers registered, endorsed, clustered."""
        self.register(gatekeeper)
        self.settle()
        self.ledger.add_gatekeeper(self.cores[gatekeeper].address)
        self.settle()
        for name in workers:
            self.register(name)
        self.settle()
        for cluster, members in (clusters or {"c1": list(workers)}).items():
            cluster_id = cluster_id_of(cluster)
            self.ledger.create_cluster(cluster_id)
            for member in members:
                self.ledger.add_cluster_worker(cluster_id, self.cores[member].address)
        self.settle()

    # --- user actions ---

    def deploy(
        self,
        owner: SecretKey,
        language: str,
        source: bytes,
        *,
        cluster: str = "c1",
        salt: bytes = b"\x01" * 32,
        init: Any = None,
    ) -> bytes:
        init_args = (
            b"" if init is None else bytes([proto.INIT_PUBLIC_TAG]) + json.dumps(init).encode()
        )
        contract_id = self.ledger.deploy_contract(
            sender=owner.address.raw,
            salt=salt,
            cluster_id=cluster_id_of(cluster),
            code=proto.pack_code(language, source),
            init_args=init_args,
        )
        self.settle()
        return contract_id

    def contract_key_info(self, contract_id: bytes) -> tuple[bytes, int]:
        """(public key, epoch) of a contract, as a client reads them from the chain."""
        for block in reversed(self.ledger.blocks):
            for event in reversed(block.events):
                if (
                    getattr(event, "contract_id", None) == contract_id
                    and type(event).__name__ == "ContractKeySet"
                ):
                    return event.public_key, event.epoch  # type: ignore[attr-defined]
        raise LookupError("contract has no key yet")

    def command(
        self,
        sender: SecretKey,
        contract_id: bytes,
        msg: Any,
        *,
        nonce: int,
        epoch: int | None = None,
        public: bytes | None = None,
    ) -> int:
        key, current = self.contract_key_info(contract_id)
        payload = proto.seal_command(
            public or key,
            proto.CommandPlaintext(
                sender=sender.address.raw, nonce=nonce, kind="call", body=json.dumps(msg).encode()
            ),
            chain_id=self.ledger.chain_id,
            contract_id=contract_id,
            epoch=current if epoch is None else epoch,
        )
        return self.ledger.push_command(contract_id, payload, sender=sender.address.raw)


class SeededPlatform(TEEPlatform):
    """A dev platform whose entropy is a fixed function of a seed, so test runs repeat exactly."""

    def __init__(self, enclave: DevEnclave, *, seed: bytes) -> None:
        super().__init__(enclave)
        self._seed = seed
        self._draws = 0

    def random_bytes(self, n: int) -> bytes:
        self._draws += 1
        return (
            hashlib.sha256(self._seed + self._draws.to_bytes(8, "big")).digest()[:n].ljust(n, b"\0")
        )


def certified_query(
    net: Network,
    wallet: SecretKey,
    contract_id: bytes,
    *,
    ephemeral: SecretKey,
    request_id: bytes,
    kind: str,
    body: bytes,
    expires_in: int = 100,
    worker: str = "w1",
) -> tuple[bytes, proto.ClientSession]:
    """A query to ``contract_id`` under a fresh certificate of ``wallet`` for ``ephemeral``,
    addressed to core ``worker`` at its current boot, and the client session whose keys open
    its answer."""
    public, epoch = net.contract_key_info(contract_id)
    certificate = proto.make_certificate(
        wallet,
        ephemeral,
        chain_id=net.ledger.chain_id,
        expires_block=net.ledger.head.number + expires_in,
    )
    session = proto.open_session(
        ephemeral,
        public,
        chain_id=net.ledger.chain_id,
        contract_id=contract_id,
        epoch=epoch,
        secret=hashlib.sha256(b"session" + request_id).digest(),
    )
    request = proto.build_query(
        session=session,
        certificate=certificate,
        request_id=request_id,
        kind=kind,
        body=body,
        worker=net.cores[worker].address,
        boot_id=net.cores[worker].boot_id,
        window=net.ledger.head.number,
    )
    return request, session


def query_core(
    net: Network,
    wallet: SecretKey,
    contract_id: bytes,
    msg: Any,
    *,
    worker: str = "w1",
    kind: str = "call",
    io: Any = None,
) -> dict[str, Any]:
    """Run an encrypted, certified query against one core and return the verified answer."""
    request, answer = sealed_query(net, wallet, contract_id, msg, worker=worker, kind=kind)
    return answer(net.cores[worker].query(request, io=io))


def sealed_query(
    net: Network,
    wallet: SecretKey,
    contract_id: bytes,
    msg: Any,
    *,
    worker: str = "w1",
    kind: str = "call",
) -> tuple[bytes, Callable[[bytes], dict[str, Any]]]:
    """``query_core`` in two parts: the sealed request, and what checks and opens the core's
    answer to it (a bench times the core alone)."""
    ephemeral = SecretKey.generate()
    request_id = hashlib.sha256(ephemeral.public.x25519 + json.dumps(msg).encode()).digest()
    body = encode(msg) if kind == "outcome" else json.dumps(msg).encode()
    request, session = certified_query(
        net,
        wallet,
        contract_id,
        ephemeral=ephemeral,
        request_id=request_id,
        kind=kind,
        body=body,
        worker=worker,
    )
    assert net.config is not None
    domain = net.config.response_domain

    def answer(raw: bytes) -> dict[str, Any]:
        plain = proto.open_response(
            proto.QueryResponse.from_bytes(raw),
            domain=domain,
            session=session.keys,
            expected_request_id=request_id,
        )
        opened: dict[str, Any] = json.loads(plain)
        return opened

    return request, answer


def cluster_id_of(name: str) -> bytes:
    return name.encode().ljust(32, b"\x00")
