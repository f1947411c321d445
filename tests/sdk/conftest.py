"""Fixtures for SDK tests: a real multi-replica core network (no HTTP) and an SDK base client
pointed at it, so every check runs against genuine worker responses."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_hash.auto import keccak

from veilnet.crypto import Address
from veilnet.protocol import envelopes as proto
from veilnet.sandbox import AgentRuntime
from veilnet.sdk import (
    BaseClient,
    ChainView,
    ContractKey,
    NetworkConfig,
    Wallet,
    WorkerRecord,
    WorkerVerification,
)
from veilnet.testing import Network, cluster_id_of
from veilnet.testing.network import NETWORK_SEED

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "agents"
ALICE = Wallet.from_key(keccak(b"veilnet sdk tests: alice"))
MALLORY = Wallet.from_key(keccak(b"veilnet sdk tests: mallory"))


@dataclass
class Local:
    """A bootstrapped Network with a counter agent owned by ALICE, and a BaseClient for it."""

    net: Network
    contract_id: bytes

    def config(self, **overrides: object) -> NetworkConfig:
        ledger = self.net.ledger
        doc = {
            "chain_id": ledger.chain_id,
            "rpc_url": "http://127.0.0.1:1",
            "contracts": {"Registry": Address(ledger.registry).hex, "Bus": Address(ledger.bus).hex},
            "finality": 2,
            "insecure_dev_tee": True,
            "network_seed": NETWORK_SEED.hex(),
            "clusters": [cluster_id_of("c1").hex()],
            "config_digest": self.net.config.config_digest.hex(),
        }
        doc.update(overrides)
        return NetworkConfig.from_json(doc)

    def client(self, wallet: Wallet = ALICE, **kwargs: object) -> BaseClient:
        kwargs.setdefault("allow_insecure_dev_tee", True)  # the test network's dev root
        return BaseClient(self.config(), wallet=wallet, **kwargs)  # type: ignore[arg-type]

    def key(self) -> ContractKey:
        public, epoch = self.net.contract_key_info(self.contract_id)
        return ContractKey(
            contract_id=self.contract_id,
            cluster=cluster_id_of("c1"),
            owner=ALICE.address,
            epoch=epoch,
            public_key=public,
            paused=False,
        )

    @property
    def head(self) -> int:
        return self.net.ledger.head.number

    def view(self, number: int, *, head: int | None = None) -> ChainView:
        """The chain as a client's own node would report it."""
        blocks = {b.header.number: b.header.hash for b in self.net.ledger.blocks}
        return ChainView(head=self.head if head is None else head, block_hash=blocks.get(number))

    def verification(self, worker: Address) -> WorkerVerification:
        """What a client keeps once ``worker`` attested, for its registry entry now."""
        record = self.registry_record(worker.raw)
        return WorkerVerification(
            address=worker,
            url=None,
            cluster=record.cluster,
            confidence=record.confidence,
            measurement=record.measurement,
            tee="tdx",
            trust_root="dev",
            verified_at=0,
        )

    def registry_record(self, worker: bytes) -> WorkerRecord:
        """``Registry.workers(addr)`` as the chain would return it, decoded as the SDK does."""
        record = self.net.ledger.workers.get(worker)
        core = next((c for c in self.net.cores.values() if c.address == worker), None)
        if record is None or core is None:
            zero = "0x" + "00" * 20
            return WorkerRecord.from_getter(
                (zero, bytes(32), 0, bytes(32), 0, bytes(32), bytes(32), bytes(32))
            )
        return WorkerRecord.from_getter(
            (
                "0x" + "0b" * 20,
                keccak(core.keys.identity.public.x25519),
                0,
                core.platform.measurement,
                record.confidence,
                record.quote_hash,
                bytes(32),
                record.cluster or bytes(32),
            )
        )


def make_local(engine: AgentRuntime) -> Local:
    net = Network(engine=engine)
    net.bootstrap()
    source = (EXAMPLES / "counter.py").read_bytes()
    contract_id = net.ledger.deploy_contract(
        sender=ALICE.address.raw,
        salt=b"\x01" * 32,
        cluster_id=cluster_id_of("c1"),
        code=proto.pack_code("py", source),
        init_args=bytes([proto.INIT_PUBLIC_TAG]) + json.dumps({"start": 5}).encode(),
    )
    net.settle()
    return Local(net=net, contract_id=contract_id)


@pytest.fixture
def local(engine: AgentRuntime) -> Local:
    return make_local(engine)
