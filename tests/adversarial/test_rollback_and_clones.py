"""A malicious host restores an old checkpoint, or runs one identity twice, over the byte interface.
The core anchors rollback on its own heartbeats as the Registry records them, and stops serving
once the Registry flags its identity."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from veilnet.codec import abi_decode
from veilnet.protocol import enclave as wire
from veilnet.protocol import topics
from veilnet.protocol.chain import ChainBlock
from veilnet.protocol.egress import EgressMessage
from veilnet.protocol.errors import CheckpointStale, IdentityFlagged
from veilnet.protocol.events import (
    HeartbeatRecorded,
    WorkerFlagged,
    WorkerRegistered,
)
from veilnet.protocol.registration import TEEKind
from veilnet.testing.adversary import AdversaryChain, MaliciousHost, dev_enclave_config

pytestmark = pytest.mark.slow  # each test starts enclave processes

CONFIG = dev_enclave_config(heartbeat_interval=2)


CHAIN = AdversaryChain(CONFIG)
_block = CHAIN.block


def _registered(worker: bytes) -> WorkerRegistered:
    return WorkerRegistered(
        worker=worker,
        operator=b"\x0b" * 20,
        hpke_key=b"\x01" * 32,
        tee_kind=int(TEEKind.TDX),
        measurement=b"\x42" * 32,
        quote_hash=b"\x05" * 32,
        collateral_hash=b"\x06" * 32,
        quote=b"quote",
        attested_block=0,
        attested_hash=b"\x07" * 32,
        registration=b"\x08" * 32,
    )


def _heartbeats(applied: wire.Applied) -> list[tuple[int, int, bytes]]:
    """(height, sealed height, boot id) of each heartbeat the core emitted."""
    out = []
    for message in applied.egress:
        assert isinstance(message, EgressMessage)
        if message.topic == topics.TOPIC_HEARTBEAT:
            height, _, sealed, boot = abi_decode(
                ["uint64", "bytes32", "uint64", "bytes32"], message.payload
            )
            out.append((height, sealed, boot))
    return out


@dataclass
class Run:
    """The honest history: a worker that checkpointed at blocks 2 and 4, whose heartbeat for
    block 6 (naming the checkpoint at 4) the Registry recorded in block 7."""

    address: bytes
    sealed_identity: bytes
    old: bytes
    new: bytes
    blocks: list[ChainBlock] = field(default_factory=list)
    boot_id: bytes = b""


@pytest.fixture(scope="module")
def run() -> Iterator[Run]:
    with MaliciousHost() as host:
        booted = host.enclave.boot(wire.Boot(config=CONFIG))
        me = booted.address
        blocks = [_block(1, _registered(me)), _block(2)]
        for block in blocks:
            applied = host.enclave.apply_block(block)
        ((_, sealed, boot),) = _heartbeats(applied)
        assert sealed == 0
        old = host.enclave.checkpoint().sealed
        for number in (3, 4):
            blocks.append(_block(number))
            applied = host.enclave.apply_block(blocks[-1])
        assert _heartbeats(applied) == [(4, 2, boot)]  # names the checkpoint at block 2
        new = host.enclave.checkpoint().sealed
        for number in (5, 6):
            blocks.append(_block(number))
            applied = host.enclave.apply_block(blocks[-1])
        assert _heartbeats(applied) == [(6, 4, boot)]
        recorded = HeartbeatRecorded(worker=me, height=6, boot_id=boot, sealed_height=4)
        blocks.append(_block(7, recorded))
        host.enclave.apply_block(blocks[-1])
        yield Run(me, booted.sealed_identity, old, new, blocks, boot)


def test_an_old_checkpoint_is_refused_once_its_heartbeats_show_a_newer_one(run: Run) -> None:
    with MaliciousHost() as host:
        host.enclave.boot(wire.Boot(config=CONFIG, checkpoint=run.old))
        for block in run.blocks[2:6]:  # blocks 3..6 replay as before
            host.enclave.apply_block(block)
        for _ in range(2):  # refused every time, never skipped
            with pytest.raises(CheckpointStale):
                host.enclave.apply_block(run.blocks[6])
        status = host.enclave.status()
        assert status.head is not None and status.head.number == 6


def test_the_newest_checkpoint_restores_and_goes_on(run: Run) -> None:
    """A restart from the newest checkpoint is not a rollback: its heartbeats match."""
    with MaliciousHost() as host:
        booted = host.enclave.boot(wire.Boot(config=CONFIG, checkpoint=run.new))
        assert booted.address == run.address
        for block in run.blocks[4:]:
            applied = host.enclave.apply_block(block)
        assert applied.head.number == 7
        applied = host.enclave.apply_block(_block(8, parent=CHAIN.hashes[7]))
        ((height, sealed, boot),) = _heartbeats(applied)
        assert (height, sealed) == (8, 4)
        assert boot != run.boot_id  # every boot draws its own id: the Registry tells them apart


def test_a_second_copy_of_an_identity_stops_serving_once_flagged(run: Run) -> None:
    with MaliciousHost() as host:
        booted = host.enclave.boot(wire.Boot(config=CONFIG, sealed_identity=run.sealed_identity))
        assert booted.address == run.address
        for block in run.blocks[:6]:
            applied = host.enclave.apply_block(block)
        ((_, _, boot),) = _heartbeats(applied)
        assert boot != run.boot_id
        host.enclave.apply_block(_block(7, WorkerFlagged(worker=run.address, reason=1)))
        with pytest.raises(IdentityFlagged):
            host.enclave.query(b"\x01" * 64)
