"""Trust decisions: only attested, allowed workers get keys; forged messages are ignored; no key
byte leaves the core in plaintext."""

from __future__ import annotations

import dataclasses

import pytest

from veilnet.attestation import Policy
from veilnet.codec import encode
from veilnet.crypto import Binding, SecretKey, seal_key_for
from veilnet.protocol import envelopes as proto
from veilnet.protocol import topics
from veilnet.runtime.adapters import PolicyVerifier, TEEPlatform
from veilnet.runtime.egress import Outbox
from veilnet.sandbox import AgentRuntime
from veilnet.tee import DevEnclave
from veilnet.testing import Network, Revert, cluster_id_of
from veilnet.testing.network import NETWORK_SEED

from .conftest import EXAMPLES, OWNER


def _endorsed(net: Network, name: str) -> bool:
    return net.ledger.workers[net.cores[name].address].confidence > 0


def test_quote_with_a_disallowed_measurement_gets_no_endorsement(network: Network) -> None:
    """A worker claims an allowed measurement but its quote shows other code."""
    rogue_platform = TEEPlatform(DevEnclave(NETWORK_SEED, kind="sgx", allow_insecure_dev_tee=True))
    network.platforms["rogue"] = rogue_platform
    rogue = network.add_core("rogue")
    request = rogue.registration(operator=b"\x0b" * 20)
    allowed = network.cores["w1"].platform.measurement
    network.ledger.register_worker(dataclasses.replace(request, measurement=allowed))
    network.settle()
    assert not _endorsed(network, "rogue")
    with pytest.raises(Revert, match="not endorsed"):
        network.ledger.add_cluster_worker(cluster_id_of("c1"), rogue.address)


def test_stolen_quote_bound_to_another_worker_is_refused(network: Network) -> None:
    thief = network.add_core("thief")
    victim_request = network.cores["w1"].registration(operator=b"\x0b" * 20)
    own = thief.registration(operator=b"\x0b" * 20)
    network.ledger.register_worker(dataclasses.replace(own, quote=victim_request.quote))
    network.settle()
    assert not _endorsed(network, "thief")


class _ProductionNetwork(Network):
    def verifier(self) -> PolicyVerifier:
        root = DevEnclave(NETWORK_SEED, allow_insecure_dev_tee=True).trust_root
        return PolicyVerifier(policy=Policy(), root=root)


def test_dev_quotes_get_nothing_under_a_production_policy(engine: AgentRuntime) -> None:
    net = _ProductionNetwork(engine=engine)
    net.register("gk")
    net.settle()
    net.ledger.add_gatekeeper(net.cores["gk"].address)
    net.register("w1")
    net.settle()
    assert net.cores["gk"].state.master is not None  # the gatekeeper still runs...
    assert not _endorsed(net, "w1")  # ...but endorses no dev quote
    assert not _endorsed(net, "gk")


def test_forged_key_shares_are_ignored(network: Network) -> None:
    """A registered worker posts a 'cluster key share' and a 'master history' to w1."""
    mallory = network.register("mallory")
    network.settle()
    w1 = network.cores["w1"]
    bogus = SecretKey.derive(b"\x66" * 32, "bogus")
    cluster = cluster_id_of("c1")
    index = w1.workers[w1.address].encryption_index  # what a real share is wrapped to
    wrapped = seal_key_for(
        w1.workers[w1.address].encryption_key,
        bogus,
        binding=Binding(
            chain_id=network.ledger.chain_id,
            target=w1.address + cluster,
            epoch=7,
            purpose=proto.PURPOSE_CLUSTER_KEY,
        ),
    )
    history = seal_key_for(
        w1.workers[w1.address].encryption_key,
        bogus,
        binding=Binding(
            chain_id=network.ledger.chain_id,
            target=w1.address,
            epoch=0,
            purpose=proto.PURPOSE_MASTER_KEY,
        ),
    )
    outbox = Outbox(
        network.ledger.domain, {mallory.address: network.ledger.next_seq.get(mallory.address, 0)}
    )
    outbox.emit(
        mallory.keys.identity,
        mallory.address,
        topics.TOPIC_CLUSTER_KEY_SHARE,
        encode([cluster, w1.address, [[7, index, wrapped]], 0, 1]),
    )
    outbox.emit(
        mallory.keys.identity,
        mallory.address,
        topics.TOPIC_MASTER_KEY_SHARE,
        encode(["history", w1.address, 0, index, history]),
    )
    for message in outbox.drain():
        assert network.ledger.post(message)
    keys_before = set(w1.keys.cluster_keys)
    network.settle()
    assert set(w1.keys.cluster_keys) == keys_before
    assert w1.keys.masters == {}


def test_forged_endorsement_from_a_worker_is_rejected_on_chain(network: Network) -> None:
    mallory = network.register("mallory")
    network.settle()
    from veilnet.codec import abi_encode

    outbox = Outbox(
        network.ledger.domain, {mallory.address: network.ledger.next_seq.get(mallory.address, 0)}
    )
    payload = abi_encode(
        ["address", "uint8", "bytes32"], ["0x" + mallory.address.hex(), 1, b"\x00" * 32]
    )
    outbox.emit(mallory.keys.identity, mallory.address, topics.TOPIC_ENDORSE, payload)
    network.ledger.post(outbox.drain()[0])
    network.settle()
    assert network.ledger.rejected and network.ledger.rejected[-1][2] == "wrong origin"


def _secrets_of(net: Network) -> list[bytes]:
    found = []
    for core in net.cores.values():
        keys = [core.keys.identity, *core.keys.masters.values(), *core.keys.cluster_keys.values()]
        for key in keys:
            found += [key._seed_bytes(), key._private_scalar()]
        for cid, rt in core.runtimes.items():
            contract = core.contracts[cid]
            k = core.keys.contract_key(contract.cluster, cid, contract.epoch)
            assert k is not None
            found += [k._seed_bytes(), k._private_scalar()]
            found += list(rt.state.values.values())
    return found


def test_no_key_or_state_byte_leaves_the_core_in_plaintext(network: Network) -> None:
    contract = network.deploy(OWNER, "py", (EXAMPLES / "vault.py").read_bytes(), init={})
    secret_value = b'"the-vault-secret-value-0123456789"'
    public, epoch = network.contract_key_info(contract)
    body = proto.CommandPlaintext(
        sender=OWNER.address.raw,
        nonce=1,
        kind="call",
        body=b'{"op": "put", "key": "k", "value": "the-vault-secret-value-0123456789"}',
    )
    network.ledger.push_command(
        contract,
        proto.seal_command(
            public, body, chain_id=network.ledger.chain_id, contract_id=contract, epoch=epoch
        ),
        sender=OWNER.address.raw,
    )
    network.settle()
    everything_out = b"".join(
        [core.checkpoint() + core.sealed_identity() for core in network.cores.values()]
        + [m.to_bytes() for m in network.posted]
        + [b.to_bytes() for b in network.ledger.blocks]
    )
    secrets = _secrets_of(network)
    assert any(
        secret_value in v for v in secrets
    )  # the vault really holds it, so the scan means something
    for secret in secrets:
        if len(secret) >= 16:
            assert secret not in everything_out
    assert b"the-vault-secret-value" not in everything_out
    for core in network.cores.values():
        assert "redacted" in repr(core.keys.identity)


def test_a_payload_too_big_for_the_bus_becomes_a_skip_notice(network: Network) -> None:
    """No message a core signs can be too big to post (which would block its origin for
    good): a payload above ``MAX_EGRESS_PAYLOAD`` is replaced by a ``TOPIC_SKIPPED`` notice
    naming its topic, hash and length; the Bus takes it and the next message follows."""
    from eth_abi import decode as abi_decode
    from eth_hash.auto import keccak

    from veilnet.protocol.limits import MAX_EGRESS_PAYLOAD

    w1 = network.cores["w1"]
    origin = w1.address
    outbox = Outbox(network.ledger.domain, {origin: network.ledger.next_seq.get(origin, 0)})
    big = b"\x07" * (MAX_EGRESS_PAYLOAD + 1)
    outbox.emit(w1.keys.identity, origin, topics.TOPIC_COLLATERAL, big)
    outbox.emit(w1.keys.identity, origin, topics.TOPIC_COLLATERAL, b"small")
    skipped, following = outbox.drain()
    assert skipped.topic == topics.TOPIC_SKIPPED
    assert abi_decode(["bytes32", "bytes32", "uint256"], skipped.payload) == (
        topics.TOPIC_COLLATERAL,
        keccak(big),
        len(big),
    )
    assert network.ledger.post(skipped) and network.ledger.post(following)
    exact = b"\x07" * MAX_EGRESS_PAYLOAD  # the limit itself is emitted as is
    outbox.emit(w1.keys.identity, origin, topics.TOPIC_COLLATERAL, exact)
    (message,) = outbox.drain()
    assert message.payload == exact and network.ledger.post(message)
