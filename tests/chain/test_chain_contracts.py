"""Registry and Bus rules on the embedded chain: every revert, every egress-driven effect."""

from __future__ import annotations

import pytest

from veilnet.chain import ContractReverted, egress_domain, sign_egress
from veilnet.chain.constants import DEFAULT_MAX_PAYLOAD, KIND_CLUSTER, KIND_CONTRACT, KIND_MASTER
from veilnet.chain.egress import (
    encode_cluster_key,
    encode_contract_key,
    encode_endorse,
    encode_master_key,
    encode_rotation_propose,
    topic,
)
from veilnet.chain.follower import Follower
from veilnet.chain.model import (
    ClusterKeySet,
    Command,
    ContractKeySet,
    EgressRejected,
    MasterKeyRotated,
    MasterKeySet,
    RotationConfirmed,
    RotationProposed,
    WorkerEndorsed,
    WorkerRegistered,
)
from veilnet.crypto import SecretKey, sign_typed
from veilnet.crypto.signing import Domain, MessageType
from veilnet.protocol.limits import MAX_EGRESS_PAYLOAD
from veilnet.protocol.rotation import prove_possession

from .conftest import MEASUREMENT, Net, key, register

STATE = topic("veil/egress/collateral")  # a topic the Bus logs and does not route
CLUSTER = b"\xc1" * 32


FAR = 2**40
"""An endorsement expiry far beyond any test's chain time."""


def _domain(net: Net) -> Domain:
    return egress_domain(net.deployment.addresses.chain_id, net.deployment.addresses.bus)


def _events(net: Net) -> list[object]:
    net.backend.mine(2)
    follower = Follower(net.network.client, net.deployment.addresses, start_block=0)
    return [e for b in follower.poll() for e in b.events]


def _reverts(reason: str, fn: object, *args: object, **kwargs: object) -> None:
    with pytest.raises(ContractReverted) as info:
        fn(*args, **kwargs)  # type: ignore[operator]
    assert info.value.code == "chain_reverted"
    assert reason in info.value.reason


def _contract(net: Net) -> bytes:
    net.network.create_cluster(net.admin, CLUSTER, net.admin.address)
    return net.network.deploy_contract(net.user, salt=b"\x01" * 32, cluster_id=CLUSTER, code=b"x")


def test_eip712_signature_is_recovered_by_the_evm(net: Net) -> None:
    signer = key("eip712")
    domain = _domain(net)
    assert net.network.view("Bus", "DOMAIN_SEPARATOR") == domain.separator
    values = {"origin": signer.address, "seq": 5, "topic": STATE, "payload": b"abc"}
    egress_type = MessageType(
        "Egress",
        (("origin", "address"), ("seq", "uint64"), ("topic", "bytes32"), ("payload", "bytes")),
    )
    signature = sign_typed(signer, domain, egress_type, values)
    digest = net.network.view("Bus", "egress_digest", signer.address, 5, STATE, b"abc")
    recovered = net.network.view("Bus", "recover", digest, signature)
    assert recovered.lower() == signer.address.hex.lower()


def test_post_accepts_next_sequence_first_copy_wins(net: Net) -> None:
    worker = key("w1")
    register(net, worker, poster=True)
    domain = _domain(net)
    first = sign_egress(worker, domain, seq=0, topic=STATE, payload=b"a")
    net.network.post(net.relayer, first)
    assert net.network.next_seq(worker.address) == 1
    _reverts("sequence already used", net.network.post, net.user, first)
    gap = sign_egress(worker, domain, seq=5, topic=STATE, payload=b"b")
    _reverts("sequence gap", net.network.post, net.user, gap)


def test_post_rejects_wrong_signer_unknown_origin_and_big_payload(net: Net) -> None:
    worker, other = key("w1"), key("w2")
    register(net, worker, poster=True)
    domain = _domain(net)
    good = sign_egress(worker, domain, seq=0, topic=STATE, payload=b"a")
    forged = sign_egress(other, domain, seq=0, topic=STATE, payload=b"a")
    from veilnet.protocol.egress import EgressMessage

    wrong = EgressMessage(
        origin=worker.address.raw, seq=0, topic=STATE, payload=b"a", signature=forged.signature
    )
    _reverts("wrong signer", net.network.post, net.relayer, wrong)
    tampered = EgressMessage(
        origin=worker.address.raw, seq=0, topic=STATE, payload=b"b", signature=good.signature
    )
    _reverts("wrong signer", net.network.post, net.relayer, tampered)
    _reverts("unknown origin", net.network.post, net.relayer, forged)
    big = sign_egress(
        worker, domain, seq=0, topic=STATE, payload=b"\x00" * (DEFAULT_MAX_PAYLOAD + 1)
    )
    _reverts("payload too big", net.network.post, net.relayer, big)


def test_push_command_rules(net: Net) -> None:
    contract_id = _contract(net)
    net.network.push_command(net.user, contract_id, b"c0")
    net.network.push_command(net.admin, contract_id, b"c1")
    _reverts(
        "payload too big",
        net.network.push_command,
        net.user,
        contract_id,
        b"\x00" * (DEFAULT_MAX_PAYLOAD + 1),
    )
    _reverts("unknown contract", net.network.push_command, net.user, b"\x09" * 32, b"c")
    _reverts("not owner or controller", net.network.set_paused, net.admin, contract_id, True)
    net.network.set_paused(net.user, contract_id, True)
    _reverts("contract paused", net.network.push_command, net.user, contract_id, b"c2")
    net.network.set_paused(net.user, contract_id, False)
    net.network.set_bus_params(
        net.admin, max_payload=DEFAULT_MAX_PAYLOAD, command_fee=10, fee_hook=None
    )
    _reverts("fee too low", net.network.push_command, net.user, contract_id, b"c2")
    net.network.push_command(net.user, contract_id, b"c2", value=10)
    commands = [e for e in _events(net) if isinstance(e, Command)]
    assert [(c.seq, c.payload) for c in commands] == [(0, b"c0"), (1, b"c1"), (2, b"c2")]
    assert commands[1].sender == net.admin.address


def test_governance_only(net: Net) -> None:
    not_owner = "ownable: caller is not the owner"
    _reverts(not_owner, net.network.set_measurement, net.user, b"\x01" * 32, True)
    _reverts(not_owner, net.network.create_cluster, net.user, CLUSTER, net.user.address)
    _reverts("rotation not due", net.network.lock_rotation, net.user)
    _reverts(
        not_owner, net.network.set_bus_params, net.user, max_payload=1, command_fee=0, fee_hook=None
    )
    _reverts("bus already set", net.network.set_bus, net.admin)
    # no limit below what a core may emit: a signed message that can never be posted would
    # block its origin (every later message a gap)
    for too_small in (1, MAX_EGRESS_PAYLOAD - 1):
        _reverts(
            "payload limit too small",
            net.network.set_bus_params,
            net.admin,
            max_payload=too_small,
            command_fee=0,
            fee_hook=None,
        )
    worker = key("w1")
    _reverts("not a registered worker", net.network.add_gatekeeper, net.admin, worker.address)


def test_registration_requires_allowed_measurement(net: Net) -> None:
    worker = key("w1")
    net.relayer.transact(worker.address, b"", value=10**18, gas=21_000)
    sender = net.network.sender(worker._private_scalar())
    _reverts(
        "measurement not allowed",
        net.network.register_worker,
        sender,
        operator=net.relayer.address,
        hpke_key=b"k" * 32,
        tee_kind=1,
        measurement=b"\x00" * 32,
        quote=b"q",
        collateral_hash=b"\x00" * 32,
    )


def test_full_key_lifecycle_through_egress(net: Net) -> None:
    """Genesis gatekeeper, master key, endorsement, cluster key, contract key, rotation."""
    network, domain = net.network, _domain(net)
    gk, worker = key("gk"), key("worker")
    register(net, gk, quote=b"gk-quote")
    register(net, worker, quote=b"worker-quote")
    network.add_gatekeeper(net.admin, gk.address)
    master = SecretKey.derive(b"master-seed-for-tests-0123456789", "m")
    seq = {gk.address.raw: 0, master.address.raw: 0}

    def post(signer: SecretKey, pair: tuple[bytes, bytes]) -> None:
        message = sign_egress(
            signer, domain, seq=seq.get(signer.address.raw, 0), topic=pair[0], payload=pair[1]
        )
        seq[signer.address.raw] = message.seq + 1
        network.post(net.relayer, message)

    post(gk, encode_master_key(master.address, master.public.x25519))
    assert network.origin_kind(master.address) == KIND_MASTER
    from eth_hash.auto import keccak

    registration = network.view("Registry", "registration_of", worker.address)
    post(master, encode_endorse(worker.address, 4, registration, FAR))
    assert network.view("Registry", "workers", worker.address)[4] == 4
    # A stale endorsement is refused by the Registry but still consumes the sequence.
    post(master, encode_endorse(worker.address, 5, keccak(b"old-quote"), FAR))
    assert network.next_seq(master.address) == 2
    network.create_cluster(net.admin, CLUSTER, net.admin.address)
    network.add_cluster_worker(net.admin, CLUSTER, worker.address)
    cluster_key = SecretKey.derive(master, "cluster", CLUSTER, 1)
    post(master, encode_cluster_key(CLUSTER, 1, cluster_key.address, cluster_key.public.x25519))
    assert network.origin_kind(cluster_key.address) == KIND_CLUSTER
    contract_id = network.deploy_contract(
        net.user, salt=b"\x05" * 32, cluster_id=CLUSTER, code=b"c"
    )
    contract_key = SecretKey.derive(cluster_key, "contract", contract_id)
    post(
        cluster_key,
        encode_contract_key(contract_id, 1, contract_key.address, contract_key.public.x25519),
    )
    assert network.origin_kind(contract_key.address) == KIND_CONTRACT
    network.lock_rotation(net.admin)
    new_master = SecretKey.derive(b"master-seed-for-tests-0123456789", "m2")
    # a single gatekeeper's proposal is also its confirmation: the rotation completes at once
    proof = prove_possession(
        new_master,
        chain_id=net.deployment.addresses.chain_id,
        registry=net.deployment.addresses.registry.raw,
        attempt=network.view("Registry", "rotation_attempt"),
        gatekeeper=gk.address.raw,
    )
    post(gk, encode_rotation_propose(1, new_master.address, new_master.public.x25519, proof))
    assert network.view("Registry", "master_key_address").lower() == new_master.address.hex.lower()
    assert network.view("Registry", "rotation_counter") == 1
    assert network.view("Registry", "rotation_locked") is False

    events = _events(net)
    kinds = [type(e) for e in events]
    for expected in (
        WorkerRegistered,
        MasterKeySet,
        WorkerEndorsed,
        EgressRejected,
        ClusterKeySet,
        ContractKeySet,
        RotationProposed,
        RotationConfirmed,
        MasterKeyRotated,
    ):
        assert expected in kinds, expected.__name__
    registered = [e for e in events if isinstance(e, WorkerRegistered)]
    assert registered[1].quote == b"worker-quote" and registered[1].measurement == MEASUREMENT
