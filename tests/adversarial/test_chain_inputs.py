"""A malicious host feeds its enclave forged, altered, dropped, reordered and replayed chain data.
Real enclave processes, reached only over their byte interface, prove every block themselves."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
import rlp
import trustme
from eth_hash.auto import keccak

from veilnet.crypto import SecretKey
from veilnet.protocol import enclave as wire
from veilnet.protocol.chain import POLICY_RPC_QUORUM, ChainBlock, ChainTrust, decode_header
from veilnet.protocol.errors import (
    BlockRejected,
    BlockUnproven,
    FinalityUnproven,
    QuorumNotReached,
)
from veilnet.protocol.events import ClusterWorkerAdded, MeasurementSet, WorkerRegistered
from veilnet.protocol.registration import TEEKind
from veilnet.testing.adversary import (
    AdversaryChain,
    EnclaveNetwork,
    MaliciousHost,
    dev_enclave_config,
)
from veilnet.testing.ledger import LEDGER_ANCHOR_HASH, build_block

pytestmark = pytest.mark.slow  # the module starts enclave processes

ATTACKER = SecretKey.derive(b"\x66" * 32, "attacker")
"""The attacker's own key: its HPKE public key is what a forged registration names."""


@dataclasses.dataclass
class Scene:
    net: EnclaveNetwork
    cluster: bytes

    @property
    def gk(self) -> MaliciousHost:
        return self.net.hosts["gk"]


@pytest.fixture(scope="module")
def scene() -> Iterator[Scene]:
    with EnclaveNetwork() as net:
        cluster = net.bootstrap()
        yield Scene(net, cluster)


def _next_honest(scene: Scene, *, events: int = 2) -> ChainBlock:
    """The next real block of the ledger, with ``events`` Registry logs, not applied yet."""
    for index in range(events):
        scene.net.ledger.set_measurement(bytes([0x70 + index]) * 32)
    return scene.net.ledger.mine()


def _apply_honest(scene: Scene, block: ChainBlock) -> None:
    for name in sorted(scene.net.hosts):
        scene.net.hosts[name].enclave.apply_block(block)


def _refused(host: MaliciousHost, block: ChainBlock, error: type[BlockRejected]) -> None:
    """The block raises exactly ``error`` and changes nothing the enclave reports."""
    before = host.enclave.status()
    with pytest.raises(error) as info:
        host.enclave.apply_block(block)
    assert type(info.value) is error
    assert host.enclave.status() == before


def _forged_events(scene: Scene) -> tuple[WorkerRegistered, ClusterWorkerAdded]:
    attacker = ATTACKER.address.raw
    return (
        WorkerRegistered(
            worker=attacker,
            operator=attacker,
            hpke_key=ATTACKER.public.x25519,
            tee_kind=int(TEEKind.TDX),
            measurement=b"\x42" * 32,
            quote_hash=keccak(b"no quote"),
            collateral_hash=b"\x00" * 32,
            quote=b"no quote",
            attested_block=0,
            attested_hash=b"\x00" * 32,
            registration=b"\x00" * 32,
        ),
        ClusterWorkerAdded(cluster_id=scene.cluster, worker=attacker),
    )


def _with_receipts(block: ChainBlock, receipts: tuple[bytes, ...]) -> ChainBlock:
    return dataclasses.replace(block, receipts=receipts)


def _forged_receipts(scene: Scene) -> tuple[bytes, ...]:
    """Receipts that carry the forged registration and membership as the Registry's logs."""
    head = scene.gk.enclave.status().head
    assert head is not None
    forged, _ = build_block(
        chain_id=scene.net.config.chain_id,
        registry=scene.net.config.registry,
        bus=scene.net.config.bus,
        parent_hash=head.hash,
        number=head.number + 1,
        timestamp=head.timestamp + 2,
        events=_forged_events(scene),
    )
    return forged.receipts


def test_a_forged_registration_and_membership_yield_no_cluster_key(scene: Scene) -> None:
    """The review's attack: a gatekeeper's host forges ``WorkerRegistered`` for its own key and
    ``ClusterWorkerAdded`` to c1. Every way of handing it in is refused; no key share leaves."""
    head = scene.gk.enclave.status().head
    assert head is not None
    own_chain = AdversaryChain(scene.net.config)
    own_chain.hashes[head.number] = head.hash
    signed_by_attacker = own_chain.block(
        head.number + 1, *_forged_events(scene), timestamp=head.timestamp + 2, signer=ATTACKER
    )
    _refused(scene.gk, signed_by_attacker, FinalityUnproven)
    unsigned = dataclasses.replace(signed_by_attacker, evidence=b"")
    _refused(scene.gk, unsigned, FinalityUnproven)

    honest = _next_honest(scene)
    # the honest, signed header with the forged logs slipped into its receipts
    _refused(
        scene.gk, _with_receipts(honest, honest.receipts + _forged_receipts(scene)), BlockUnproven
    )
    _refused(scene.gk, _with_receipts(honest, _forged_receipts(scene)), BlockUnproven)
    # a header rebuilt around the forged receipts, carrying the honest block's signature
    rebuilt = _reheader(honest, receipts=_forged_receipts(scene))
    _refused(scene.gk, rebuilt, FinalityUnproven)

    before = len(scene.net.egress)
    _apply_honest(scene, honest)  # the real block still applies: nothing was half-taken
    assert scene.net.egress[before:] == []
    status = scene.gk.enclave.status()
    assert status.head is not None and status.head.hash == keccak(honest.header)


def _reheader(
    block: ChainBlock, *, receipts: tuple[bytes, ...] | None = None, **fields: int
) -> ChainBlock:
    """``block`` with header fields changed (RLP re-encoded, so it hashes anew) and the old
    evidence kept: what a host that edits a block can at best produce."""
    items = rlp.decode(block.header)
    index = {"timestamp": 11, "number": 8}
    for name, value in fields.items():
        items[index[name]] = rlp.sedes.big_endian_int.serialize(value)
    if receipts is not None:
        from veilnet.protocol.chain import bloom_of, decode_receipt, receipts_root

        items[5] = receipts_root(receipts)
        items[6] = bloom_of(log for receipt in receipts for log in decode_receipt(receipt)[1])
    return ChainBlock(
        header=rlp.encode(items),
        receipts=block.receipts if receipts is None else receipts,
        evidence=block.evidence,
    )


def test_an_altered_dropped_or_reordered_event_is_refused(scene: Scene) -> None:
    honest = _next_honest(scene, events=3)
    receipts = honest.receipts
    flipped = bytearray(receipts[1])
    flipped[-1] ^= 0x01  # the last byte of the log data: the MeasurementSet's ``allowed`` flag
    _refused(
        scene.gk, _with_receipts(honest, (receipts[0], bytes(flipped), receipts[2])), BlockUnproven
    )
    _refused(scene.gk, _with_receipts(honest, receipts[:1] + receipts[2:]), BlockUnproven)
    _refused(scene.gk, _with_receipts(honest, ()), BlockUnproven)  # all withheld
    _refused(
        scene.gk, _with_receipts(honest, (receipts[1], receipts[0], receipts[2])), BlockUnproven
    )
    _refused(scene.gk, _with_receipts(honest, receipts + receipts[:1]), BlockUnproven)
    _refused(scene.gk, _with_receipts(honest, (b"\x02\xc0", *receipts[1:])), BlockUnproven)
    _apply_honest(scene, honest)
    applied = scene.net.ledger.blocks[-1].events
    assert [type(e) for e in applied] == [MeasurementSet] * 3


def test_a_replayed_skipped_or_duplicated_block_is_refused(scene: Scene) -> None:
    ledger = scene.net.ledger
    _apply_honest(scene, _next_honest(scene, events=1))
    _refused(scene.gk, ledger.raw_blocks[-1], BlockRejected)  # the same block again
    _refused(scene.gk, ledger.raw_blocks[-3], BlockRejected)  # an older one
    skipped = _next_honest(scene, events=1)
    after = _next_honest(scene, events=1)
    _refused(scene.gk, after, BlockRejected)  # a block dropped before it
    _apply_honest(scene, skipped)
    _apply_honest(scene, after)


def test_a_fabricated_chain_another_chain_or_another_key_is_refused(scene: Scene) -> None:
    honest = _next_honest(scene, events=1)
    fields = decode_header(honest.header)
    chain = AdversaryChain(scene.net.config)
    chain.hashes[fields.number - 1] = fields.parent_hash
    kwargs = {"timestamp": fields.timestamp}
    # valid hashes and continuity, but no evidence, or evidence that is not a signature
    _refused(scene.gk, dataclasses.replace(honest, evidence=b""), FinalityUnproven)
    _refused(scene.gk, dataclasses.replace(honest, evidence=b"\x01" * 65), FinalityUnproven)
    # the network's sequencer key, but signing for another chain id
    other_chain = chain.block(fields.number, chain_id=1, **kwargs)
    _refused(scene.gk, _with_receipts(other_chain, other_chain.receipts), FinalityUnproven)
    # a well-formed chain signed by a key that is not the network's sequencer
    _refused(scene.gk, chain.block(fields.number, signer=ATTACKER, **kwargs), FinalityUnproven)
    # a signature of the real sequencer over another block (a different hash)
    _refused(
        scene.gk,
        dataclasses.replace(
            honest, header=_reheader(honest, timestamp=fields.timestamp + 1).header
        ),
        FinalityUnproven,
    )
    _apply_honest(scene, honest)


def test_the_block_time_is_the_verified_headers(scene: Scene) -> None:
    honest = _next_honest(scene, events=1)
    fields = decode_header(honest.header)
    for chosen in (fields.timestamp + 3600, fields.timestamp - 1, 0):
        _refused(scene.gk, _reheader(honest, timestamp=chosen), FinalityUnproven)
    _apply_honest(scene, honest)
    head = scene.gk.enclave.status().head
    assert head is not None and head.timestamp == fields.timestamp


def test_a_header_that_does_not_decode_is_refused(scene: Scene) -> None:
    honest = _next_honest(scene, events=1)
    for header in (b"", b"\xc0", honest.header[:-1], rlp.encode([b"\x01"] * 15)):
        _refused(scene.gk, dataclasses.replace(honest, header=header), BlockUnproven)
    _apply_honest(scene, honest)


def test_an_older_checkpoint_cannot_replay_applied_blocks_or_accept_forged_ones(
    scene: Scene,
) -> None:
    """Restoring an older sealed checkpoint moves the trusted start back only to a block this
    core applied itself: blocks before it are replays, and the next one still needs evidence."""
    old = scene.gk.enclave.checkpoint().sealed
    old_head = scene.gk.enclave.status().head
    assert old_head is not None
    _apply_honest(scene, _next_honest(scene, events=1))
    with MaliciousHost() as restored:
        booted = restored.enclave.boot(wire.Boot(config=scene.net.config, checkpoint=old))
        assert booted.head == old_head
        _refused(restored, scene.net.ledger.raw_blocks[old_head.number - 1], BlockRejected)
        chain = AdversaryChain(scene.net.config)
        chain.hashes[old_head.number] = old_head.hash
        _refused(restored, chain.block(old_head.number + 1, signer=ATTACKER), FinalityUnproven)
        restored.enclave.apply_block(scene.net.ledger.raw_blocks[old_head.number])


def test_a_fresh_core_starts_only_from_the_measured_anchor() -> None:
    with MaliciousHost() as host:
        chain = AdversaryChain()
        host.enclave.boot(wire.Boot(config=chain.config))
        _refused(host, chain.block(1, parent=b"\x07" * 32), BlockRejected)
        _refused(host, chain.block(2), BlockRejected)  # not the anchor's successor
        host.enclave.apply_block(chain.block(1))


def test_under_rpc_quorum_nothing_applies_without_the_cores_own_certification() -> None:
    """A host that skips ``certify``, or whose relay reaches no endpoint, gets no block in."""
    trust = ChainTrust(
        anchor_number=0,
        anchor_hash=LEDGER_ANCHOR_HASH,
        policy=POLICY_RPC_QUORUM,
        rpc_endpoints=("rpc-a.example:443/", "rpc-b.example:443/", "rpc-c.example:443/"),
        rpc_threshold=2,
        rpc_ca_pem=trustme.CA().cert_pem.bytes(),
    )
    config = dev_enclave_config(chain_trust=trust)
    with MaliciousHost() as host:
        host.enclave.boot(wire.Boot(config=config))
        chain = AdversaryChain(config)
        block = chain.block(1)  # even the sequencer's signature counts for nothing here
        _refused(host, block, FinalityUnproven)
        with pytest.raises(QuorumNotReached) as info:
            host.enclave.certify([1], lambda kind, body: b"")  # every endpoint "closed"
        assert info.value.details["reasons"] == ["tls_failed:handshake"] * 3
        _refused(host, block, FinalityUnproven)
