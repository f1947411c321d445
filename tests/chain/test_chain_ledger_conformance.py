"""Conformance of ``veilnet.testing.LedgerSim`` with Registry.vy and Bus.vy on the embedded chain.
Every step runs on both: the outcome (accepted, or the revert reason), the core events (through
the worker's adapter) and, at the end, the Registry's and Bus's views must be equal."""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from eth_hash.auto import keccak
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from veilnet.chain import (
    AnvilChain,
    ContractReverted,
    EmbeddedChain,
    Network,
    TxSender,
    deploy,
)
from veilnet.chain.constants import (
    ATTESTATION_WINDOW,
    BUS_TOPICS,
    DEFAULT_MAX_PAYLOAD,
    DEPOSIT_WINDOW,
    MAX_BATCHED_PAYLOAD,
    MAX_COMMAND_BATCH,
    MAX_EGRESS_HOSTS,
    MAX_HOST_NAME,
    MAX_PAYLOAD_BOUND,
    ROTATION_WINDOW,
    ROUTED_TOPICS,
)
from veilnet.chain.egress import (
    EgressMessage as ChainEgress,
)
from veilnet.chain.egress import (
    egress_domain,
    encode_agent_schedule,
    encode_cluster_key,
    encode_contract_key,
    encode_endorse,
    encode_init_failed,
    encode_master_key,
    encode_rotation_confirm,
    encode_rotation_propose,
    encode_worker_key,
    sign_egress,
    topic,
)
from veilnet.chain.interfaces import ChainBackend
from veilnet.chain.model import RawLog, decode_log
from veilnet.chain.rpc import from_hex, from_quantity, to_hex
from veilnet.codec import abi_encode
from veilnet.crypto import Address, SecretKey
from veilnet.crypto.constants import SECP256K1_N
from veilnet.protocol import events as ev
from veilnet.protocol.egress import EgressMessage as CoreEgress
from veilnet.protocol.limits import MAX_EGRESS_PAYLOAD
from veilnet.protocol.registration import RegistrationRequest, TEEKind
from veilnet.protocol.rotation import prove_possession
from veilnet.protocol.topics import TOPIC_COLLATERAL
from veilnet.testing import LedgerSim, Revert, require_tool
from veilnet.worker.adapter import to_core_event

MEASUREMENT = b"\x42" * 32
OTHER_MEASUREMENT = b"\x43" * 32
MAX_PAYLOAD = DEFAULT_MAX_PAYLOAD
"""Below the Bus's ABI bound, so that both "payload too big" and the bound itself are reached."""
PLAIN = topic("veil/test/plain")
"""A topic the Bus logs and does not route to the Registry (any topic is one)."""
STATE = topic("veil/egress/state-commitment")
HEARTBEAT = topic("veil/egress/heartbeat")
GAS = 3_000_000
"""Enough for any call here, routed posts included (the Bus forwards 400k to the Registry)."""
ZERO = b"\x00" * 20
NO_REASON = "reverted"
"""What the chain reports for a revert without a reason string (ABI bounds, abi_decode)."""
MODEL_UNREASONED = frozenset({"argument too long", "malformed payload"})
"""The model's names for reverts the contracts raise without a reason."""


FAR = 2**40
"""An endorsement expiry far beyond any test's chain time."""


def secret(name: str) -> SecretKey:
    return SecretKey.derive(b"veilnet-ledger-conformance-seed-01", name)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one call did: accepted with these core events, or reverted for this reason."""

    accepted: bool
    reason: str = ""
    events: tuple[ev.ChainEvent, ...] = ()


@dataclass(slots=True)
class Chain:
    """One chain with Registry and Bus deployed, shared by the whole module: the embedded
    py-evm chain, then anvil (the same contracts on the devnet's node)."""

    backend: ChainBackend
    network: Network
    accounts: list[bytes]
    genesis: int
    call_tag: str
    """The block tag whose ``eth_call`` runs as the next transaction will: the embedded chain
    simulates the next block under "latest", anvil under "pending"."""


@pytest.fixture(scope="module", params=["embedded", "anvil"])
def chain(request: pytest.FixtureRequest) -> Iterator[Chain]:
    backend: ChainBackend
    if request.param == "embedded":
        backend = EmbeddedChain()
    else:
        require_tool("anvil")
        backend = AnvilChain()
    accounts = [private for _, private in backend.dev_accounts]
    client = backend.client()
    deployment = deploy(client, accounts[0], max_payload=MAX_PAYLOAD)
    yield Chain(
        backend=backend,
        network=Network(client, deployment.addresses),
        accounts=accounts,
        genesis=backend.snapshot(),
        call_tag="latest" if request.param == "embedded" else "pending",
    )
    backend.close()


@dataclass
class Twin:
    """The model and the chain side by side; each method runs one call on both and compares."""

    chain: Chain
    ledger: LedgerSim = field(init=False)
    senders: dict[bytes, TxSender] = field(default_factory=dict)
    workers: dict[bytes, SecretKey] = field(default_factory=dict)
    known: set[bytes] = field(default_factory=set)
    """Every address a view check looks up (workers, keys, users)."""
    cluster_ids: set[bytes] = field(default_factory=set)
    contract_ids: set[bytes] = field(default_factory=set)

    def __post_init__(self) -> None:
        addresses = self.chain.network.addresses
        self.ledger = LedgerSim(
            chain_id=addresses.chain_id,
            registry=addresses.registry.raw,
            bus=addresses.bus.raw,
            owner=self.account(0).address.raw,
            max_payload=MAX_PAYLOAD,
            block_env=self.block_env,
            clock=self.clock,
        )

    def block_env(self) -> tuple[int, Callable[[int], bytes]]:
        """The chain's next block number and BLOCKHASH, for the model's heartbeat rules."""
        return self.head() + 1, self.block_hash

    def clock(self) -> int:
        """About the chain's time (its head's timestamp): endorsements here expire far from it."""
        block = self.chain.network.client.call("eth_getBlockByNumber", "latest", False)
        return from_quantity(block["timestamp"])

    def head(self) -> int:
        return from_quantity(self.chain.network.client.call("eth_blockNumber"))

    def block_hash(self, number: int) -> bytes:
        block = self.chain.network.client.call("eth_getBlockByNumber", hex(number), False)
        return from_hex(block["hash"])

    def heartbeat(
        self,
        key: SecretKey,
        *,
        height: int,
        boot: bytes,
        sealed: int = 0,
        seq: int | None = None,
        block_hash: bytes | None = None,
    ) -> Outcome:
        """Post a heartbeat of ``key``'s worker for ``height`` (its real hash unless given)."""
        payload = abi_encode(
            ["uint64", "bytes32", "uint64", "bytes32"],
            [height, self.block_hash(height) if block_hash is None else block_hash, sealed, boot],
        )
        return self.post(key, (HEARTBEAT, payload), seq=seq)

    # --- actors ---

    def account(self, index: int) -> TxSender:
        """Dev account ``index``: 0 is governance, 9 funds workers and relays egress."""
        return self._sender(self.chain.accounts[index])

    def _sender(self, private: bytes) -> TxSender:
        sender = self.chain.network.sender(private)
        return self.senders.setdefault(sender.address.raw, sender)

    @property
    def admin(self) -> bytes:
        return self.account(0).address.raw

    def user(self, index: int) -> bytes:
        address = self.account(index).address.raw
        self.known.add(address)
        return address

    def worker(self, name: str) -> bytes:
        """A worker identity, funded on chain so it can send its own registration."""
        key = secret(name)
        address = key.address.raw
        if address not in self.workers:
            self.workers[address] = key
            self.known.add(address)
            self.account(9).transact(key.address, b"", value=10**18, gas=21_000)
            self._sender(key._private_scalar())
        return address

    def enclave_key(self, name: str) -> SecretKey:
        key = secret(name)
        self.known.add(key.address.raw)
        return key

    # --- running one call on both sides ---

    def _model(self, call: Callable[[], Any]) -> tuple[Outcome, Any]:
        before = len(self.ledger.pending)
        try:
            result = call()
        except Revert as exc:
            assert len(self.ledger.pending) == before, "a reverted model call emitted events"
            reason = str(exc)
            return Outcome(False, NO_REASON if reason in MODEL_UNREASONED else reason), None
        if result is False:  # LedgerSim.post's answer for an already used sequence number
            return Outcome(False, "sequence already used"), None
        return Outcome(True, events=tuple(self.ledger.pending[before:])), result

    def _chain(self, sender: bytes, to: Address, data: bytes, *, value: int = 0) -> Outcome:
        tx = self.senders[sender]
        client = self.chain.network.client
        call = {
            "from": tx.address.hex,
            "to": to.hex,
            "data": to_hex(data),
            "gas": hex(GAS),
            "value": hex(value),
        }
        try:
            client.call("eth_call", call, self.chain.call_tag)
        except ContractReverted as exc:
            return Outcome(False, exc.reason)
        receipt = tx.transact(to, data, gas=GAS, value=value)
        addresses = self.chain.network.addresses
        events = []
        for log in receipt.logs:
            raw = RawLog(
                address=from_hex(log["address"]),
                topics=tuple(from_hex(t) for t in log["topics"]),
                data=from_hex(log["data"]),
                block_number=int(log["blockNumber"], 16),
                log_index=int(log["logIndex"], 16),
                tx_hash=from_hex(log["transactionHash"]),
            )
            core = to_core_event(decode_log(raw, addresses))
            if core is not None:
                events.append(core)
        return Outcome(True, events=tuple(events))

    def _both(
        self,
        model: Callable[[], Any],
        sender: bytes,
        contract: str,
        fn: str,
        *args: Any,
        value: int = 0,
    ) -> Outcome:
        network = self.chain.network
        handle = network.registry if contract == "Registry" else network.bus
        expected, _ = self._model(model)
        actual = self._chain(sender, handle.address, handle.encode(fn, *args), value=value)
        assert expected == actual, f"{fn}: model {expected} != chain {actual}"
        return actual

    # --- Registry: governance ---

    def set_measurement(self, measurement: bytes, allowed: bool, *, by: bytes) -> Outcome:
        return self._both(
            lambda: self.ledger.set_measurement(measurement, allowed, sender=by),
            by,
            "Registry",
            "set_measurement",
            measurement,
            allowed,
        )

    def add_gatekeeper(self, gatekeeper: bytes, *, by: bytes) -> Outcome:
        return self._both(
            lambda: self.ledger.add_gatekeeper(gatekeeper, sender=by),
            by,
            "Registry",
            "add_gatekeeper",
            Address(gatekeeper),
        )

    def remove_gatekeeper(self, gatekeeper: bytes, *, by: bytes) -> Outcome:
        return self._both(
            lambda: self.ledger.remove_gatekeeper(gatekeeper, sender=by),
            by,
            "Registry",
            "remove_gatekeeper",
            Address(gatekeeper),
        )

    def lock_rotation(self, *, by: bytes) -> Outcome:
        return self._both(
            lambda: self.ledger.lock_rotation(sender=by), by, "Registry", "lock_rotation"
        )

    def abort_rotation(self, *, by: bytes) -> Outcome:
        return self._both(
            lambda: self.ledger.abort_rotation(sender=by), by, "Registry", "abort_rotation"
        )

    def set_rotation_interval(self, blocks: int, *, by: bytes) -> Outcome:
        return self._both(
            lambda: self.ledger.set_rotation_interval(blocks, sender=by),
            by,
            "Registry",
            "set_rotation_interval",
            blocks,
        )

    def set_rotation_threshold(self, threshold: int, *, by: bytes) -> Outcome:
        return self._both(
            lambda: self.ledger.set_rotation_threshold(threshold, sender=by),
            by,
            "Registry",
            "set_rotation_threshold",
            threshold,
        )

    def create_cluster(
        self, cluster_id: bytes, owner: bytes, *, by: bytes, suite: int = 1
    ) -> Outcome:
        self.cluster_ids.add(cluster_id)
        return self._both(
            lambda: self.ledger.create_cluster(cluster_id, owner, suite=suite, sender=by),
            by,
            "Registry",
            "create_cluster",
            cluster_id,
            Address(owner),
            suite,
        )

    # --- Registry: workers, clusters, agent contracts ---

    def register(
        self,
        worker: bytes,
        *,
        quote: bytes = b"quote",
        measurement: bytes = MEASUREMENT,
        hpke_key: bytes | None = None,
        attested_block: int | None = None,
        deposit: int = 0,
        api_url: str = "",
    ) -> Outcome:
        key = self.workers[worker]
        request: Any = RegistrationRequest(
            worker=worker,
            operator=b"\x0b" * 20,
            hpke_key=key.public.x25519 if hpke_key is None else hpke_key,
            tee_kind=TEEKind.TDX,
            measurement=measurement,
            quote=quote,
            collateral=b"",
            collateral_hash=b"\x07" * 32,
            attested_block=self.head() if attested_block is None else attested_block,
        )
        if api_url:  # any string, as a host outside a core could send: the chain bounds it
            fields = {f.name: getattr(request, f.name) for f in dataclasses.fields(request)}
            request = types.SimpleNamespace(**{**fields, "api_url": api_url})
        return self._both(
            lambda: self.ledger.register_worker(request, deposit=deposit),
            worker,
            "Registry",
            "register_worker",
            Address(request.operator),
            request.hpke_key,
            int(request.tee_kind),
            request.measurement,
            request.quote,
            request.collateral_hash,
            request.attested_block,
            request.api_url,
            value=deposit,
        )

    def reattest(
        self,
        worker: bytes,
        *,
        quote: bytes,
        collateral_hash: bytes = b"\x08" * 32,
        attested_block: int | None = None,
    ) -> Outcome:
        block = self.head() if attested_block is None else attested_block
        return self._both(
            lambda: self.ledger.reattest_worker(worker, quote, collateral_hash, block),
            worker,
            "Registry",
            "reattest_worker",
            quote,
            collateral_hash,
            block,
        )

    def report_divergence(
        self, cluster_id: bytes, height: int, worker: bytes, *, by: bytes
    ) -> Outcome:
        return self._both(
            lambda: self.ledger.report_divergence(cluster_id, height, worker),
            by,
            "Registry",
            "report_divergence",
            cluster_id,
            height,
            Address(worker),
        )

    def set_registration_deposit(self, amount: int, *, by: bytes) -> Outcome:
        return self._both(
            lambda: self.ledger.set_registration_deposit(amount, sender=by),
            by,
            "Registry",
            "set_registration_deposit",
            amount,
        )

    def claim_refund(self, *, by: bytes) -> Outcome:
        return self._both(
            lambda: self.ledger.claim_refund(sender=by), by, "Registry", "claim_refund"
        )

    def reclaim_deposit(self, worker: bytes, *, by: bytes) -> Outcome:
        return self._both(
            lambda: self.ledger.reclaim_deposit(worker),
            by,
            "Registry",
            "reclaim_deposit",
            Address(worker),
        )

    def withdraw_forfeited(self, to: bytes, *, by: bytes) -> Outcome:
        return self._both(
            lambda: self.ledger.withdraw_forfeited(to, sender=by),
            by,
            "Registry",
            "withdraw_forfeited",
            Address(to),
        )

    def evict(self, worker: bytes, *, by: bytes) -> Outcome:
        return self._both(
            lambda: self.ledger.evict(worker), by, "Registry", "evict", Address(worker)
        )

    def add_cluster_worker(self, cluster_id: bytes, worker: bytes, *, by: bytes) -> Outcome:
        return self._both(
            lambda: self.ledger.add_cluster_worker(cluster_id, worker, sender=by),
            by,
            "Registry",
            "add_cluster_worker",
            cluster_id,
            Address(worker),
        )

    def remove_cluster_worker(self, cluster_id: bytes, worker: bytes, *, by: bytes) -> Outcome:
        return self._both(
            lambda: self.ledger.remove_cluster_worker(cluster_id, worker, sender=by),
            by,
            "Registry",
            "remove_cluster_worker",
            cluster_id,
            Address(worker),
        )

    def deploy_contract(
        self, *, by: bytes, salt: bytes, cluster_id: bytes, code: bytes = b"x"
    ) -> tuple[Outcome, bytes]:
        contract_id = self.chain.network.contract_id_for(Address(by), salt)
        self.contract_ids.add(contract_id)
        expected, model_id = self._model(
            lambda: self.ledger.deploy_contract(
                sender=by, salt=salt, cluster_id=cluster_id, code=code, init_args=b"init"
            )
        )
        bus = self.chain.network.bus
        data = bus.encode("deploy_contract", salt, cluster_id, Address(ZERO), code, b"init")
        actual = self._chain(by, bus.address, data)
        assert expected == actual, f"deploy_contract: model {expected} != chain {actual}"
        assert model_id in (None, contract_id)
        return actual, contract_id

    def set_paused(self, contract_id: bytes, paused: bool, *, by: bytes) -> Outcome:
        return self._both(
            lambda: self.ledger.set_paused(contract_id, paused, sender=by),
            by,
            "Bus",
            "set_paused",
            contract_id,
            paused,
        )

    def upgrade_contract(self, contract_id: bytes, code: bytes, *, by: bytes) -> Outcome:
        return self._both(
            lambda: self.ledger.upgrade_contract(contract_id, code, sender=by),
            by,
            "Bus",
            "upgrade_contract",
            contract_id,
            code,
        )

    def transfer_contract(self, contract_id: bytes, new_owner: bytes, *, by: bytes) -> Outcome:
        return self._both(
            lambda: self.ledger.transfer_contract(contract_id, new_owner, sender=by),
            by,
            "Bus",
            "transfer_contract",
            contract_id,
            Address(new_owner),
        )

    def accept_contract(self, contract_id: bytes, *, by: bytes) -> Outcome:
        return self._both(
            lambda: self.ledger.accept_contract(contract_id, sender=by),
            by,
            "Bus",
            "accept_contract",
            contract_id,
        )

    def set_controller(self, contract_id: bytes, controller: bytes, *, by: bytes) -> Outcome:
        return self._both(
            lambda: self.ledger.set_controller(contract_id, controller, sender=by),
            by,
            "Bus",
            "set_controller",
            contract_id,
            Address(controller),
        )

    def set_deploy_policy(
        self, cluster_id: bytes, deployer: bytes, allowed: bool, *, by: bytes
    ) -> Outcome:
        return self._both(
            lambda: self.ledger.set_deploy_policy(cluster_id, deployer, allowed, sender=by),
            by,
            "Bus",
            "set_deploy_policy",
            cluster_id,
            Address(deployer),
            allowed,
        )

    def set_egress(self, contract_id: bytes, host: str, allowed: bool, *, by: bytes) -> Outcome:
        return self._both(
            lambda: self.ledger.set_egress(contract_id, host, allowed, sender=by),
            by,
            "Bus",
            "set_egress",
            contract_id,
            host,
            allowed,
        )

    def schedule(
        self, contract_id: bytes, consumer: Address, every: int, payload: bytes, *, by: bytes
    ) -> Outcome:
        return self._both(
            lambda: self.ledger.schedule(contract_id, consumer.raw, every, payload, sender=by),
            by,
            "Bus",
            "schedule",
            contract_id,
            consumer,
            every,
            payload,
        )

    def cancel_schedule(self, schedule_id: int, *, by: bytes) -> Outcome:
        return self._both(
            lambda: self.ledger.cancel_schedule(schedule_id, sender=by),
            by,
            "Bus",
            "cancel_schedule",
            schedule_id,
        )

    # --- Bus ---

    def push_command(self, contract_id: bytes, payload: bytes, *, by: bytes) -> Outcome:
        return self._both(
            lambda: self.ledger.push_command(contract_id, payload, sender=by),
            by,
            "Bus",
            "push_command",
            contract_id,
            payload,
        )

    def push_commands(self, contract_id: bytes, payloads: list[bytes], *, by: bytes) -> Outcome:
        return self._both(
            lambda: self.ledger.push_commands(contract_id, payloads, sender=by),
            by,
            "Bus",
            "push_commands",
            contract_id,
            payloads,
        )

    def post(
        self,
        key: SecretKey,
        egress: tuple[bytes, bytes],
        *,
        seq: int | None = None,
        signature: bytes | None = None,
    ) -> Outcome:
        """Post ``egress`` (topic, payload) signed by ``key``; a rejected effect's reason (the
        model's ``rejected`` entry) must be what ``Registry.on_egress`` reverts with."""
        egress_topic, payload = egress
        origin = key.address.raw
        number = self.ledger.next_seq.get(origin, 0) if seq is None else seq
        addresses = self.chain.network.addresses
        signed = sign_egress(
            key,
            egress_domain(addresses.chain_id, addresses.bus),
            seq=number,
            topic=egress_topic,
            payload=payload,
        )
        message = ChainEgress(
            origin=signed.origin,
            seq=number,
            topic=egress_topic,
            payload=payload,
            signature=signed.signature if signature is None else signature,
        )
        effect = self._effect_reason(origin, egress_topic, payload)
        rejected_before = len(self.ledger.rejected)
        outcome = self._both(
            lambda: self.ledger.post(
                CoreEgress(
                    origin=origin,
                    seq=number,
                    topic=egress_topic,
                    payload=payload,
                    signature=message.signature,
                )
            ),
            self.account(9).address.raw,
            "Bus",
            "post",
            message.origin,
            number,
            egress_topic,
            payload,
            message.signature,
        )
        rejected = any(isinstance(e, ev.EgressRejected) for e in outcome.events)
        unheard = rejected and not any(isinstance(e, ev.Egress) for e in outcome.events)
        if unheard:  # the Bus took the sequence and dropped the payload: the origin may not post
            assert self.ledger.rejected[-1][2] == "origin not endorsed"
            assert len(self.ledger.rejected) == rejected_before + 1
        elif rejected:
            reason = self.ledger.rejected[-1][2]
            assert len(self.ledger.rejected) == rejected_before + 1
            assert (NO_REASON if reason in MODEL_UNREASONED else reason) == effect
        elif outcome.accepted and egress_topic in ROUTED_TOPICS:
            assert effect is None
        return outcome

    def _effect_reason(self, origin: bytes, egress_topic: bytes, payload: bytes) -> str | None:
        """Why ``Registry.on_egress`` would revert for this message now (None if it would not),
        asked of the chain by calling it as the Bus does."""
        if egress_topic not in ROUTED_TOPICS:
            return None
        network = self.chain.network
        kind = network.origin_kind(Address(origin))
        target = network.bus if egress_topic in BUS_TOPICS else network.registry
        data = target.encode("on_egress", Address(origin), kind, egress_topic, payload)
        call = {
            "from": network.addresses.bus.hex,
            "to": target.address.hex,
            "data": to_hex(data),
            "gas": hex(400_000),
        }
        try:
            network.client.call("eth_call", call, self.chain.call_tag)
        except ContractReverted as exc:
            return exc.reason
        return None

    # --- the state both sides hold ---

    def check_views(self) -> None:
        """Registry and Bus views on chain equal the model's state."""
        network, ledger = self.chain.network, self.ledger
        for address in sorted(self.known):
            kind = network.view("Registry", "origin_kind", Address(address))
            assert kind == ledger.origin_kind.get(address, 0), f"origin_kind 0x{address.hex()}"
            assert network.view("Bus", "next_seq", Address(address)) == ledger.next_seq.get(
                address, 0
            )
            is_gatekeeper = network.view("Registry", "gatekeepers", Address(address))
            assert is_gatekeeper == (address in ledger.gatekeepers)
            record = ledger.workers.get(address)
            if record is None:
                continue
            view = network.view("Registry", "workers", Address(address))
            model = (
                "0x" + record.operator.hex(),
                keccak(record.hpke_key),
                record.tee_kind,
                record.measurement,
                record.confidence,
                record.quote_hash,
                record.collateral_hash,
                record.cluster or bytes(32),
            )
            assert (view[0].lower(), *view[1:]) == model, f"worker 0x{address.hex()}"
            assert network.view("Registry", "flagged", Address(address)) == ledger.flagged.get(
                address, 0
            )
            height, boot = network.view("Registry", "last_heartbeat", Address(address))
            assert (height, boot) == ledger.last_heartbeat.get(address, (0, bytes(32)))
            until = network.view("Registry", "endorsed_until", Address(address))
            assert until == ledger.endorsed_until.get(address, 0)
            diverged = network.view("Registry", "diverged_at", Address(address))
            assert diverged == ledger.diverged_at.get(address, 0)
            registration = network.view("Registry", "registration_of", Address(address))
            assert registration == ledger.workers[address].registration
            index = network.view("Registry", "encryption_index", Address(address))
            assert index == ledger.encryption_index.get(address, 0)
        assert network.view("Registry", "registration_deposit") == ledger.registration_deposit
        assert network.view("Registry", "forfeited") == ledger.forfeited
        for address in sorted(self.known | {b"\x0b" * 20}):
            held = network.view("Registry", "deposit_of", Address(address))
            assert held == ledger.deposit_of.get(address, 0), f"deposit of 0x{address.hex()}"
            refund = network.view("Registry", "refund_of", Address(address))
            assert refund == ledger.refund_of.get(address, 0), f"refund of 0x{address.hex()}"
        for cluster_id in sorted(self.cluster_ids):
            closed = network.view("Bus", "deploy_closed", cluster_id)
            assert closed == (cluster_id in ledger.deploy_closed)
            for address in sorted(self.known):
                allowed = network.view("Bus", "deployers", cluster_id, Address(address))
                assert allowed == (address in ledger.deployers.get(cluster_id, set()))
        assert network.view("Registry", "gatekeeper_count") == len(ledger.gatekeepers)
        assert network.view("Registry", "rotation_interval") == ledger.rotation_interval
        assert network.view("Registry", "master_since") == ledger.master_since
        genesis = network.view("Registry", "genesis_gatekeeper")
        assert bytes.fromhex(genesis[2:]) == ledger.genesis_gatekeeper
        master = network.view("Registry", "master_key_address")
        assert bytes.fromhex(master[2:]) == (ledger.master or ZERO)
        assert network.view("Registry", "master_key_hash") == (
            keccak(ledger.master_public_key) if ledger.master else bytes(32)
        )
        assert network.view("Registry", "rotation_counter") == ledger.rotation_counter
        assert network.view("Registry", "rotation_locked") == ledger.rotation_locked
        assert network.view("Registry", "rotation_confirmations") == ledger.rotation_confirmations
        assert network.view("Registry", "rotation_attempt") == ledger.rotation_attempt
        assert network.view("Registry", "rotation_deadline") == ledger.rotation_deadline
        assert network.view("Registry", "rotation_threshold") == ledger.rotation_threshold
        for cluster_id in sorted(self.cluster_ids):
            owner, epoch, key, key_hash, block, count = network.view(
                "Registry", "clusters", cluster_id
            )
            cluster = ledger.clusters.get(cluster_id)
            expected = (
                (ZERO, 0, ZERO, bytes(32), 0, 0)
                if cluster is None
                else (
                    cluster.owner,
                    cluster.key_epoch,
                    cluster.key_address,
                    keccak(cluster.public_key) if cluster.key_epoch else bytes(32),
                    cluster.key_block,
                    len(cluster.members),
                )
            )
            actual = (
                bytes.fromhex(owner[2:]),
                epoch,
                bytes.fromhex(key[2:]),
                key_hash,
                block,
                count,
            )
            assert actual == expected, f"cluster {cluster_id.hex()}"
        for (cluster_id, height), posted in sorted(ledger.commitments.items()):
            verdict = network.view("Registry", "commitment_verdict", cluster_id, height)
            assert verdict == ledger.verdicts.get((cluster_id, height), bytes(32))
            for member, value in posted.items():
                assert (
                    network.view("Registry", "commitment_of", cluster_id, height, Address(member))
                    == value
                )
        for contract_id in sorted(self.contract_ids):
            pending = network.view("Bus", "pending_contract_owner", contract_id)
            assert bytes.fromhex(pending[2:]) == ledger.pending_contract_owner.get(
                contract_id, ZERO
            )
            view = network.view("Bus", "contracts", contract_id)
            contract = ledger.contracts.get(contract_id)
            assert network.view("Bus", "command_seq", contract_id) == ledger.command_seq.get(
                contract_id, 0
            )
            if contract is None:
                assert bytes.fromhex(view[2][2:]) == ZERO
                continue
            actual_contract = (
                view[0],
                view[1],
                bytes.fromhex(view[2][2:]),
                bytes.fromhex(view[3][2:]),
                view[4],
                bytes.fromhex(view[5][2:]),
                view[6],
                view[7],
                view[8],
            )
            assert actual_contract == (
                contract.cluster,
                contract.code_hash,
                contract.owner,
                contract.controller,
                contract.key_epoch,
                contract.key_address,
                keccak(contract.public_key) if contract.key_epoch else bytes(32),
                contract.key_block,
                contract.paused,
            ), f"contract {contract_id.hex()}"


@pytest.fixture
def twin(chain: Chain) -> Iterator[Twin]:
    twin = Twin(chain)
    yield twin
    twin.check_views()
    assert chain.backend.revert(chain.genesis)
    chain.genesis = chain.backend.snapshot()


def _accepted(outcome: Outcome, *events: type[ev.ChainEvent]) -> None:
    assert outcome.accepted, outcome.reason
    assert tuple(type(e) for e in outcome.events) == events


def _unheard(outcome: Outcome) -> None:
    """The Bus used the sequence number but dropped the payload: a worker identity the
    Registry does not let post (``origin not endorsed``)."""
    _accepted(outcome, ev.EgressRejected)


def _reverted(outcome: Outcome, reason: str) -> None:
    assert not outcome.accepted and outcome.reason == reason, outcome


def _rejected(outcome: Outcome) -> None:
    _accepted(outcome, ev.Egress, ev.EgressRejected)


def _proof(twin: Twin, key: SecretKey, gatekeeper: SecretKey) -> bytes:
    """``key``'s possession proof for the current attempt, made out to ``gatekeeper``."""
    addresses = twin.chain.network.addresses
    return prove_possession(
        key,
        chain_id=addresses.chain_id,
        registry=addresses.registry.raw,
        attempt=twin.ledger.rotation_attempt,
        gatekeeper=gatekeeper.address.raw,
    )


def _propose(
    twin: Twin,
    gatekeeper: SecretKey,
    rotation: int,
    key: SecretKey,
    public: bytes,
    *,
    prover: SecretKey | None = None,
) -> tuple[bytes, bytes]:
    proof = _proof(twin, prover or key, gatekeeper)
    return encode_rotation_propose(rotation, key.address, public, proof)


def _confirm(
    twin: Twin, gatekeeper: SecretKey, rotation: int, key: SecretKey, public: bytes
) -> tuple[bytes, bytes]:
    return encode_rotation_confirm(rotation, key.address, public, _proof(twin, key, gatekeeper))


def _genesis(twin: Twin, *workers: str) -> tuple[SecretKey, list[bytes]]:
    """Measurement allowed, a gatekeeper ("gk") with the master key, ``workers`` registered
    and endorsed at confidence 1. Returns the master key and the worker addresses."""
    twin.set_measurement(MEASUREMENT, True, by=twin.admin)
    gatekeeper = twin.worker("gk")
    twin.register(gatekeeper)
    twin.add_gatekeeper(gatekeeper, by=twin.admin)
    master = twin.enclave_key("master-0")
    _accepted(
        twin.post(secret("gk"), encode_master_key(master.address, b"master-public")),
        ev.Egress,
        ev.MasterKeySet,
    )
    addresses = []
    for name in workers:
        address = twin.worker(name)
        twin.register(address)
        quote_hash = twin.ledger.workers[address].registration
        twin.post(master, encode_endorse(Address(address), 1, quote_hash, FAR))
        addresses.append(address)
    return master, addresses


# --- scripted scenarios ------------------------------------------------------------------------


def test_registration_gatekeepers_and_master_key(twin: Twin) -> None:
    stranger = twin.user(1)
    _reverted(
        twin.set_measurement(MEASUREMENT, True, by=stranger), "ownable: caller is not the owner"
    )
    _accepted(twin.set_measurement(MEASUREMENT, True, by=twin.admin), ev.MeasurementSet)
    gk, w1 = twin.worker("gk"), twin.worker("w1")
    _reverted(twin.register(gk, measurement=OTHER_MEASUREMENT), "measurement not allowed")
    _reverted(twin.register(gk, hpke_key=b""), "empty key")
    _reverted(twin.register(gk, quote=b"q" * 8193), NO_REASON)
    _reverted(twin.register(gk, api_url="https://" + "a" * 249), NO_REASON)  # 257 bytes
    _accepted(twin.register(gk), ev.WorkerRegistered)
    _accepted(twin.register(w1), ev.WorkerRegistered)
    _reverted(twin.add_gatekeeper(gk, by=stranger), "ownable: caller is not the owner")
    _reverted(twin.add_gatekeeper(stranger, by=twin.admin), "not a registered worker")
    _accepted(twin.add_gatekeeper(gk, by=twin.admin), ev.GatekeeperAdded)
    _reverted(twin.add_gatekeeper(gk, by=twin.admin), "already a gatekeeper")
    _reverted(twin.remove_gatekeeper(w1, by=twin.admin), "not a gatekeeper")

    master = twin.enclave_key("master-0")
    # a worker identity nobody endorsed posts nothing (only the genesis gatekeeper, before
    # its first verdict, may: it posts the first master key)
    _unheard(twin.post(secret("w1"), encode_master_key(master.address, b"pk")))
    # a key address already used as an origin cannot become the master key
    _rejected(twin.post(secret("gk"), encode_master_key(Address(w1), b"pk")))
    _accepted(
        twin.post(secret("gk"), encode_master_key(master.address, b"master-public")),
        ev.Egress,
        ev.MasterKeySet,
    )
    other = twin.enclave_key("master-x")
    _rejected(twin.post(secret("gk"), encode_master_key(other.address, b"pk")))
    _reverted(twin.register(twin.worker("master-0")), "origin in use")

    quote_hash = twin.ledger.workers[w1].registration
    _rejected(twin.post(secret("gk"), encode_endorse(Address(w1), 1, quote_hash, FAR)))
    _rejected(twin.post(master, encode_endorse(Address(stranger), 1, quote_hash, FAR)))
    _rejected(twin.post(master, encode_endorse(Address(w1), 1, b"\x01" * 32, FAR)))
    _rejected(twin.post(master, encode_endorse(Address(w1), 6, quote_hash, FAR)))
    _accepted(
        twin.post(master, encode_endorse(Address(w1), 5, quote_hash, FAR)),
        ev.Egress,
        ev.WorkerEndorsed,
    )
    # a new quote resets the endorsement
    _accepted(
        twin.register(w1, quote=b"quote-2", api_url="http://10.0.0.2:8080"), ev.WorkerRegistered
    )
    assert twin.ledger.workers[w1].confidence == 0
    _rejected(twin.post(master, encode_endorse(Address(w1), 1, quote_hash, FAR)))
    # the auditor's capture: the same quote registered again with another key before the
    # verdict lands. The verdict names the registration it judged, so it endorses nothing now
    judged = twin.ledger.workers[w1].registration
    _accepted(twin.register(w1, quote=b"quote-2", hpke_key=b"\x66" * 32), ev.WorkerRegistered)
    assert twin.ledger.workers[w1].quote_hash == keccak(b"quote-2")
    _rejected(twin.post(master, encode_endorse(Address(w1), 1, judged, FAR)))
    assert twin.ledger.rejected[-1][2] == "stale registration"
    assert twin.ledger.workers[w1].confidence == 0
    _accepted(twin.remove_gatekeeper(gk, by=twin.admin), ev.GatekeeperRemoved)


def test_a_registration_binds_one_of_the_last_256_blocks(twin: Twin) -> None:
    """The quote's report data binds the hash of `attested_block`; the Registry takes only a
    block it can still hash (the last 256) and puts that hash in the event for the judges."""
    twin.set_measurement(MEASUREMENT, True, by=twin.admin)
    w1 = twin.worker("w1")
    head = twin.head()
    _reverted(twin.register(w1, attested_block=head + 1), "future attestation")
    outcome = twin.register(w1, attested_block=head)
    _accepted(outcome, ev.WorkerRegistered)
    event = outcome.events[0]
    assert isinstance(event, ev.WorkerRegistered)
    assert (event.attested_block, event.attested_hash) == (head, twin.block_hash(head))
    twin.chain.backend.mine(ATTESTATION_WINDOW)
    _reverted(twin.register(w1, attested_block=head), "stale attestation")
    _reverted(twin.reattest(w1, quote=b"fresh", attested_block=head), "stale attestation")
    _accepted(
        twin.register(w1, attested_block=twin.head() - ATTESTATION_WINDOW + 1), ev.WorkerRegistered
    )


def test_reregistration_leaves_the_cluster(twin: Twin) -> None:
    """A re-registration starts from nothing: out of its cluster (on chain and so in every
    core), not endorsed, and only an endorsement of the new registration lets it back in."""
    master, (w1,) = _genesis(twin, "w1")
    c1, c2 = b"\xc1" * 32, b"\xc2" * 32
    twin.create_cluster(c1, twin.admin, by=twin.admin)
    twin.create_cluster(c2, twin.admin, by=twin.admin)
    _accepted(twin.add_cluster_worker(c1, w1, by=twin.admin), ev.ClusterWorkerAdded)
    _accepted(twin.register(w1, quote=b"quote-2"), ev.ClusterWorkerRemoved, ev.WorkerRegistered)
    assert twin.ledger.workers[w1].cluster is None
    assert w1 not in twin.ledger.clusters[c1].members
    _reverted(twin.remove_cluster_worker(c1, w1, by=twin.admin), "not a member")
    _reverted(twin.add_cluster_worker(c1, w1, by=twin.admin), "worker not endorsed")
    twin.post(master, encode_endorse(Address(w1), 1, twin.ledger.workers[w1].registration, FAR))
    _accepted(twin.add_cluster_worker(c2, w1, by=twin.admin), ev.ClusterWorkerAdded)
    _accepted(twin.register(w1, quote=b"quote-3"), ev.ClusterWorkerRemoved, ev.WorkerRegistered)
    _accepted(twin.register(w1, quote=b"quote-4"), ev.WorkerRegistered)  # in no cluster now


def test_endorsements_expire_and_reattestation_keeps_the_cluster(twin: Twin) -> None:
    """An endorsement holds until its `valid_until` (block time): past it the worker is not
    endorsed (no cluster, no gatekeeper role, no commitment). A re-attestation posts a fresh
    quote and keeps endorsement and cluster until the verdict on it lands."""
    master, (w1, w2) = _genesis(twin, "w1", "w2")
    c1 = b"\xc1" * 32
    twin.create_cluster(c1, twin.admin, by=twin.admin)
    _accepted(twin.add_cluster_worker(c1, w1, by=twin.admin), ev.ClusterWorkerAdded)
    # w2's endorsement lapsed long ago (valid until second 1)
    quote_hash = twin.ledger.workers[w2].registration
    _accepted(
        twin.post(master, encode_endorse(Address(w2), 1, quote_hash, 1)),
        ev.Egress,
        ev.WorkerEndorsed,
    )
    assert twin.ledger.endorsed_until[w2] == 1
    _reverted(twin.add_cluster_worker(c1, w2, by=twin.admin), "worker not endorsed")
    _reverted(twin.add_gatekeeper(w2, by=twin.admin), "gatekeeper not endorsed")
    # a refusal (confidence 0) records no expiry at all
    _accepted(
        twin.post(master, encode_endorse(Address(w2), 0, quote_hash, FAR)),
        ev.Egress,
        ev.WorkerEndorsed,
    )
    assert twin.ledger.endorsed_until[w2] == 0
    # re-attestation: only a registered, unflagged worker whose measurement is still allowed
    _reverted(twin.reattest(twin.user(3), quote=b"fresh"), "not a registered worker")
    _accepted(twin.reattest(w1, quote=b"fresh"), ev.WorkerReattested)
    record = twin.ledger.workers[w1]
    assert record.quote_hash == keccak(b"fresh") and record.cluster == c1
    assert record.confidence == 1 and twin.ledger.endorsed_until[w1] == FAR
    # an endorsement of the registration before no longer lands; one of the fresh one does
    _rejected(twin.post(master, encode_endorse(Address(w1), 2, quote_hash, FAR)))
    assert twin.ledger.rejected[-1][2] == "stale registration"
    _accepted(
        twin.post(master, encode_endorse(Address(w1), 2, record.registration, FAR + 1)),
        ev.Egress,
        ev.WorkerEndorsed,
    )
    twin.set_measurement(MEASUREMENT, False, by=twin.admin)
    _reverted(twin.reattest(w1, quote=b"fresher"), "measurement not allowed")
    twin.check_views()


def test_cluster_rules(twin: Twin) -> None:
    _, (w1, w2) = _genesis(twin, "w1", "w2")
    owner, stranger = twin.user(1), twin.user(2)
    c1 = b"\xc1" * 32
    _reverted(twin.create_cluster(c1, owner, by=stranger), "ownable: caller is not the owner")
    _reverted(twin.create_cluster(c1, ZERO, by=twin.admin), "zero address")
    for suite in (0, 3):
        _reverted(twin.create_cluster(c1, owner, by=twin.admin, suite=suite), "unknown suite")
    _accepted(twin.create_cluster(c1, owner, by=twin.admin), ev.ClusterCreated)
    _reverted(twin.create_cluster(c1, owner, by=twin.admin), "cluster exists")
    _reverted(twin.add_cluster_worker(c1, w1, by=twin.admin), "not cluster owner")
    _reverted(twin.add_cluster_worker(b"\xee" * 32, w1, by=owner), "not cluster owner")
    _reverted(twin.add_cluster_worker(c1, twin.worker("gk"), by=owner), "worker not endorsed")
    _reverted(twin.add_cluster_worker(c1, stranger, by=owner), "worker not endorsed")
    _accepted(twin.add_cluster_worker(c1, w1, by=owner), ev.ClusterWorkerAdded)
    _reverted(twin.add_cluster_worker(c1, w1, by=owner), "worker in a cluster")
    _reverted(twin.remove_cluster_worker(c1, w2, by=owner), "not a member")
    _reverted(twin.remove_cluster_worker(c1, w1, by=stranger), "not cluster owner")
    _accepted(twin.remove_cluster_worker(c1, w1, by=owner), ev.ClusterWorkerRemoved)
    _accepted(twin.add_cluster_worker(c1, w2, by=owner), ev.ClusterWorkerAdded)


def test_registration_deposits_are_refunded_on_endorsement_and_forfeited_on_refusal(
    twin: Twin,
) -> None:
    """Junk quotes cost their sender: governance sets a deposit every registration and
    re-attestation pays; an endorsement refunds it to the operator, a refusal forfeits it, and
    a registration nobody judges within the window gets it back."""
    master, (w1,) = _genesis(twin, "w1")
    operator = b"\x0b" * 20
    stranger = twin.user(1)
    _reverted(twin.set_registration_deposit(10, by=stranger), "ownable: caller is not the owner")
    _accepted(twin.set_registration_deposit(10, by=twin.admin))
    w2, w3 = twin.worker("w2"), twin.worker("w3")
    _reverted(twin.register(w2, deposit=9), "deposit too low")
    _accepted(twin.register(w2, deposit=12), ev.WorkerRegistered)
    _accepted(twin.register(w3, deposit=10), ev.WorkerRegistered)
    assert twin.ledger.deposit_of == {w2: 12, w3: 10}
    # endorsed: back to the operator (to claim); refused: forfeited to governance
    twin.post(master, encode_endorse(Address(w2), 1, twin.ledger.workers[w2].registration, FAR))
    twin.post(master, encode_endorse(Address(w3), 0, twin.ledger.workers[w3].registration, FAR))
    assert twin.ledger.refund_of == {operator: 12} and twin.ledger.forfeited == 10
    assert twin.ledger.deposit_of == {}
    _reverted(twin.withdraw_forfeited(stranger, by=stranger), "ownable: caller is not the owner")
    _reverted(twin.withdraw_forfeited(ZERO, by=twin.admin), "zero address")
    _accepted(twin.withdraw_forfeited(stranger, by=twin.admin))
    assert twin.ledger.forfeited == 0
    # a re-attestation pays too; a stranger has nothing to claim
    _reverted(twin.reattest(w1, quote=b"fresh"), "deposit too low")
    _reverted(twin.claim_refund(by=stranger), "nothing to claim")
    # nobody judges w3's new registration: past the window anyone hands it back
    _accepted(twin.register(w3, deposit=10), ev.WorkerRegistered)
    _reverted(twin.reclaim_deposit(w3, by=stranger), "deposit not expired")
    _reverted(twin.reclaim_deposit(w1, by=stranger), "no deposit")
    if not isinstance(twin.chain.backend, EmbeddedChain):
        twin.check_views()
        return  # anvil takes minutes to mine 7,200 blocks; the embedded chain, seconds
    twin.chain.backend.mine(DEPOSIT_WINDOW)
    _accepted(twin.reclaim_deposit(w3, by=stranger))
    assert twin.ledger.refund_of == {operator: 22} and twin.ledger.deposit_of == {}
    _reverted(twin.reclaim_deposit(w3, by=stranger), "no deposit")
    twin.check_views()


def test_clusters_choose_who_deploys(twin: Twin) -> None:
    """A cluster owner opens its cluster to anyone (the default), or closes it to all but
    itself and the deployers it allows."""
    _genesis(twin)
    c1, owner, user = b"\xc1" * 32, twin.user(1), twin.user(2)
    twin.create_cluster(c1, owner, by=twin.admin)
    _reverted(twin.set_deploy_policy(b"\xc9" * 32, ZERO, False, by=owner), "unknown cluster")
    _reverted(twin.set_deploy_policy(c1, ZERO, False, by=user), "not cluster owner")
    _accepted(
        twin.deploy_contract(by=user, salt=b"\x01" * 32, cluster_id=c1)[0], ev.ContractDeployed
    )
    _accepted(twin.set_deploy_policy(c1, ZERO, False, by=owner))
    _reverted(
        twin.deploy_contract(by=user, salt=b"\x02" * 32, cluster_id=c1)[0], "deploy not allowed"
    )
    _accepted(
        twin.deploy_contract(by=owner, salt=b"\x02" * 32, cluster_id=c1)[0], ev.ContractDeployed
    )
    _accepted(twin.set_deploy_policy(c1, user, True, by=owner))
    _accepted(
        twin.deploy_contract(by=user, salt=b"\x03" * 32, cluster_id=c1)[0], ev.ContractDeployed
    )
    _accepted(twin.set_deploy_policy(c1, user, False, by=owner))
    _reverted(
        twin.deploy_contract(by=user, salt=b"\x04" * 32, cluster_id=c1)[0], "deploy not allowed"
    )
    _accepted(twin.set_deploy_policy(c1, ZERO, True, by=owner))
    _accepted(
        twin.deploy_contract(by=user, salt=b"\x04" * 32, cluster_id=c1)[0], ev.ContractDeployed
    )
    _reverted(
        twin.deploy_contract(by=user, salt=b"\x05" * 32, cluster_id=b"\xc9" * 32)[0],
        "unknown cluster",
    )
    twin.check_views()


def test_cluster_and_contract_keys(twin: Twin) -> None:
    master, (w1,) = _genesis(twin, "w1")
    c1 = b"\xc1" * 32
    twin.create_cluster(c1, twin.admin, by=twin.admin)
    twin.add_cluster_worker(c1, w1, by=twin.admin)
    deployed, contract_id = twin.deploy_contract(by=twin.user(1), salt=b"\x01" * 32, cluster_id=c1)
    _accepted(deployed, ev.ContractDeployed)
    k1, k2 = twin.enclave_key("cluster-1"), twin.enclave_key("cluster-2")
    ck1, ck2 = twin.enclave_key("contract-1"), twin.enclave_key("contract-2")

    _rejected(twin.post(secret("w1"), encode_cluster_key(c1, 1, k1.address, b"k1")))
    _rejected(twin.post(master, encode_cluster_key(b"\xee" * 32, 1, k1.address, b"k1")))
    _rejected(twin.post(master, encode_cluster_key(c1, 1, Address(w1), b"k1")))
    _rejected(twin.post(master, encode_cluster_key(c1, 1, k1.address, b"\x01" * 1217)))
    # the zero address can hold no role: no signature recovers to it, the cluster would be dead
    _rejected(twin.post(master, encode_cluster_key(c1, 1, Address(ZERO), b"k1")))
    assert twin.ledger.rejected[-1][2] == "zero address"
    _accepted(
        twin.post(master, encode_cluster_key(c1, 1, k1.address, b"k1")),
        ev.Egress,
        ev.ClusterKeySet,
    )
    _rejected(twin.post(master, encode_cluster_key(c1, 1, k2.address, b"k2")))

    _rejected(twin.post(master, encode_contract_key(contract_id, 1, ck1.address, b"c1")))
    _rejected(twin.post(k1, encode_contract_key(b"\xee" * 32, 1, ck1.address, b"c1")))
    _rejected(twin.post(k1, encode_contract_key(contract_id, 2, ck1.address, b"c1")))
    _rejected(twin.post(k1, encode_contract_key(contract_id, 1, k1.address, b"c1")))
    _accepted(
        twin.post(k1, encode_contract_key(contract_id, 1, ck1.address, b"c1")),
        ev.Egress,
        ev.ContractKeySet,
    )
    _rejected(twin.post(k1, encode_contract_key(contract_id, 1, ck2.address, b"c2")))
    _accepted(
        twin.post(master, encode_cluster_key(c1, 2, k2.address, b"k2")),
        ev.Egress,
        ev.ClusterKeySet,
    )
    # the old cluster key is still an origin, but no longer the cluster's key
    _rejected(twin.post(k1, encode_contract_key(contract_id, 2, ck2.address, b"c2")))
    _accepted(
        twin.post(k2, encode_contract_key(contract_id, 2, ck2.address, b"c2")),
        ev.Egress,
        ev.ContractKeySet,
    )
    # a contract key is an origin too, with no routed powers
    _rejected(twin.post(ck2, encode_endorse(Address(w1), 1, b"\x00" * 32, FAR)))
    _accepted(twin.post(ck2, (PLAIN, b"root")), ev.Egress)


def _two_keyed_clusters(
    twin: Twin,
) -> tuple[SecretKey, bytes, bytes, bytes, SecretKey, SecretKey]:
    """Genesis, clusters c1 and c2 keyed at epoch 1 by the master key, an agent of one owner in
    each: (master, owner, agent in c1, agent in c2, c1's key, c2's key)."""
    master, _ = _genesis(twin, "w1")
    c1, c2 = b"\xc1" * 32, b"\xc2" * 32
    for cluster in (c1, c2):
        twin.create_cluster(cluster, twin.admin, by=twin.admin)
    owner = twin.user(1)
    agent = twin.deploy_contract(by=owner, salt=b"\x01" * 32, cluster_id=c1)[1]
    other = twin.deploy_contract(by=owner, salt=b"\x02" * 32, cluster_id=c2)[1]
    k1, k2 = twin.enclave_key("cluster-1"), twin.enclave_key("cluster-2")
    for cluster, key in ((c1, k1), (c2, k2)):
        _accepted(
            twin.post(master, encode_cluster_key(cluster, 1, key.address, b"k")),
            ev.Egress,
            ev.ClusterKeySet,
        )
    return master, owner, agent, other, k1, k2


def test_agents_set_their_own_jobs_through_their_cluster_key(twin: Twin) -> None:
    """``TOPIC_AGENT_SCHEDULE``: only the agent's cluster's current key sets or ends its
    standing jobs, and only its own; every refusal still uses the sequence number."""
    master, owner, agent, stranger, k1, k2 = _two_keyed_clusters(twin)
    consumer = Address(twin.user(5))
    job = encode_agent_schedule(agent, consumer=consumer, every=3, payload=b"{}")
    _rejected(twin.post(secret("w1"), job))  # a worker identity: wrong origin
    _rejected(twin.post(master, job))
    _rejected(twin.post(k2, job))  # another cluster's key
    _rejected(twin.post(k1, encode_agent_schedule(b"\xee" * 32, consumer=consumer, every=3)))
    _rejected(twin.post(k1, encode_agent_schedule(agent, consumer=consumer, every=0)))
    _rejected(twin.post(k1, encode_agent_schedule(agent, every=3)))  # zero consumer
    _accepted(twin.post(k1, job), ev.Egress, ev.JobScheduled)
    _accepted(
        twin.post(k2, encode_agent_schedule(stranger, consumer=consumer, every=2)),
        ev.Egress,
        ev.JobScheduled,
    )
    _rejected(twin.post(k1, encode_agent_schedule(agent, cancel_id=2)))  # not its own
    _rejected(twin.post(k1, encode_agent_schedule(agent, cancel_id=9)))  # no such schedule
    _accepted(
        twin.post(k1, encode_agent_schedule(agent, cancel_id=1)), ev.Egress, ev.ScheduleCancelled
    )
    _rejected(twin.post(k1, encode_agent_schedule(agent, cancel_id=1)))  # already ended
    # the owner's own calls and the agent's share one numbering
    _accepted(twin.schedule(agent, consumer, 4, b"x", by=owner), ev.JobScheduled)
    _reverted(twin.cancel_schedule(3, by=twin.user(2)), "not owner")
    _accepted(twin.cancel_schedule(3, by=owner), ev.ScheduleCancelled)


def test_a_failed_init_pauses_its_agent_through_its_cluster_key(twin: Twin) -> None:
    """``TOPIC_INIT_FAILED``: only the agent's cluster's current key reports a failed init,
    with an error code of at most 64 bytes; the agent is paused then, and its owner may resume
    it. Every refusal still uses the sequence number."""
    master, owner, agent, _, k1, k2 = _two_keyed_clusters(twin)
    report = encode_init_failed(agent, "sandbox_agent_error")
    _rejected(twin.post(secret("w1"), report))  # a worker identity: wrong origin
    _rejected(twin.post(master, report))
    _rejected(twin.post(k2, report))  # another cluster's key
    _rejected(twin.post(k1, encode_init_failed(b"\xee" * 32, "x")))  # no such agent
    _rejected(twin.post(k1, encode_init_failed(agent, "x" * 65)))  # code too long
    _accepted(twin.post(k1, report), ev.Egress, ev.ContractPaused)
    _reverted(twin.push_command(agent, b"c", by=owner), "contract paused")
    _accepted(twin.set_paused(agent, False, by=owner), ev.ContractPaused)


def test_contract_and_command_rules(twin: Twin) -> None:
    owner, controller, stranger = twin.user(1), twin.user(2), twin.user(3)
    c1 = b"\xc1" * 32
    unknown = twin.deploy_contract(by=owner, salt=b"\x01" * 32, cluster_id=c1)[0]
    _reverted(unknown, "unknown cluster")
    twin.create_cluster(c1, twin.admin, by=twin.admin)
    deployed, contract_id = twin.deploy_contract(by=owner, salt=b"\x01" * 32, cluster_id=c1)
    _accepted(deployed, ev.ContractDeployed)
    _reverted(
        twin.deploy_contract(by=owner, salt=b"\x01" * 32, cluster_id=c1)[0], "contract exists"
    )
    _reverted(
        twin.deploy_contract(by=owner, salt=b"\x02" * 32, cluster_id=c1, code=b"x" * 24577)[0],
        NO_REASON,
    )
    missing = b"\xee" * 32
    _reverted(twin.push_command(missing, b"c", by=stranger), "unknown contract")
    _reverted(twin.set_paused(missing, True, by=owner), "unknown contract")
    _accepted(twin.push_command(contract_id, b"c0", by=stranger), ev.Command)
    _accepted(twin.push_command(contract_id, b"c1", by=owner), ev.Command)
    too_big = b"\x00" * (MAX_PAYLOAD + 1)
    _reverted(twin.push_command(contract_id, too_big, by=owner), "payload too big")
    beyond_bound = b"\x00" * (MAX_PAYLOAD_BOUND + 1)
    _reverted(twin.push_command(contract_id, beyond_bound, by=owner), NO_REASON)
    _reverted(twin.set_paused(contract_id, True, by=stranger), "not owner or controller")
    _accepted(twin.set_paused(contract_id, True, by=owner), ev.ContractPaused)
    _reverted(twin.push_command(contract_id, b"c2", by=owner), "contract paused")
    _reverted(twin.set_controller(contract_id, controller, by=stranger), "not owner")
    _accepted(twin.set_controller(contract_id, controller, by=owner), ev.ContractControllerChanged)
    _accepted(twin.set_paused(contract_id, False, by=controller), ev.ContractPaused)
    _accepted(twin.push_command(contract_id, b"c2", by=owner), ev.Command)
    _accepted(twin.upgrade_contract(contract_id, b"y", by=controller), ev.ContractUpgraded)
    # the controller operates the contract but can neither hand it over nor replace itself
    _reverted(twin.set_controller(contract_id, stranger, by=controller), "not owner")
    _reverted(twin.transfer_contract(contract_id, controller, by=controller), "not owner")
    # a transfer takes two steps: the owner's offer, then the new owner's acceptance
    _reverted(twin.accept_contract(contract_id, by=stranger), "not pending owner")
    _accepted(twin.transfer_contract(contract_id, stranger, by=owner))
    assert twin.ledger.contracts[contract_id].owner == owner
    _reverted(twin.accept_contract(contract_id, by=controller), "not pending owner")
    _accepted(twin.transfer_contract(contract_id, ZERO, by=owner))  # withdrawn
    _reverted(twin.accept_contract(contract_id, by=stranger), "not pending owner")
    _accepted(twin.transfer_contract(contract_id, stranger, by=owner))
    _accepted(twin.accept_contract(contract_id, by=stranger), ev.ContractOwnerChanged)
    _reverted(twin.accept_contract(contract_id, by=stranger), "not pending owner")
    _reverted(twin.transfer_contract(contract_id, owner, by=owner), "not owner")
    _reverted(twin.upgrade_contract(contract_id, b"z", by=owner), "not owner or controller")
    _accepted(twin.upgrade_contract(contract_id, b"z", by=stranger), ev.ContractUpgraded)


def test_batched_commands(twin: Twin) -> None:
    """``push_commands``: consecutive seqs in the batch's order, shared with ``push_command``;
    its bounds (count, each payload's size) and the single command's rules, all or none."""
    owner, stranger = twin.user(1), twin.user(3)
    c1 = b"\xc1" * 32
    twin.create_cluster(c1, twin.admin, by=twin.admin)
    contract_id = twin.deploy_contract(by=owner, salt=b"\x01" * 32, cluster_id=c1)[1]
    _reverted(twin.push_commands(b"\xee" * 32, [b"c"], by=stranger), "unknown contract")
    _reverted(twin.push_commands(contract_id, [], by=stranger), "no commands")
    _accepted(twin.push_command(contract_id, b"c0", by=owner), ev.Command)
    batch = twin.push_commands(contract_id, [b"c1", b"", b"c3"], by=stranger)
    _accepted(batch, ev.Command, ev.Command, ev.Command)
    assert [e.seq for e in batch.events if isinstance(e, ev.Command)] == [1, 2, 3]
    full = [bytes([i]) * MAX_BATCHED_PAYLOAD for i in range(MAX_COMMAND_BATCH)]
    _accepted(twin.push_commands(contract_id, full, by=owner), *[ev.Command] * MAX_COMMAND_BATCH)
    _reverted(twin.push_commands(contract_id, [*full, b"x"], by=owner), NO_REASON)
    oversized = [b"c", b"\x00" * (MAX_BATCHED_PAYLOAD + 1)]
    _reverted(twin.push_commands(contract_id, oversized, by=owner), NO_REASON)
    _accepted(twin.set_paused(contract_id, True, by=owner), ev.ContractPaused)
    _reverted(twin.push_commands(contract_id, [b"c"], by=owner), "contract paused")
    _accepted(twin.set_paused(contract_id, False, by=owner), ev.ContractPaused)
    after = twin.push_commands(contract_id, [b"c"], by=owner)
    _accepted(after, ev.Command)
    assert [e.seq for e in after.events if isinstance(e, ev.Command)] == [4 + MAX_COMMAND_BATCH]


def test_agent_egress_allowlists(twin: Twin) -> None:
    """Only the agent's owner edits its ``http.fetch`` allowlist (not its controller); a
    repeated edit changes nothing and logs nothing; at most 16 names."""
    owner, controller, stranger = twin.user(1), twin.user(2), twin.user(3)
    c1 = b"\xc1" * 32
    twin.create_cluster(c1, twin.admin, by=twin.admin)
    contract_id = twin.deploy_contract(by=owner, salt=b"\x01" * 32, cluster_id=c1)[1]
    _accepted(twin.set_controller(contract_id, controller, by=owner), ev.ContractControllerChanged)
    _reverted(twin.set_egress(b"\xee" * 32, "a.example", True, by=owner), "not owner")
    _reverted(twin.set_egress(contract_id, "a.example", True, by=controller), "not owner")
    _reverted(twin.set_egress(contract_id, "a.example", True, by=stranger), "not owner")
    _reverted(twin.set_egress(contract_id, "", True, by=owner), "empty host")
    _reverted(twin.set_egress(contract_id, "a" * (MAX_HOST_NAME + 1), True, by=owner), NO_REASON)
    _accepted(twin.set_egress(contract_id, "a.example", True, by=owner), ev.EgressHostSet)
    _accepted(twin.set_egress(contract_id, "a.example", True, by=owner))  # no change, no log
    _accepted(twin.set_egress(contract_id, "a.example", False, by=owner), ev.EgressHostSet)
    _accepted(twin.set_egress(contract_id, "a.example", False, by=owner))
    for n in range(MAX_EGRESS_HOSTS):
        _accepted(twin.set_egress(contract_id, f"h{n}.example", True, by=owner), ev.EgressHostSet)
    _reverted(twin.set_egress(contract_id, "one-more.example", True, by=owner), "too many hosts")
    _accepted(twin.set_egress(contract_id, "h0.example", False, by=owner), ev.EgressHostSet)
    _accepted(twin.set_egress(contract_id, "one-more.example", True, by=owner), ev.EgressHostSet)


def test_bus_post_rules(twin: Twin) -> None:
    master, (w1,) = _genesis(twin, "w1")
    key, other = secret("w1"), secret("w2")
    _reverted(twin.post(other, (PLAIN, b"a")), "unknown origin")
    # a registered identity nobody endorsed is heard only for its collateral (which the
    # gatekeepers need to judge it): anything else uses its sequence number, and goes nowhere
    w2 = twin.worker("w2")
    twin.register(w2)
    _unheard(twin.post(other, (PLAIN, b"a")))
    _accepted(twin.post(other, (TOPIC_COLLATERAL, b"collateral")), ev.Egress)
    registration = twin.ledger.workers[w2].registration
    twin.post(master, encode_endorse(Address(w2), 1, registration, FAR))
    _accepted(twin.post(other, (PLAIN, b"a")), ev.Egress)
    # ... and it is no longer heard once its measurement is revoked (it is no longer eligible)
    twin.set_measurement(MEASUREMENT, False, by=twin.admin)
    _unheard(twin.post(other, (PLAIN, b"b")))
    twin.set_measurement(MEASUREMENT, True, by=twin.admin)
    assert twin.ledger.next_seq[w2] == 4
    _reverted(twin.post(key, (PLAIN, b"a"), seq=1), "sequence gap")
    forged = sign_egress(
        other,
        egress_domain(twin.ledger.chain_id, Address(twin.ledger.bus)),
        seq=0,
        topic=PLAIN,
        payload=b"a",
    ).signature
    _reverted(twin.post(key, (PLAIN, b"a"), signature=forged), "wrong signer")
    good = sign_egress(
        key,
        egress_domain(twin.ledger.chain_id, Address(twin.ledger.bus)),
        seq=0,
        topic=PLAIN,
        payload=b"a",
    ).signature
    high_s = good[:32] + (SECP256K1_N - int.from_bytes(good[32:64], "big")).to_bytes(32, "big")
    _reverted(
        twin.post(key, (PLAIN, b"a"), signature=high_s + bytes([good[64] ^ 1])), "bad signature"
    )
    _reverted(twin.post(key, (PLAIN, b"a"), signature=good[:64] + b"\x1d"), "bad signature")
    _reverted(twin.post(key, (PLAIN, b"a"), signature=good[:64]), "bad signature")
    _reverted(twin.post(key, (PLAIN, b"a"), signature=b"\x00" * 64 + b"\x1b"), "wrong signer")
    _reverted(twin.post(key, (PLAIN, b"\x00" * (MAX_PAYLOAD + 1))), "payload too big")
    _accepted(twin.post(key, (PLAIN, b"a")), ev.Egress)
    _reverted(twin.post(key, (PLAIN, b"a"), seq=0), "sequence already used")
    # a rejected effect still consumes the sequence number
    _rejected(twin.post(key, encode_endorse(Address(w1), 1, b"\x00" * 32, FAR)))
    _rejected(twin.post(key, (encode_endorse(Address(w1), 1, b"", FAR)[0], b"\x01\x02")))
    _accepted(twin.post(key, (PLAIN, b"b")), ev.Egress)
    assert twin.ledger.next_seq[w1] == 4


def test_heartbeats_record_boots_and_flag_two_live_copies(twin: Twin) -> None:
    """A restart (new boot id) is recorded; a replaced boot that comes back is a clone."""
    master, (w1,) = _genesis(twin, "w1")
    key = secret("w1")
    boot_a, boot_b = b"\xaa" * 32, b"\xbb" * 32
    before = twin.head()
    _rejected(twin.heartbeat(master, height=before, boot=boot_a))
    assert twin.ledger.rejected[-1][2] == "wrong origin"
    _rejected(twin.heartbeat(key, height=before, boot=boot_a, block_hash=b"\x01" * 32))
    assert twin.ledger.rejected[-1][2] == "unknown block"
    _rejected(twin.heartbeat(key, height=before + 40, boot=boot_a, block_hash=bytes(32)))
    assert twin.ledger.rejected[-1][2] == "future heartbeat"
    _accepted(
        twin.heartbeat(key, height=before, boot=boot_a, sealed=3), ev.Egress, ev.HeartbeatRecorded
    )
    _rejected(twin.heartbeat(key, height=before - 1, boot=boot_a))
    assert twin.ledger.rejected[-1][2] == "stale heartbeat"
    # a restart: a new boot id at the same height retires the old one
    _accepted(twin.heartbeat(key, height=before, boot=boot_b), ev.Egress, ev.HeartbeatRecorded)
    assert twin.ledger.flagged == {}
    # the old boot again, at a newer height, on a sequence number already used: a clone
    used = twin.ledger.next_seq[w1] - 1
    _reverted(twin.heartbeat(key, height=before, boot=boot_a, seq=used), "stale heartbeat")
    _accepted(twin.heartbeat(key, height=before + 1, boot=boot_a, seq=used), ev.WorkerFlagged)
    assert twin.ledger.flagged == {w1: 1}
    assert twin.ledger.workers[w1].confidence == 0
    # flagged for good: no endorsement lands, other topics keep their cheap duplicate revert
    quote_hash = twin.ledger.workers[w1].registration
    _rejected(twin.post(master, encode_endorse(Address(w1), 1, quote_hash, FAR)))
    assert twin.ledger.rejected[-1][2] == "worker flagged"
    _reverted(twin.post(key, (PLAIN, b"a"), seq=used), "sequence already used")


def test_workers_that_lose_their_eligibility_are_evicted(twin: Twin) -> None:
    """Cluster members and gatekeepers must be endorsed with an allowed measurement. A verdict
    of 0 evicts at once; after a revocation (or an expiry, or a divergence verdict) anyone
    evicts; the genesis gatekeeper keeps its role until the first verdict on it lands."""
    master, (w1, w2) = _genesis(twin, "w1", "w2")
    gk, stranger, c1 = twin.worker("gk"), twin.user(3), b"\xc1" * 32
    twin.create_cluster(c1, twin.admin, by=twin.admin)
    for member in (w1, w2):
        _accepted(twin.add_cluster_worker(c1, member, by=twin.admin), ev.ClusterWorkerAdded)
    _reverted(twin.evict(w1, by=stranger), "still eligible")
    _reverted(twin.evict(gk, by=stranger), "genesis gatekeeper not judged yet")
    quote_hash = twin.ledger.workers[w1].registration
    _accepted(
        twin.post(master, encode_endorse(Address(w1), 0, quote_hash, FAR)),
        ev.Egress,
        ev.WorkerEndorsed,
        ev.ClusterWorkerRemoved,
    )
    _reverted(twin.evict(w1, by=stranger), "nothing to evict")
    _reverted(twin.add_cluster_worker(c1, w1, by=twin.admin), "worker not endorsed")
    twin.set_measurement(MEASUREMENT, False, by=twin.admin)
    _reverted(twin.add_gatekeeper(w2, by=twin.admin), "gatekeeper not endorsed")
    _accepted(twin.evict(w2, by=stranger), ev.ClusterWorkerRemoved)
    _accepted(twin.evict(gk, by=stranger), ev.GatekeeperRemoved)
    assert twin.ledger.gatekeepers == set() and twin.ledger.genesis_gatekeeper == ZERO
    twin.check_views()


def test_a_gatekeeper_leaves_the_set_when_it_registers_again(twin: Twin) -> None:
    _genesis(twin)
    gk = twin.worker("gk")
    _accepted(twin.lock_rotation(by=twin.admin), ev.RotationLocked)
    _reverted(twin.register(gk), "rotation in progress")
    _accepted(twin.abort_rotation(by=twin.admin), ev.RotationAborted)
    outcome = twin.register(gk)
    assert outcome.accepted
    assert [type(e) for e in outcome.events] == [ev.GatekeeperRemoved, ev.WorkerRegistered]
    twin.check_views()


def test_worker_keys_are_numbered_from_one_and_published_by_the_identity(twin: Twin) -> None:
    """A worker identity publishes its encryption keys in order (1, 2, ...); another origin, a
    key of no HPKE size or a number out of order is refused, and a re-registration does not
    reset the numbering (a number names one key for good)."""
    master, (w1,) = _genesis(twin, "w1")
    key = secret("w1")
    x25519, hybrid = b"\x01" * 32, b"\x02" * 1216
    _rejected(twin.post(master, encode_worker_key(1, x25519)))
    assert twin.ledger.rejected[-1][2] == "wrong origin"
    _rejected(twin.post(key, encode_worker_key(2, x25519)))
    assert twin.ledger.rejected[-1][2] == "wrong key index"
    _rejected(twin.post(key, encode_worker_key(1, b"\x01" * 33)))
    assert twin.ledger.rejected[-1][2] == "bad key"
    outcome = twin.post(key, encode_worker_key(1, x25519))
    _accepted(outcome, ev.Egress, ev.WorkerKeyPublished)
    published = outcome.events[-1]
    assert isinstance(published, ev.WorkerKeyPublished)
    assert (published.worker, published.index, published.public_key) == (w1, 1, x25519)
    _rejected(twin.post(key, encode_worker_key(1, x25519)))
    assert twin.ledger.rejected[-1][2] == "wrong key index"
    _accepted(twin.post(key, encode_worker_key(2, hybrid)), ev.Egress, ev.WorkerKeyPublished)
    twin.register(w1)  # starts from nothing, but key numbers go on
    _unheard(twin.post(key, encode_worker_key(1, x25519)))
    registration = twin.ledger.workers[w1].registration
    twin.post(master, encode_endorse(Address(w1), 1, registration, FAR))
    _rejected(twin.post(key, encode_worker_key(1, x25519)))
    assert twin.ledger.rejected[-1][2] == "wrong key index"
    _accepted(twin.post(key, encode_worker_key(3, x25519)), ev.Egress, ev.WorkerKeyPublished)
    assert twin.ledger.encryption_index[w1] == 3


def test_state_commitments_find_the_diverged_replica(twin: Twin) -> None:
    """Members post keyed state commitments for the same heights; the value a strict majority
    of the members posted is the verdict, and every member that posted another one, before the
    majority formed or after, is de-endorsed and named. A split without a majority is only
    reported."""
    master, workers = _genesis(twin, "w1", "w2", "w3", "w4", "w5", "w6")
    c1, c2 = b"\xc1" * 32, b"\xc2" * 32
    twin.create_cluster(c1, twin.admin, by=twin.admin)
    twin.create_cluster(c2, twin.admin, by=twin.admin)
    for member in workers[:5]:
        twin.add_cluster_worker(c1, member, by=twin.admin)
    twin.add_cluster_worker(c2, workers[5], by=twin.admin)
    k1, k2, k3, k4, k5, k6 = (secret(f"w{i}") for i in range(1, 7))
    good, bad = b"\x11" * 32, b"\x66" * 32
    height = twin.head()

    def commit(key: SecretKey, value: bytes, *, at: int, cluster: bytes = c1) -> Outcome:
        payload = abi_encode(["bytes32", "uint64", "bytes32"], [cluster, at, value])
        return twin.post(key, (STATE, payload))

    def named(outcome: Outcome) -> tuple[bytes, int, bytes, bytes]:
        _accepted(outcome, ev.Egress, ev.ReplicaDiverged)
        event = outcome.events[1]
        assert isinstance(event, ev.ReplicaDiverged) and event.cluster_id == c1
        return event.worker, event.height, event.commitment, event.majority

    for key, value, at, reason in (
        (master, good, height, "wrong origin"),
        (k6, good, height, "not a member"),
        (k1, good, height + 40, "future commitment"),
        (k1, bytes(32), height, "empty commitment"),
    ):
        _rejected(commit(key, value, at=at))
        assert twin.ledger.rejected[-1][2] == reason
    _rejected(twin.post(k1, (STATE, b"short")))
    # three of five agree: the verdict; a fourth that disagrees afterwards is named
    for key in (k1, k2, k3):
        _accepted(commit(key, good, at=height - 1), ev.Egress)
    assert twin.ledger.verdicts[(c1, height - 1)] == good
    assert named(commit(k4, bad, at=height - 1)) == (workers[3], height - 1, bad, good)
    assert twin.ledger.workers[workers[3]].confidence == 0
    # found diverged, it is no longer endorsed: it posts nothing more
    _unheard(commit(k4, bad, at=height))
    # the first poster disagrees: each later value is reported until a majority forms,
    # and then the first poster is named
    _accepted(commit(k1, bad, at=height), ev.Egress)
    assert named(commit(k2, good, at=height)) == (workers[1], height, good, bytes(32))
    _rejected(commit(k2, good, at=height))
    assert twin.ledger.rejected[-1][2] == "already committed"
    assert named(commit(k3, good, at=height)) == (workers[2], height, good, bytes(32))
    assert twin.ledger.workers[workers[0]].confidence == 1
    assert named(commit(k5, good, at=height)) == (workers[0], height, bad, good)
    assert twin.ledger.diverged_at == {workers[3]: height - 1, workers[0]: height}
    # a cluster of one: its own commitment is the majority
    _accepted(commit(k6, good, at=height, cluster=c2), ev.Egress)
    assert twin.ledger.verdicts[(c2, height)] == good
    twin.check_views()


def test_a_verdict_names_at_most_four_at_once_and_anyone_names_the_rest(twin: Twin) -> None:
    """Nine of nineteen members dissent before the majority forms: the post that forms it
    names four (so it stays within the gas the Bus forwards) and anyone names the others."""
    names = [f"v{i}" for i in range(19)]
    _, workers = _genesis(twin, *names)
    cluster = b"\xc9" * 32
    twin.create_cluster(cluster, twin.admin, by=twin.admin)
    for member in workers:
        twin.add_cluster_worker(cluster, member, by=twin.admin)
    height, good, bad = twin.head(), b"\x11" * 32, b"\x66" * 32
    payload = lambda value: abi_encode(["bytes32", "uint64", "bytes32"], [cluster, height, value])  # noqa: E731
    outcome = Outcome(False)
    for index, name in enumerate(names):
        outcome = twin.post(secret(name), (STATE, payload(bad if index < 9 else good)))
        assert outcome.accepted
    named = [e.worker for e in outcome.events if isinstance(e, ev.ReplicaDiverged)]
    assert named == workers[:4] and twin.ledger.verdicts[(cluster, height)] == good
    stranger = twin.user(4)
    _reverted(
        twin.report_divergence(cluster, height, workers[9], by=stranger), "agrees with the verdict"
    )
    _reverted(twin.report_divergence(cluster, height, workers[0], by=stranger), "already named")
    _reverted(twin.report_divergence(cluster, height, stranger, by=stranger), "no commitment")
    _reverted(twin.report_divergence(cluster, height - 1, workers[8], by=stranger), "no verdict")
    for late in workers[4:9]:
        _accepted(twin.report_divergence(cluster, height, late, by=stranger), ev.ReplicaDiverged)
        assert twin.ledger.workers[late].confidence == 0
    twin.check_views()


def test_rotation_lock_propose_confirm_abort(twin: Twin) -> None:
    _reverted(twin.lock_rotation(by=twin.admin), "no master key")
    master, (w1,) = _genesis(twin, "w1")
    gk1, gk2 = secret("gk"), secret("gk2")
    gk2_address = twin.worker("gk2")
    twin.register(gk2_address)
    _reverted(twin.add_gatekeeper(gk2_address, by=twin.admin), "gatekeeper not endorsed")
    quote_hash = twin.ledger.workers[gk2_address].registration
    twin.post(master, encode_endorse(Address(gk2_address), 1, quote_hash, FAR))
    _accepted(twin.add_gatekeeper(gk2_address, by=twin.admin), ev.GatekeeperAdded)
    new = twin.enclave_key("master-1")
    _rejected(twin.post(gk1, _propose(twin, gk1, 1, new, b"m1")))
    _reverted(twin.lock_rotation(by=twin.user(1)), "rotation not due")
    _accepted(twin.lock_rotation(by=twin.admin), ev.RotationLocked)
    _reverted(twin.lock_rotation(by=twin.admin), "rotation in progress")
    _reverted(twin.add_gatekeeper(w1, by=twin.admin), "rotation in progress")
    _reverted(twin.remove_gatekeeper(gk2_address, by=twin.admin), "rotation in progress")

    _rejected(twin.post(secret("w1"), _propose(twin, secret("w1"), 1, new, b"m1")))
    _rejected(twin.post(gk2, _confirm(twin, gk2, 1, new, b"m1")))
    _rejected(twin.post(gk1, _propose(twin, gk1, 2, new, b"m1")))
    _rejected(twin.post(gk1, _propose(twin, gk1, 1, master, b"m1")))
    _accepted(
        twin.post(gk1, _propose(twin, gk1, 1, new, b"m1")),
        ev.Egress,
        ev.RotationProposed,
        ev.RotationConfirmed,
    )
    _rejected(twin.post(gk2, _propose(twin, gk2, 1, new, b"m1")))
    _rejected(twin.post(gk1, _confirm(twin, gk1, 1, new, b"m1")))
    _rejected(twin.post(gk2, _confirm(twin, gk2, 2, new, b"m1")))
    _rejected(twin.post(gk2, _confirm(twin, gk2, 1, master, b"m1")))
    # the Registry keeps the proposal's hash only: a confirmation carrying another key is refused
    _rejected(twin.post(gk2, _confirm(twin, gk2, 1, new, b"m2")))
    assert twin.ledger.rejected[-1][2] == "wrong key"
    # a confirmation must prove the new key is held: not signed by it, made out to another
    # gatekeeper (copied from the chain), or for another attempt, it counts for nothing
    stale = prove_possession(
        new,
        chain_id=twin.chain.network.addresses.chain_id,
        registry=twin.chain.network.addresses.registry.raw,
        attempt=twin.ledger.rotation_attempt - 1,
        gatekeeper=gk2.address.raw,
    )
    forged = [_proof(twin, master, gk2), _proof(twin, new, gk1), stale]
    for proof, reason in [
        *[(p, "no key possession") for p in forged],
        (b"\x01" * 65, "bad signature"),
        (b"", "bad signature"),
    ]:
        _rejected(twin.post(gk2, encode_rotation_confirm(1, new.address, b"m1", proof)))
        assert twin.ledger.rejected[-1][2] == reason
    _accepted(
        twin.post(gk2, _confirm(twin, gk2, 1, new, b"m1")),
        ev.Egress,
        ev.RotationConfirmed,
        ev.MasterKeyRotated,
    )
    assert twin.ledger.master == new.address.raw
    # a rotated-out master key loses its powers: it neither endorses nor keys clusters
    quote_hash = twin.ledger.workers[w1].registration
    _rejected(twin.post(master, encode_endorse(Address(w1), 5, quote_hash, FAR)))
    assert twin.ledger.rejected[-1][2] == "old master key"
    assert twin.ledger.workers[w1].confidence == 1
    _accepted(
        twin.post(new, encode_endorse(Address(w1), 2, quote_hash, FAR)),
        ev.Egress,
        ev.WorkerEndorsed,
    )
    c1 = b"\xc1" * 32
    twin.create_cluster(c1, twin.admin, by=twin.admin)
    cluster_key = twin.enclave_key("cluster-1")
    _rejected(twin.post(master, encode_cluster_key(c1, 1, cluster_key.address, b"k")))
    _accepted(
        twin.post(new, encode_cluster_key(c1, 1, cluster_key.address, b"k")),
        ev.Egress,
        ev.ClusterKeySet,
    )

    # an aborted attempt leaves nothing behind: its proposer proposes and confirms again
    _reverted(twin.abort_rotation(by=twin.admin), "no rotation in progress")
    _accepted(twin.lock_rotation(by=twin.admin), ev.RotationLocked)
    second, third = twin.enclave_key("master-2"), twin.enclave_key("master-3")
    _accepted(
        twin.post(gk1, _propose(twin, gk1, 2, second, b"m2")),
        ev.Egress,
        ev.RotationProposed,
        ev.RotationConfirmed,
    )
    _reverted(twin.abort_rotation(by=twin.user(1)), "rotation not expired")
    _accepted(twin.abort_rotation(by=twin.admin), ev.RotationAborted)
    _accepted(twin.lock_rotation(by=twin.admin), ev.RotationLocked)
    assert twin.ledger.rotation_attempt == 3
    _accepted(
        twin.post(gk1, _propose(twin, gk1, 2, third, b"m3")),
        ev.Egress,
        ev.RotationProposed,
        ev.RotationConfirmed,
    )
    _rejected(twin.post(gk1, _confirm(twin, gk1, 2, third, b"m3")))
    assert twin.ledger.rejected[-1][2] == "already confirmed"  # once per attempt
    # a gatekeeper that never confirms cannot hold the key in place: past the deadline anyone
    # aborts, and governance may let fewer than all gatekeepers complete a rotation
    twin.chain.backend.mine(ROTATION_WINDOW)
    _accepted(twin.abort_rotation(by=twin.user(1)), ev.RotationAborted)
    _reverted(twin.abort_rotation(by=twin.user(1)), "no rotation in progress")
    _reverted(twin.set_rotation_threshold(1, by=twin.user(1)), "ownable: caller is not the owner")
    _accepted(twin.set_rotation_threshold(1, by=twin.admin))
    _accepted(twin.lock_rotation(by=twin.admin), ev.RotationLocked)
    _reverted(twin.set_rotation_threshold(2, by=twin.admin), "rotation in progress")
    _accepted(
        twin.post(gk2, _propose(twin, gk2, 2, third, b"m3")),
        ev.Egress,
        ev.RotationProposed,
        ev.RotationConfirmed,
        ev.MasterKeyRotated,
    )
    assert twin.ledger.master == third.address.raw
    twin.check_views()


# --- a bounded random walk over the same calls ---------------------------------------------------

_USERS = (1, 2)
_WORKERS = ("gk", "w1", "w2")
_CLUSTERS = (b"\xc1" * 32, b"\xc2" * 32)
_KEYS = ("k0", "k1", "k2", "k3")


@pytest.mark.slow
def test_random_walk_agrees_with_the_chain(chain: Chain) -> None:
    """Random sequences of every call, from small pools of actors, keys and ids: any call the
    model and the chain answer differently fails with the two outcomes side by side."""

    class Walk(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.twin = Twin(chain)
            self.contracts: list[bytes] = [b"\xee" * 32]

        @initialize()
        def live_network(self) -> None:
            """Start from a keyed network, so that most calls can also be accepted."""
            twin = self.twin
            _genesis(twin, "w1", "w2")
            twin.create_cluster(_CLUSTERS[0], twin.user(1), by=twin.admin)
            _, contract_id = twin.deploy_contract(
                by=twin.user(2), salt=b"\x02" * 32, cluster_id=_CLUSTERS[0]
            )
            self.contracts.append(contract_id)

        @rule(name=st.sampled_from(_WORKERS), fresh=st.booleans(), deposit=st.sampled_from((0, 7)))
        def register(self, name: str, fresh: bool, deposit: int) -> None:
            quote = b"quote-" + bytes([fresh])
            self.twin.register(self.twin.worker(name), quote=quote, deposit=deposit)

        @rule(amount=st.sampled_from((0, 5)), by_admin=st.booleans())
        def registration_deposit(self, amount: int, by_admin: bool) -> None:
            by = self.twin.admin if by_admin else self.twin.user(1)
            self.twin.set_registration_deposit(amount, by=by)

        @rule(by=st.sampled_from(_USERS))
        def claim_refund(self, by: int) -> None:
            self.twin.claim_refund(by=self.twin.user(by))

        @precondition(lambda self: self.twin.ledger.rotation_locked)
        @rule()
        def rotation_deadline_passes(self) -> None:
            """Every rotation ends by its deadline: past it, anyone can end it."""
            self.twin.chain.backend.mine(ROTATION_WINDOW)
            _accepted(self.twin.abort_rotation(by=self.twin.user(2)), ev.RotationAborted)

        @rule(name=st.sampled_from(_WORKERS), add=st.booleans(), by_admin=st.booleans())
        def gatekeeper(self, name: str, add: bool, by_admin: bool) -> None:
            by = self.twin.admin if by_admin else self.twin.user(1)
            call = self.twin.add_gatekeeper if add else self.twin.remove_gatekeeper
            call(self.twin.worker(name), by=by)

        @rule(lock=st.booleans(), by_admin=st.booleans())
        def rotation_lock(self, lock: bool, by_admin: bool) -> None:
            by = self.twin.admin if by_admin else self.twin.user(1)
            (self.twin.lock_rotation if lock else self.twin.abort_rotation)(by=by)

        @rule(threshold=st.integers(min_value=0, max_value=3))
        def rotation_threshold(self, threshold: int) -> None:
            self.twin.set_rotation_threshold(threshold, by=self.twin.admin)

        @rule(cluster=st.sampled_from(_CLUSTERS), owner=st.sampled_from(_USERS))
        def create_cluster(self, cluster: bytes, owner: int) -> None:
            self.twin.create_cluster(cluster, self.twin.user(owner), by=self.twin.admin)

        @rule(
            cluster=st.sampled_from(_CLUSTERS),
            name=st.sampled_from(_WORKERS),
            by=st.sampled_from(_USERS),
            add=st.booleans(),
        )
        def membership(self, cluster: bytes, name: str, by: int, add: bool) -> None:
            call = self.twin.add_cluster_worker if add else self.twin.remove_cluster_worker
            call(cluster, self.twin.worker(name), by=self.twin.user(by))

        @rule(
            cluster=st.sampled_from(_CLUSTERS),
            by=st.sampled_from(_USERS),
            deployer=st.sampled_from((0, *_USERS)),
            allowed=st.booleans(),
        )
        def deploy_policy(self, cluster: bytes, by: int, deployer: int, allowed: bool) -> None:
            who = ZERO if deployer == 0 else self.twin.user(deployer)
            self.twin.set_deploy_policy(cluster, who, allowed, by=self.twin.user(by))

        @rule(by=st.sampled_from(_USERS), cluster=st.sampled_from(_CLUSTERS))
        def deploy(self, by: int, cluster: bytes) -> None:
            outcome, contract_id = self.twin.deploy_contract(
                by=self.twin.user(by), salt=b"\x01" * 32, cluster_id=cluster
            )
            if outcome.accepted:
                self.contracts.append(contract_id)

        @rule(data=st.data(), by=st.sampled_from(_USERS), action=st.integers(0, 5))
        def control(self, data: st.DataObject, by: int, action: int) -> None:
            contract_id = data.draw(st.sampled_from(self.contracts))
            sender, other = self.twin.user(by), self.twin.user(3 - by)
            if action == 0:
                self.twin.push_command(contract_id, b"command", by=sender)
            elif action == 5:
                count = data.draw(st.integers(0, 3))
                self.twin.push_commands(contract_id, [b"batched"] * count, by=sender)
            elif action == 1:
                self.twin.set_paused(contract_id, data.draw(st.booleans()), by=sender)
            elif action == 2:
                self.twin.transfer_contract(contract_id, other, by=sender)
            elif action == 3:
                self.twin.accept_contract(contract_id, by=sender)
            else:
                self.twin.set_controller(contract_id, other, by=sender)

        @rule(
            data=st.data(),
            signer=st.sampled_from(("master", *_WORKERS, *_KEYS)),
            routed=st.integers(0, 6),
            key=st.sampled_from(_KEYS),
            number=st.integers(0, 2),
        )
        def egress(
            self, data: st.DataObject, signer: str, routed: int, key: str, number: int
        ) -> None:
            twin = self.twin
            origin = secret("master-0" if signer == "master" else signer)
            target = twin.enclave_key(key).address
            if routed == 0:
                egress = encode_master_key(secret("master-0").address, b"m")
            elif routed == 1:
                name = data.draw(st.sampled_from(_WORKERS))
                worker = twin.worker(name)
                record = twin.ledger.workers.get(worker)
                quote_hash = record.registration if record else b"\x00" * 32
                confidence = data.draw(st.sampled_from((0, 1)))
                egress = encode_endorse(Address(worker), confidence, quote_hash, FAR)
            elif routed == 2:
                egress = encode_cluster_key(
                    data.draw(st.sampled_from(_CLUSTERS)), number, target, b"c"
                )
            elif routed == 3:
                contract_id = data.draw(st.sampled_from(self.contracts))
                egress = encode_contract_key(contract_id, number, target, b"k")
            elif routed == 4:
                prover = secret(key) if data.draw(st.booleans()) else origin  # or a bad proof
                egress = _propose(
                    twin, origin, twin.ledger.rotation_counter + 1, secret(key), b"r", prover=prover
                )
            elif routed == 5:
                proposal = twin.ledger.proposal
                keys = {secret(k).address.raw: secret(k) for k in _KEYS}
                held = keys.get(proposal[0], secret(key)) if proposal else secret(key)
                public = b"r" if proposal is None or data.draw(st.booleans()) else b"x"
                egress = _confirm(twin, origin, twin.ledger.rotation_counter + 1, held, public)
            else:
                egress = (PLAIN, b"state")
            twin.post(origin, egress)

        @invariant()
        def nothing_pending_is_lost(self) -> None:
            assert all(isinstance(e, ev.ChainEvent) for e in self.twin.ledger.pending)

        @invariant()
        def roles_need_a_judgement(self) -> None:
            """No worker judged 0 (refused, de-endorsed, re-registered, flagged) holds a role;
            a divergence verdict's dissenters wait for anyone to evict them, and a rotation
            keeps counting its gatekeepers until it ends."""
            ledger = self.twin.ledger
            named = {worker for _, _, worker in ledger.named}
            gatekeepers = set() if ledger.rotation_locked else set(ledger.gatekeepers)
            gatekeepers.discard(ledger.genesis_gatekeeper)  # judged by nobody yet
            members = {m for c in ledger.clusters.values() for m in c.members}
            for worker in (members | gatekeepers) - named:
                assert ledger.workers[worker].confidence > 0, f"0x{worker.hex()} holds a role"

        def every_origin_can_still_post(self) -> None:
            """No origin's sequence ever stops: whatever happened, each key that is an origin
            can post its next message (the Bus may not hear it, but takes its number)."""
            twin = self.twin
            network = twin.chain.network
            for name in ("master-0", *_WORKERS, *_KEYS):
                key = secret(name)
                if not network.origin_kind(key.address):
                    continue
                seq = network.next_seq(key.address)
                domain = egress_domain(network.addresses.chain_id, network.addresses.bus)
                signed = sign_egress(key, domain, seq=seq, topic=PLAIN, payload=b"next")
                call = {
                    "from": twin.account(9).address.hex,
                    "to": network.bus.address.hex,
                    "data": to_hex(network.post_data(signed)),
                    "gas": hex(GAS),
                }
                network.client.call("eth_call", call, twin.chain.call_tag)  # must not revert

        @invariant()
        def no_origin_can_be_starved(self) -> None:
            """Whatever governance does, the Bus takes every payload a core may emit."""
            assert self.twin.ledger.max_payload >= MAX_EGRESS_PAYLOAD

        def teardown(self) -> None:
            try:
                self.twin.check_views()
                self.every_origin_can_still_post()
            finally:
                assert chain.backend.revert(chain.genesis)
                chain.genesis = chain.backend.snapshot()

    run_state_machine_as_test(
        Walk,
        settings=settings(
            max_examples=25,
            stateful_step_count=30,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


def test_anyone_may_rotate_a_master_that_served_its_interval(twin: Twin) -> None:
    """Governance sets how many blocks a master key serves; past that anyone may lock its
    rotation (a gatekeeper's host does), before it only governance; 0 means governance only."""
    _genesis(twin, "w1")
    stranger = twin.user(1)
    _reverted(twin.set_rotation_interval(5, by=stranger), "ownable: caller is not the owner")
    _reverted(twin.lock_rotation(by=stranger), "rotation not due")
    _accepted(twin.set_rotation_interval(5, by=twin.admin))
    twin.check_views()
    since = twin.ledger.master_since
    while twin.head() + 1 < since + 5:
        _reverted(twin.lock_rotation(by=stranger), "rotation not due")
        twin.chain.backend.mine(1)
    _accepted(twin.lock_rotation(by=stranger), ev.RotationLocked)
    _reverted(twin.lock_rotation(by=stranger), "rotation in progress")
    twin.check_views()
