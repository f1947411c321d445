"""A malicious host for the enclave process: raw bytes on its socket, nothing else.
Tests in ``tests/adversarial/`` drive a real ``veil enclave serve`` through this, as an attacker."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Callable
from typing import Any

from veilnet.crypto import Address, Domain, SecretKey
from veilnet.protocol import enclave as wire
from veilnet.protocol import envelopes as proto
from veilnet.protocol.chain import POLICY_SEQUENCER, ChainBlock, ChainTrust
from veilnet.protocol.egress import EgressMessage
from veilnet.protocol.events import ChainEvent
from veilnet.testing.ledger import (
    LEDGER_ANCHOR_HASH,
    LEDGER_SEQUENCER_KEY,
    LedgerSim,
    Revert,
    build_block,
)
from veilnet.worker.enclave import Enclave, ProcessEnclave

__all__ = [
    "TEST_TIMESTAMP",
    "AdversaryChain",
    "EnclaveNetwork",
    "MaliciousHost",
    "dev_chain_trust",
    "dev_enclave_config",
    "empty_block",
]

TEST_TIMESTAMP = 1_767_225_600
"""2026-01-01T00:00:00Z: block n of an ``AdversaryChain`` is two seconds per block after it."""


def dev_chain_trust() -> ChainTrust:
    """The chain-trust policy of the made-up network: the ledger's anchor and sequencer."""
    return ChainTrust(
        anchor_number=0,
        anchor_hash=LEDGER_ANCHOR_HASH,
        policy=POLICY_SEQUENCER,
        sequencer=LEDGER_SEQUENCER_KEY.address.raw,
    )


def dev_enclave_config(**overrides: Any) -> wire.EnclaveConfig:
    """A dev-TEE enclave configuration for a made-up network (chain 31337)."""
    values: dict[str, Any] = {
        "chain_id": 31337,
        "registry": b"\x03" * 20,
        "bus": b"\x04" * 20,
        "chain_trust": dev_chain_trust(),
        "key_window_blocks": wire.DEFAULT_KEY_WINDOW_BLOCKS,
        "commitment_interval": 0,
        "heartbeat_interval": 0,
        "max_confidence_level": wire.DEFAULT_MAX_CONFIDENCE_LEVEL,
        "tee": "dev",
        "dev_network_seed": b"veilnet-adversary-network-seed-0",
    }
    values.update(overrides)
    return wire.EnclaveConfig(**values)


class AdversaryChain:
    """Raw blocks of a ``dev_enclave_config`` network, built as its chain would: real receipts,
    real RLP headers, the sequencer's signature. A malicious host starts from these honest bytes
    and forges, drops, reorders, replays or re-signs them.

    ``block(n)`` chains onto the last block built at ``n - 1`` unless ``parent`` is given.
    """

    def __init__(self, config: wire.EnclaveConfig | None = None) -> None:
        self.config = config or dev_enclave_config()
        trust = self.config.chain_trust
        self.hashes: dict[int, bytes] = {trust.anchor_number: trust.anchor_hash}

    def block(
        self,
        number: int,
        *events: ChainEvent,
        parent: bytes | None = None,
        timestamp: int | None = None,
        signer: SecretKey | None = LEDGER_SEQUENCER_KEY,
        chain_id: int | None = None,
    ) -> ChainBlock:
        raw, header = build_block(
            chain_id=self.config.chain_id if chain_id is None else chain_id,
            registry=self.config.registry,
            bus=self.config.bus,
            parent_hash=self.hashes.get(number - 1, bytes(32)) if parent is None else parent,
            number=number,
            timestamp=TEST_TIMESTAMP + 2 * number if timestamp is None else timestamp,
            events=tuple(events),
            signer=signer,
        )
        self.hashes[number] = header.hash
        return raw


def empty_block(number: int, *, parent: bytes | None = None) -> ChainBlock:
    """A signed block with no events on the made-up network (after ``number - 1`` empty ones
    unless ``parent`` is given)."""
    chain = AdversaryChain()
    for earlier in range(1, number):
        chain.block(earlier)
    return chain.block(number, parent=parent)


class MaliciousHost:
    """Starts a real enclave process and talks to it as a hostile host may: well-formed calls
    through ``enclave`` (the typed client), or any bytes at all through ``send_raw``."""

    def __init__(self) -> None:
        self.process = ProcessEnclave()
        self.enclave = Enclave(self.process)

    def close(self) -> None:
        self.enclave.close()

    def __enter__(self) -> MaliciousHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(self.process.socket_path)
        sock.settimeout(30)
        return sock

    def send_raw(self, data: bytes) -> wire.Failure | wire.Result | None:
        """Send ``data`` on a fresh connection; the reply (one frame), or None if the enclave
        closed the connection instead of answering."""
        with self.connect() as sock:
            sock.sendall(data)
            payload = wire.FrameReader().read_frame(sock.recv)
        if payload is None:
            return None
        reply = wire.decode_frame(payload)
        if not isinstance(reply, wire.Failure | wire.Result):
            raise AssertionError("the enclave answered with neither a result nor a failure")
        return reply


class EnclaveNetwork:
    """Real enclave processes fed by an honest ``LedgerSim`` of a ``dev_enclave_config`` network:
    each ``step`` mines a block, applies it in every enclave and posts their egress. The
    adversarial tests build an honest state this way, then attack one enclave's inputs.

    The ledger's clock starts a minute into the next hour, because a dev enclave issues its
    collateral for the hour it runs in and a gatekeeper judges quotes at block time.
    """

    def __init__(
        self, config: wire.EnclaveConfig | None = None, *, io_kinds: tuple[str, ...] = ()
    ) -> None:
        self.config = config or dev_enclave_config()
        self.io_kinds = io_kinds
        """What the hosts announce at boot that they relay for agents (``Boot.io_kinds``)."""
        self.ledger = LedgerSim(
            chain_id=self.config.chain_id,
            registry=self.config.registry,
            bus=self.config.bus,
            # an hour ahead of the hour the enclaves' collateral is issued in: a test that runs
            # across the hour gets collateral issued in the next one, still before chain time
            genesis_time=(int(time.time()) // 3600 + 1) * 3600 + 60,
        )
        self.hosts: dict[str, MaliciousHost] = {}
        self.addresses: dict[str, bytes] = {}
        self.boot_ids: dict[str, bytes] = {}
        self.sealed_identities: dict[str, bytes] = {}
        self.egress: list[EgressMessage] = []
        """Every message an enclave emitted, in order."""
        self.withhold: Callable[[EgressMessage], bool] | None = None
        """A host's choice: egress it keeps back instead of posting (kept in ``withheld``)."""
        self.withheld: list[EgressMessage] = []

    def close(self) -> None:
        for host in self.hosts.values():
            host.close()
        self.hosts.clear()

    def __enter__(self) -> EnclaveNetwork:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self, name: str, *, register: bool = True) -> bytes:
        """A new enclave process, booted fresh, caught up and (unless told not to) registered
        on the ledger; its address."""
        host = MaliciousHost()
        self.hosts[name] = host
        booted = host.enclave.boot(wire.Boot(config=self.config, io_kinds=self.io_kinds))
        self.addresses[name] = booted.address
        self.boot_ids[name] = booted.boot_id
        self.sealed_identities[name] = booted.sealed_identity
        for block in self.ledger.raw_blocks:  # a new enclave replays the chain so far
            self._post(host.enclave.apply_block(block).egress)
        if not register:
            return booted.address
        request = host.enclave.registration(b"\x0b" * 20)
        self.ledger.set_measurement(request.measurement)
        self.ledger.register_worker(request)
        return booted.address

    def restart(self, name: str) -> None:
        """Checkpoint ``name``'s enclave, end its process and boot a new one from the checkpoint
        (what an operator's restart does)."""
        sealed = self.hosts[name].enclave.checkpoint().sealed
        self.hosts.pop(name).close()
        host = MaliciousHost()
        self.hosts[name] = host
        booted = host.enclave.boot(
            wire.Boot(
                config=self.config,
                sealed_identity=self.sealed_identities[name],
                checkpoint=sealed,
                io_kinds=self.io_kinds,
            )
        )
        self.boot_ids[name] = booted.boot_id

    def step(self) -> ChainBlock:
        block = self.ledger.mine()
        for name in sorted(self.hosts):
            self._post(self.hosts[name].enclave.apply_block(block).egress)
        return block

    def _post(self, egress: tuple[EgressMessage, ...]) -> None:
        self.egress.extend(egress)
        for message in egress:
            if self.withhold is not None and self.withhold(message):
                self.withheld.append(message)
                continue
            with contextlib.suppress(Revert):  # a replay's old message, posted long ago
                self.ledger.post(message)

    def settle(self, max_blocks: int = 30) -> None:
        """Step until two blocks in a row carry no events (bounded)."""
        quiet = 0
        for _ in range(max_blocks):
            self.step()
            quiet = 0 if (self.ledger.blocks[-1].events or self.ledger.pending) else quiet + 1
            if quiet >= 2:
                return
        raise AssertionError("the network did not settle")

    def bootstrap(self, *, gatekeeper: str = "gk", workers: tuple[str, ...] = ("w1",)) -> bytes:
        """A gatekeeper with the master key, endorsed workers, cluster ``c1`` keyed for them;
        returns the cluster id."""
        self.start(gatekeeper)
        self.settle()
        self.ledger.add_gatekeeper(self.addresses[gatekeeper])
        self.settle()
        for name in workers:
            self.start(name)
        self.settle()
        cluster = b"c1".ljust(32, b"\x00")
        self.ledger.create_cluster(cluster)
        for name in workers:
            self.ledger.add_cluster_worker(cluster, self.addresses[name])
        self.settle()
        return cluster

    def seal_query(
        self,
        worker: str,
        contract: bytes,
        body: bytes,
        *,
        wallet: SecretKey,
        request_id: bytes,
        window: int | None = None,
        boot_id: bytes | None = None,
    ) -> tuple[bytes, proto.ClientSession]:
        """A query sealed as the SDK seals it, addressed to ``worker`` at its current boot (or
        ``boot_id``), for the window ``window`` (default the ledger's head)."""
        record = self.ledger.contracts[contract]
        ephemeral = SecretKey.derive(b"\x72" * 32, "ephemeral")
        head = self.ledger.head.number
        certificate = proto.make_certificate(
            wallet, ephemeral, chain_id=self.config.chain_id, expires_block=head + 1000
        )
        session = proto.open_session(
            ephemeral,
            record.public_key,
            chain_id=self.config.chain_id,
            contract_id=contract,
            epoch=record.key_epoch,
            secret=b"\x09" * 32,
        )
        request = proto.build_query(
            session=session,
            certificate=certificate,
            request_id=request_id,
            kind="call",
            body=body,
            worker=self.addresses[worker],
            boot_id=self.boot_ids[worker] if boot_id is None else boot_id,
            window=head if window is None else window,
        )
        return request, session

    def open_answer(self, raw: bytes, session: proto.ClientSession, request_id: bytes) -> Any:
        """The verified, decrypted JSON answer to a ``seal_query`` query."""
        plain = proto.open_response(
            proto.QueryResponse.from_bytes(raw),
            domain=Domain(
                chain_id=self.config.chain_id, verifying_contract=Address(self.config.registry)
            ),
            session=session.keys,
            expected_request_id=request_id,
        )
        return json.loads(plain)
