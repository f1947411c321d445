"""An in-memory model of the Registry and Bus contracts that emits the core's input events.
A test double for fast, deterministic runtime tests; integration tests use the real EVM chain."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eth_hash.auto import keccak

from veilnet.codec import abi_decode
from veilnet.crypto import Address, Domain, SignatureInvalid, recover_typed
from veilnet.protocol import events as ev
from veilnet.protocol import topics
from veilnet.protocol.egress import EGRESS_TYPE, EgressMessage

KIND_NONE, KIND_WORKER, KIND_MASTER, KIND_CLUSTER, KIND_CONTRACT = range(5)


class Revert(Exception):
    """A transaction reverted; the message says why (as the Vyper contracts do)."""


@dataclass(slots=True)
class _Worker:
    quote_hash: bytes
    confidence: int = 0
    cluster: bytes | None = None


@dataclass(slots=True)
class _Cluster:
    owner: bytes
    key_epoch: int = 0
    key_address: bytes = b""
    workers: int = 0


@dataclass(slots=True)
class _Contract:
    cluster: bytes
    owner: bytes
    controller: bytes
    key_epoch: int = 0
    paused: bool = False


@dataclass(slots=True)
class LedgerSim:
    """Registry + Bus rules, enough to drive cores: same checks, same events, same routing."""

    chain_id: int = 31337
    registry: bytes = b"\x52" * 20
    bus: bytes = b"\xb5" * 20
    owner: bytes = b"\x0a" * 20
    genesis_time: int = 1_767_225_600
    block_time: int = 2
    max_payload: int = 32768
    blocks: list[ev.Block] = field(default_factory=list)
    pending: list[ev.ChainEvent] = field(default_factory=list)
    measurements: set[bytes] = field(default_factory=set)
    workers: dict[bytes, _Worker] = field(default_factory=dict)
    origin_kind: dict[bytes, int] = field(default_factory=dict)
    gatekeepers: list[bytes] = field(default_factory=list)
    master: bytes = b""
    rotation_counter: int = 0
    rotation_locked: bool = False
    proposal: tuple[bytes, bytes] | None = None
    confirmations: set[bytes] = field(default_factory=set)
    clusters: dict[bytes, _Cluster] = field(default_factory=dict)
    contracts: dict[bytes, _Contract] = field(default_factory=dict)
    next_seq: dict[bytes, int] = field(default_factory=dict)
    command_seq: dict[bytes, int] = field(default_factory=dict)
    rejected: list[tuple[bytes, int, str]] = field(default_factory=list)

    @property
    def domain(self) -> Domain:
        return Domain(chain_id=self.chain_id, verifying_contract=Address(self.bus))

    @property
    def head(self) -> ev.BlockHeader:
        if not self.blocks:
            return ev.BlockHeader(
                number=0, hash=b"\x00" * 32, parent_hash=b"\x00" * 32, timestamp=self.genesis_time
            )
        return self.blocks[-1].header

    def mine(self) -> ev.Block:
        parent = self.head
        number = parent.number + 1 if self.blocks else 1
        events = tuple(self.pending)
        self.pending = []
        digest = keccak(
            parent.hash + number.to_bytes(8, "big") + b"".join(e.to_bytes() for e in events)
        )
        header = ev.BlockHeader(
            number=number,
            hash=digest,
            parent_hash=parent.hash if self.blocks else b"\x00" * 32,
            timestamp=self.genesis_time + number * self.block_time,
        )
        block = ev.Block(header=header, events=events)
        self.blocks.append(block)
        return block

    def _only_owner(self, sender: bytes) -> None:
        if sender != self.owner:
            raise Revert("ownable: caller is not the owner")

    # --- governance and registry calls ---

    def set_measurement(
        self, measurement: bytes, allowed: bool = True, *, sender: bytes | None = None
    ) -> None:
        self._only_owner(self.owner if sender is None else sender)
        (self.measurements.add if allowed else self.measurements.discard)(measurement)
        self.pending.append(ev.MeasurementSet(measurement=measurement, allowed=allowed))

    def register_worker(self, request: Any) -> None:
        if request.measurement not in self.measurements:
            raise Revert("measurement not allowed")
        if self.origin_kind.get(request.worker, KIND_NONE) not in (KIND_NONE, KIND_WORKER):
            raise Revert("origin in use")
        quote_hash = keccak(request.quote)
        self.workers[request.worker] = _Worker(quote_hash=quote_hash)
        self.origin_kind[request.worker] = KIND_WORKER
        self.pending.append(
            ev.WorkerRegistered(
                worker=request.worker,
                operator=request.operator,
                hpke_key=request.hpke_key,
                tee_kind=request.tee_kind,
                measurement=request.measurement,
                quote_hash=quote_hash,
                collateral_hash=request.collateral_hash,
                quote=request.quote,
            )
        )

    def add_gatekeeper(self, gatekeeper: bytes) -> None:
        if self.rotation_locked:
            raise Revert("rotation in progress")
        if self.origin_kind.get(gatekeeper) != KIND_WORKER:
            raise Revert("not a registered worker")
        self.gatekeepers.append(gatekeeper)
        self.pending.append(ev.GatekeeperAdded(gatekeeper=gatekeeper))

    def create_cluster(self, cluster_id: bytes, owner: bytes | None = None) -> None:
        if cluster_id in self.clusters:
            raise Revert("cluster exists")
        self.clusters[cluster_id] = _Cluster(owner=owner or self.owner)
        self.pending.append(ev.ClusterCreated(cluster_id=cluster_id, owner=owner or self.owner))

    def add_cluster_worker(
        self, cluster_id: bytes, worker: bytes, *, sender: bytes | None = None
    ) -> None:
        cluster = self.clusters[cluster_id]
        if (sender or self.owner) != cluster.owner:
            raise Revert("not cluster owner")
        record = self.workers.get(worker)
        if record is None or record.confidence == 0:
            raise Revert("worker not endorsed")
        if record.cluster is not None:
            raise Revert("worker in a cluster")
        record.cluster = cluster_id
        cluster.workers += 1
        self.pending.append(ev.ClusterWorkerAdded(cluster_id=cluster_id, worker=worker))

    def deploy_contract(
        self,
        *,
        sender: bytes,
        salt: bytes,
        cluster_id: bytes,
        code: bytes,
        init_args: bytes = b"",
        controller: bytes = b"\x00" * 20,
    ) -> bytes:
        if cluster_id not in self.clusters:
            raise Revert("unknown cluster")
        contract_id = keccak(b"\x00" * 12 + sender + salt)
        if contract_id in self.contracts:
            raise Revert("contract exists")
        self.contracts[contract_id] = _Contract(
            cluster=cluster_id, owner=sender, controller=controller
        )
        self.pending.append(
            ev.ContractDeployed(
                contract_id=contract_id,
                cluster_id=cluster_id,
                owner=sender,
                controller=controller,
                code_hash=keccak(code),
                code=code,
                init_args=init_args,
            )
        )
        return contract_id

    def _control(self, contract_id: bytes, sender: bytes) -> _Contract:
        contract = self.contracts.get(contract_id)
        if contract is None:
            raise Revert("unknown contract")
        if sender not in (contract.owner, contract.controller):
            raise Revert("not owner or controller")
        return contract

    def set_paused(self, contract_id: bytes, paused: bool, *, sender: bytes) -> None:
        self._control(contract_id, sender).paused = paused
        self.pending.append(ev.ContractPaused(contract_id=contract_id, paused=paused, by=sender))

    def upgrade_contract(self, contract_id: bytes, code: bytes, *, sender: bytes) -> None:
        self._control(contract_id, sender)
        self.pending.append(
            ev.ContractUpgraded(contract_id=contract_id, code_hash=keccak(code), code=code)
        )

    def transfer_contract(self, contract_id: bytes, new_owner: bytes, *, sender: bytes) -> None:
        self._control(contract_id, sender).owner = new_owner
        self.pending.append(ev.ContractOwnerChanged(contract_id=contract_id, owner=new_owner))

    def lock_rotation(self) -> None:
        if not self.master or self.rotation_locked:
            raise Revert("cannot lock")
        self.rotation_locked = True
        self.pending.append(ev.RotationLocked(rotation=self.rotation_counter + 1))

    # --- bus ---

    def push_command(self, contract_id: bytes, payload: bytes, *, sender: bytes) -> int:
        if len(payload) > self.max_payload:
            raise Revert("payload too big")
        contract = self.contracts.get(contract_id)
        if contract is None:
            raise Revert("unknown contract")
        if contract.paused:
            raise Revert("contract paused")
        seq = self.command_seq.get(contract_id, 0)
        self.command_seq[contract_id] = seq + 1
        self.pending.append(
            ev.Command(contract_id=contract_id, seq=seq, sender=sender, payload=payload)
        )
        return seq

    def post(self, message: EgressMessage) -> bool:
        """Bus.post: False (and no state change) if the sequence is already used."""
        expected = self.next_seq.get(message.origin, 0)
        if message.seq < expected:
            return False
        if message.seq != expected:
            raise Revert("sequence gap")
        if self.origin_kind.get(message.origin, KIND_NONE) == KIND_NONE:
            raise Revert("unknown origin")
        try:
            signer = recover_typed(
                message.signature,
                self.domain,
                EGRESS_TYPE,
                {
                    "origin": Address(message.origin),
                    "seq": message.seq,
                    "topic": message.topic,
                    "payload": message.payload,
                },
            )
        except SignatureInvalid as exc:
            raise Revert("bad signature") from exc
        if signer.raw != message.origin:
            raise Revert("wrong signer")
        self.next_seq[message.origin] = expected + 1
        self.pending.append(
            ev.Egress(
                origin=message.origin, seq=message.seq, topic=message.topic, payload=message.payload
            )
        )
        before = len(self.pending)
        try:
            self._on_egress(message.origin, message.topic, message.payload)
        except Revert as exc:
            del self.pending[before:]
            self.rejected.append((message.origin, message.seq, str(exc)))
            self.pending.append(
                ev.EgressRejected(origin=message.origin, seq=message.seq, topic=message.topic)
            )
        return True

    def _on_egress(self, origin: bytes, topic: bytes, payload: bytes) -> None:
        kind = self.origin_kind.get(origin, KIND_NONE)
        if topic == topics.TOPIC_ENDORSE:
            if kind != KIND_MASTER:
                raise Revert("wrong origin")
            worker, confidence, quote_hash = abi_decode(["address", "uint8", "bytes32"], payload)
            record = self.workers.get(bytes.fromhex(worker[2:]))
            if record is None or record.quote_hash != quote_hash:
                raise Revert("stale quote")
            record.confidence = confidence
            self.pending.append(
                ev.WorkerEndorsed(
                    worker=bytes.fromhex(worker[2:]), confidence=confidence, quote_hash=quote_hash
                )
            )
        elif topic == topics.TOPIC_MASTER_KEY:
            if kind != KIND_WORKER or origin not in self.gatekeepers or self.master:
                raise Revert("wrong origin")
            address, public = abi_decode(["address", "bytes"], payload)
            key = bytes.fromhex(address[2:])
            self.master = key
            self.origin_kind[key] = KIND_MASTER
            self.pending.append(
                ev.MasterKeySet(gatekeeper=origin, key_address=key, public_key=public)
            )
        elif topic == topics.TOPIC_CLUSTER_KEY:
            if kind != KIND_MASTER or origin != self.master:
                raise Revert("wrong origin")
            cluster_id, epoch, address, public = abi_decode(
                ["bytes32", "uint64", "address", "bytes"], payload
            )
            cluster = self.clusters[cluster_id]
            if epoch <= cluster.key_epoch:
                raise Revert("stale epoch")
            key = bytes.fromhex(address[2:])
            cluster.key_epoch, cluster.key_address = epoch, key
            self.origin_kind[key] = KIND_CLUSTER
            self.pending.append(
                ev.ClusterKeySet(
                    cluster_id=cluster_id, epoch=epoch, key_address=key, public_key=public
                )
            )
        elif topic == topics.TOPIC_CONTRACT_KEY:
            if kind != KIND_CLUSTER:
                raise Revert("wrong origin")
            contract_id, epoch, address, public = abi_decode(
                ["bytes32", "uint64", "address", "bytes"], payload
            )
            contract = self.contracts[contract_id]
            cluster = self.clusters[contract.cluster]
            if (
                cluster.key_address != origin
                or epoch != cluster.key_epoch
                or epoch <= contract.key_epoch
            ):
                raise Revert("wrong epoch")
            key = bytes.fromhex(address[2:])
            contract.key_epoch = epoch
            self.origin_kind[key] = KIND_CONTRACT
            self.pending.append(
                ev.ContractKeySet(
                    contract_id=contract_id, epoch=epoch, key_address=key, public_key=public
                )
            )
        elif topic == topics.TOPIC_ROTATION_PROPOSE:
            if (
                kind != KIND_WORKER
                or origin not in self.gatekeepers
                or not self.rotation_locked
                or self.proposal
            ):
                raise Revert("wrong origin")
            rotation, address, public = abi_decode(["uint256", "address", "bytes"], payload)
            if rotation != self.rotation_counter + 1:
                raise Revert("wrong rotation")
            key = bytes.fromhex(address[2:])
            self.proposal = (key, public)
            self.pending.append(
                ev.RotationProposed(
                    rotation=rotation, proposer=origin, key_address=key, public_key=public
                )
            )
            self._confirm(rotation, origin, key)
        elif topic == topics.TOPIC_ROTATION_CONFIRM:
            if kind != KIND_WORKER or origin not in self.gatekeepers or not self.rotation_locked:
                raise Revert("wrong origin")
            rotation, address = abi_decode(["uint256", "address"], payload)
            key = bytes.fromhex(address[2:])
            if self.proposal is None or key != self.proposal[0]:
                raise Revert("wrong key")
            self._confirm(rotation, origin, key)

    def _confirm(self, rotation: int, gatekeeper: bytes, key: bytes) -> None:
        """Registry._confirm_rotation: the proposer's proposal counts as its confirmation."""
        if gatekeeper in self.confirmations or self.proposal is None:
            raise Revert("already confirmed")
        self.confirmations.add(gatekeeper)
        self.pending.append(
            ev.RotationConfirmed(
                rotation=rotation, gatekeeper=gatekeeper, confirmations=len(self.confirmations)
            )
        )
        if len(self.confirmations) >= len(self.gatekeepers):
            self.master = key
            self.origin_kind[key] = KIND_MASTER
            self.rotation_counter = rotation
            self.rotation_locked = False
            public = self.proposal[1]
            self.proposal = None
            self.confirmations = set()
            self.pending.append(
                ev.MasterKeyRotated(rotation=rotation, key_address=key, public_key=public)
            )
