"""The SDK's I/O-free query path against real enclave cores: envelopes, certificates, and every
check on a worker's answer, including each attack the issue lists (exact error codes)."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import pytest

from veilnet.codec import encode
from veilnet.crypto import Address, SecretKey
from veilnet.errors import VeilnetError
from veilnet.protocol import envelopes as proto
from veilnet.runtime.errors import QueryRejected as CoreQueryRejected
from veilnet.sdk import (
    AgentFailed,
    BaseClient,
    RequestTooLarge,
    ResponseInvalid,
    StaleBlock,
    UnknownBlock,
    WorkerUnverified,
)
from veilnet.sdk import constants as limits
from veilnet.testing.network import TEST_TIME, cluster_id_of

from .conftest import ALICE, MALLORY, Local, make_local


def _at(core) -> dict[str, object]:
    """Where a query goes: the core's worker address and its current boot."""
    return {"worker": Address(core.address), "boot_id": core.boot_id}


def _ask(local: Local, client: BaseClient, msg: object = None, *, worker: str = "w1"):
    core = local.net.cores[worker]
    pending = client.build_query(
        local.key(),
        kind="call",
        body=client.call_body(msg or {}),
        head=core.head.number,
        **_at(core),
    )
    return pending, core.query(pending.request)


def _sealed_query(local: Local, query_key: SecretKey, certificate: proto.QueryCertificate) -> bytes:
    """A ``{}`` query to the local contract, sealed under a session of ``query_key``."""
    key = local.key()
    session = proto.open_session(
        query_key,
        key.public_key,
        chain_id=local.net.ledger.chain_id,
        contract_id=key.contract_id,
        epoch=key.epoch,
        secret=os.urandom(32),
    )
    core = local.net.cores["w1"]
    return proto.build_query(
        session=session,
        certificate=certificate,
        request_id=os.urandom(32),
        kind="call",
        body=b"{}",
        worker=core.address,
        boot_id=core.boot_id,
        window=core.head.number,
    )


def _state(local: Local) -> bytes:
    return local.net.cores["w1"].state_root()


def test_verified_query_returns_value_worker_and_block(local: Local) -> None:
    client = local.client()
    pending, raw = _ask(local, client)
    opened = client.open(pending, raw)
    client.check_block(opened.response, local.view(opened.response.block_number))
    result = client.query_result(opened)
    assert result.value["count"] == 5
    assert result.worker.raw == local.net.cores["w1"].address
    assert result.block_number == local.net.cores["w1"].head.number
    assert len(result.state_commitment) == 32
    assert result.to_json()["verified"] is True


def test_command_outcome_is_readable_by_its_sender_only(local: Local) -> None:
    client = local.client()
    key = local.key()
    payload = client.seal_command(key, ALICE, "call", client.call_body({"by": 2}))
    seq = local.net.ledger.push_command(local.contract_id, payload, sender=ALICE.address.raw)
    local.net.settle()
    head = local.net.cores["w1"].head.number
    w1 = local.net.cores["w1"]
    pending = client.build_query(key, kind="outcome", body=encode(seq), head=head, **_at(w1))
    answer = client.answer(client.open(pending, w1.query(pending.request)))
    assert answer["status"] == "applied" and answer["ok"] is True and answer["result"] == 7
    assert answer["events"][0]["type"] == "counted"
    spy = local.client(wallet=MALLORY)
    pending = spy.build_query(key, kind="outcome", body=encode(seq), head=head, **_at(w1))
    with pytest.raises(CoreQueryRejected, match="sender"):
        local.net.cores["w1"].query(pending.request)


def test_command_nonces_are_monotonic(local: Local) -> None:
    client = local.client()
    nonces = [client.next_command_nonce() for _ in range(100)]
    assert nonces == sorted(set(nonces))


def test_certificate_is_reused_then_renewed_before_expiry(local: Local) -> None:
    client = local.client()
    first = client.certificate(ALICE, 100)
    assert (
        client.certificate(
            ALICE, 100 + limits.CERT_LIFETIME_BLOCKS - limits.CERT_RENEW_MARGIN_BLOCKS
        )
        is first
    )
    renewed = client.certificate(
        ALICE, 101 + limits.CERT_LIFETIME_BLOCKS - limits.CERT_RENEW_MARGIN_BLOCKS
    )
    assert renewed is not first
    renewed.certificate.verify()  # signed by the wallet over the canonical text


# ---- attacks from the issue ----------------------------------------------------------------


def test_replayed_query_is_refused_by_the_worker(local: Local) -> None:
    client = local.client()
    pending, _ = _ask(local, client)
    before = _state(local)
    with pytest.raises(CoreQueryRejected, match="already used") as info:
        local.net.cores["w1"].query(pending.request)
    assert info.value.code == "runtime_query_rejected"
    assert _state(local) == before


def test_replayed_response_is_refused_by_the_client(local: Local) -> None:
    client = local.client()
    _, old_raw = _ask(local, client)
    pending, _ = _ask(local, client)
    with pytest.raises(ResponseInvalid, match="another request") as info:
        client.open(pending, old_raw)
    assert info.value.code == "sdk_response_invalid"


def test_expired_certificate_is_refused(local: Local) -> None:
    core = local.net.cores["w1"]
    ephemeral = SecretKey.generate()
    expires = core.head.number - 1
    cert = proto.QueryCertificate(
        wallet=ALICE.address.raw,
        ephemeral_key=ephemeral.public.x25519,
        chain_id=local.net.ledger.chain_id,
        expires_block=expires,
        signature=ALICE.sign_text(
            proto.certificate_text(local.net.ledger.chain_id, ephemeral.public.x25519, expires)
        ),
    )
    request = _sealed_query(local, ephemeral, cert)
    with pytest.raises(CoreQueryRejected, match="expired") as info:
        core.query(request)
    assert info.value.code == "runtime_query_rejected"


def test_query_certified_by_another_wallet_is_refused(local: Local) -> None:
    """Mallory claims to be Alice: the certificate names Alice but Mallory signed it."""
    core = local.net.cores["w1"]
    ephemeral = SecretKey.generate()
    expires = core.head.number + 50
    text = proto.certificate_text(local.net.ledger.chain_id, ephemeral.public.x25519, expires)
    cert = proto.QueryCertificate(
        wallet=ALICE.address.raw,
        ephemeral_key=ephemeral.public.x25519,
        chain_id=local.net.ledger.chain_id,
        expires_block=expires,
        signature=MALLORY.sign_text(text),
    )
    request = _sealed_query(local, ephemeral, cert)
    with pytest.raises(CoreQueryRejected, match="not signed by its wallet") as info:
        core.query(request)
    assert info.value.code == "runtime_query_rejected"


def test_a_certificate_copied_off_the_wire_is_useless_without_its_key(local: Local) -> None:
    """Mallory replays Alice's valid certificate with a session of her own: the worker derives
    the session from the certified key, so her request does not even open."""
    client = local.client()
    pending, _ = _ask(local, client)
    alices = proto.QueryRequest.from_bytes(pending.request).certificate
    core = local.net.cores["w1"]
    request = _sealed_query(local, SecretKey.derive(b"\x67" * 32, "mallory-query-key"), alices)
    before = _state(local)
    with pytest.raises(CoreQueryRejected) as info:
        core.query(request)
    assert info.value.code == "runtime_query_rejected"
    assert _state(local) == before


def test_a_request_with_a_tampered_session_or_body_is_refused(local: Local) -> None:
    client = local.client()
    pending, _ = _ask(local, client)
    request = proto.QueryRequest.from_bytes(pending.request)
    core = local.net.cores["w1"]
    for bad in (
        dataclasses.replace(request, session=request.session[:-1] + b"\x00"),
        dataclasses.replace(request, ciphertext=request.ciphertext[:-1] + b"\x00"),
        dataclasses.replace(request, request_id=os.urandom(32)),
        dataclasses.replace(request, request_id=b"\x01" * 31),
    ):
        with pytest.raises(CoreQueryRejected) as info:
            core.query(bad.to_bytes())
        assert info.value.code == "runtime_query_rejected"


def test_a_request_sealed_as_session_envelope_0x51_is_refused_by_name(local: Local) -> None:
    """A client of the per-request keys (envelope 0x51, before 0x52) gets a refusal naming both
    envelopes, not an opaque failure to decrypt, and the core remembers nothing of it."""
    client = local.client()
    pending, _ = _ask(local, client)
    request = proto.QueryRequest.from_bytes(pending.request)
    old = dataclasses.replace(request, ciphertext=b"\x51" + request.ciphertext[1:])
    before = _state(local)
    with pytest.raises(CoreQueryRejected, match=r"0x51 is not supported.*seals 0x52") as info:
        local.net.cores["w1"].query(old.to_bytes())
    assert info.value.code == "runtime_query_rejected"
    assert _state(local) == before


def _resign(local: Local, response: proto.QueryResponse, signer: SecretKey, **changes: object):
    fields = {**response.signed_values(), **changes}
    return proto.sign_response(signer, local.client().domain, **fields)


def test_response_from_an_unregistered_worker_is_refused(local: Local) -> None:
    client = local.client()
    pending, raw = _ask(local, client)
    impostor = SecretKey.generate()
    forged = _resign(local, proto.QueryResponse.from_bytes(raw), impostor)
    opened = client.open(pending, forged.to_bytes())  # well signed, by a stranger
    with pytest.raises(WorkerUnverified, match="not a registered worker") as info:
        client.check_registration(
            opened.worker,
            local.registry_record(opened.worker.raw),
            measurement_allowed=True,
            cluster=pending.cluster,
        )
    assert info.value.code == "sdk_worker_unverified"


def test_registered_but_unendorsed_or_foreign_worker_is_refused(local: Local) -> None:
    client = local.client()
    w1 = local.net.cores["w1"].address
    record = local.registry_record(w1)
    unendorsed = dataclasses.replace(record, confidence=0)
    with pytest.raises(WorkerUnverified, match="endorsed"):
        client.check_registration(
            local.net.cores["w1"].keys.identity.address,
            unendorsed,
            measurement_allowed=True,
            cluster=None,
        )
    with pytest.raises(WorkerUnverified, match="no longer allows"):
        client.check_registration(
            local.net.cores["w1"].keys.identity.address,
            record,
            measurement_allowed=False,
            cluster=None,
        )
    with pytest.raises(WorkerUnverified, match="cluster"):
        client.check_registration(
            local.net.cores["w1"].keys.identity.address,
            record,
            measurement_allowed=True,
            cluster=b"\x09" * 32,
        )
    with pytest.raises(WorkerUnverified, match="expired") as info:
        client.check_registration(
            local.net.cores["w1"].keys.identity.address,
            record,
            measurement_allowed=True,
            cluster=None,
            endorsed_until=1_000,
            now=1_000,
        )
    assert info.value.details["endorsed_until"] == 1_000
    client.check_registration(
        local.net.cores["w1"].keys.identity.address,
        record,
        measurement_allowed=True,
        cluster=None,
        endorsed_until=1_001,
        now=1_000,
    )
    assert record.confidence >= 1
    assert record.measurement == local.net.cores["w1"].platform.measurement


def test_registration_is_read_again_at_every_head_and_only_the_attestation_is_reused(
    local: Local,
) -> None:
    """A de-endorsed, removed or re-registered worker is refused from the next block the client
    sees, not 10 minutes later: the registry entry is cached for one head only, and a cached
    attestation counts only for the registration (quote hash) it checked."""
    client = local.client()
    w1 = local.net.cores["w1"].keys.identity.address
    record = local.registry_record(w1)
    client.remember_registration(w1, 10, record, True, 2**40)
    assert client.cached_registration(w1, 10) == (record, True, 2**40)
    assert client.cached_registration(w1, 11) is None  # a new head: read it again
    verification = local.verification(w1)
    client.remember_verification(verification, 100.0, record.quote_hash)
    assert client.cached_verification(w1, 101.0, record.quote_hash) == verification
    assert client.cached_verification(w1, 101.0, b"\x01" * 32) is None  # re-registered
    client.forget_verification(w1)
    assert client.cached_registration(w1, 10) is None


def test_response_bound_to_an_unknown_block_is_refused(local: Local) -> None:
    """A registered worker signs an answer at a block the client's chain does not have."""
    client = local.client()
    pending, raw = _ask(local, client)
    worker_key = local.net.cores["w1"].keys.identity
    forked = _resign(
        local, proto.QueryResponse.from_bytes(raw), worker_key, block_hash=os.urandom(32)
    )
    opened = client.open(pending, forked.to_bytes())
    with pytest.raises(UnknownBlock) as info:
        client.check_block(opened.response, local.view(opened.response.block_number))
    assert info.value.code == "sdk_unknown_block"
    future = _resign(local, proto.QueryResponse.from_bytes(raw), worker_key, block_number=10**6)
    with pytest.raises(UnknownBlock):
        client.check_block(client.open(pending, future.to_bytes()).response, local.view(10**6))


def test_an_answer_against_the_registrys_verdict_is_refused(local: Local) -> None:
    """Where the Registry holds a commitment verdict for an answer's height, the commitment the
    worker signed must be it; at other heights there is nothing to compare."""
    answered = proto.QueryResponse.from_bytes(_ask(local, local.client())[1])
    height, cluster = answered.block_number, cluster_id_of("c1")
    client = local.client()
    client.config = local.config(commitment_interval=height)  # answers at `height` are checked
    assert client.verdict_due(cluster, height) and not client.verdict_due(cluster, height + 1)
    client.note_verdict(cluster, height, bytes(32), 50)  # none on chain yet: ask again later,
    assert not client.verdict_due(cluster, height, 50)  # once the client's head moved on
    assert client.verdict_due(cluster, height, 51)
    client.check_commitment(answered, cluster)
    client.note_verdict(cluster, height, answered.state_commitment)
    assert not client.verdict_due(cluster, height)
    client.check_commitment(answered, cluster)
    other = local.client()
    other.config = client.config
    other.note_verdict(cluster, height, b"\x66" * 32)
    with pytest.raises(WorkerUnverified, match="not its cluster's") as info:
        other.check_commitment(answered, cluster)
    assert info.value.details["block_number"] == height


def test_response_from_a_lagging_worker_is_stale(engine) -> None:
    local = make_local(engine)
    client = local.client()
    for _ in range(limits.DEFAULT_FINALITY + limits.DEFAULT_FRESHNESS_BLOCKS + 1):
        local.net.step(only=["gk", "w1"])  # w2 stops following the chain
    pending, raw = _ask(local, client, worker="w2")
    opened = client.open(pending, raw)
    with pytest.raises(StaleBlock) as info:
        client.check_block(opened.response, local.view(opened.response.block_number))
    assert info.value.code == "sdk_stale_block"
    # the same answer is fine for a client that allows more lag
    lenient = local.client(freshness_blocks=10_000)
    lenient.check_block(opened.response, local.view(opened.response.block_number))


@pytest.mark.parametrize("where", ["ciphertext", "block_number", "state_commitment", "signature"])
def test_tampered_response_is_refused(local: Local, where: str) -> None:
    client = local.client()
    pending, raw = _ask(local, client)
    response = proto.QueryResponse.from_bytes(raw)
    value = getattr(response, where)
    if isinstance(value, int):
        changed: object = value - 1
    else:
        changed = bytes([value[0] ^ 1]) + value[1:]
    tampered = dataclasses.replace(response, **{where: changed})
    with pytest.raises(ResponseInvalid) as info:
        client.open(pending, tampered.to_bytes())
    assert info.value.code == "sdk_response_invalid"


@pytest.mark.parametrize("raw", [b"", b"\x01garbage", os.urandom(64)])
def test_garbage_response_is_refused(local: Local, raw: bytes) -> None:
    client = local.client()
    pending, _ = _ask(local, client)
    with pytest.raises(ResponseInvalid):
        client.open(pending, raw)


def test_response_for_another_contract_is_refused(local: Local) -> None:
    client = local.client()
    pending, raw = _ask(local, client)
    other = dataclasses.replace(pending, contract_id=b"\x42" * 32)
    with pytest.raises(ResponseInvalid, match="another contract"):
        client.open(other, raw)


def test_oversized_request_is_refused_on_both_sides(local: Local) -> None:
    client = local.client()
    core = local.net.cores["w1"]
    with pytest.raises(RequestTooLarge) as info:
        client.build_query(
            local.key(),
            kind="call",
            body=b'"' + b"a" * limits.MAX_QUERY_REQUEST + b'"',
            head=core.head.number,
            **_at(core),
        )
    assert info.value.code == "sdk_request_too_large"
    with pytest.raises(CoreQueryRejected, match="larger"):
        core.query(b"\x01" * (limits.MAX_QUERY_REQUEST + 1))


def test_agent_error_is_a_typed_failure(local: Local) -> None:
    client = local.client()
    source = b"def init(args):\n    pass\n\ndef query(req):\n    raise ValueError('nope')\n"
    contract_id = local.net.ledger.deploy_contract(
        sender=ALICE.address.raw,
        salt=b"\x02" * 32,
        cluster_id=local.key().cluster,
        code=proto.pack_code("py", source),
    )
    local.net.settle()
    public, epoch = local.net.contract_key_info(contract_id)
    key = dataclasses.replace(local.key(), contract_id=contract_id, public_key=public, epoch=epoch)
    core = local.net.cores["w1"]
    pending = client.build_query(key, kind="call", body=b"{}", head=core.head.number, **_at(core))
    opened = client.open(pending, core.query(pending.request))
    with pytest.raises(AgentFailed) as info:
        client.query_result(opened)
    assert info.value.code == "sdk_agent_failed"
    assert info.value.details["agent_code"]


# ---- attestation ---------------------------------------------------------------------------


def _attestation(local: Local, nonce: bytes, worker: str = "w1") -> dict[str, object]:
    core = local.net.cores[worker]
    return {
        "address": "0x" + core.address.hex(),
        "quote": core.attest(nonce).hex(),
        "collateral": json.loads(core.platform.collateral()),
        "report_data": core.attestation_report_data(nonce).hex(),
    }


def _verify(client: BaseClient, local: Local, document: dict[str, object], nonce: bytes):
    core = local.net.cores["w1"]
    return client.verify_attestation_at(
        core.keys.identity.address,
        document,
        nonce=nonce,
        measurement=core.platform.measurement,
        confidence=1,
        cluster=local.key().cluster,
        url="http://w1",
        at=TEST_TIME,
    )


def test_fresh_attestation_verifies_under_the_dev_root(local: Local) -> None:
    client = local.client()
    nonce = os.urandom(32)
    verification = _verify(client, local, _attestation(local, nonce), nonce)
    assert verification.tee == "tdx" and "development" in verification.trust_root
    assert verification.to_json()["address"].lower() == "0x" + local.net.cores["w1"].address.hex()


@pytest.mark.parametrize("digest", ["ab" * 32, ""])
def test_a_worker_built_from_another_configuration_is_refused(local: Local, digest: str) -> None:
    """The live quote binds the enclave's configuration digest: a worker whose enclave was
    built for another network configuration (or a client with none to compare) fails."""
    client = BaseClient(
        local.config(config_digest=digest), wallet=ALICE, allow_insecure_dev_tee=True
    )
    nonce = os.urandom(32)
    with pytest.raises(WorkerUnverified):
        _verify(client, local, _attestation(local, nonce), nonce)


def test_the_dev_root_is_trusted_only_when_the_user_says_so(local: Local) -> None:
    """network.json says ``insecure_dev_tee`` (any parent folder may hold one): that alone
    trusts nothing; the same genuine dev attestation verifies once the user opts in."""
    nonce = os.urandom(32)
    document = _attestation(local, nonce)
    careful = BaseClient(local.config(insecure_dev_tee=True), wallet=ALICE)
    assert not careful.insecure_dev_tee
    with pytest.raises(WorkerUnverified) as info:
        _verify(careful, local, document, nonce)
    assert "allow_insecure_dev_tee=True" in info.value.message
    opted_in = BaseClient(
        local.config(insecure_dev_tee=True), wallet=ALICE, allow_insecure_dev_tee=True
    )
    assert _verify(opted_in, local, document, nonce).tee == "tdx"


@pytest.mark.parametrize("problem", ["old_nonce", "other_worker", "intel_root", "malformed"])
def test_bad_attestation_is_refused(local: Local, problem: str) -> None:
    nonce = os.urandom(32)
    client = local.client()
    document = _attestation(local, nonce)
    if problem == "old_nonce":
        document = _attestation(local, os.urandom(32))
    elif problem == "other_worker":
        document = _attestation(local, nonce, worker="w2")
    elif problem == "intel_root":
        client = BaseClient(local.config(), wallet=ALICE, allow_insecure_dev_tee=False)
    else:
        document = {"address": document["address"], "quote": "zz"}
    with pytest.raises(WorkerUnverified) as info:
        _verify(client, local, document, nonce)
    assert info.value.code == "sdk_worker_unverified"


def test_errors_carry_codes_and_no_plaintext(local: Local) -> None:
    client = local.client()
    pending, raw = _ask(local, client, {"secret": "hunter2"})
    response = proto.QueryResponse.from_bytes(raw)
    flipped = bytes([response.ciphertext[-1] ^ 1])  # never the same byte (a 0 byte was, 1 in 256)
    bad = dataclasses.replace(response, ciphertext=response.ciphertext[:-1] + flipped)
    with pytest.raises(VeilnetError) as info:
        client.open(pending, bad.to_bytes())
    assert "hunter2" not in str(info.value) and "hunter2" not in json.dumps(info.value.to_json())


def test_the_sdk_addresses_each_query_to_one_worker(local: Local) -> None:
    """The SDK names the worker it sends a query to: another replica refuses the same bytes."""
    from veilnet.protocol.errors import QueryRejected

    client = local.client()
    w1, w2 = local.net.cores["w1"], local.net.cores["w2"]
    pending = client.build_query(
        local.key(),
        kind="call",
        body=b"{}",
        head=w1.head.number,
        **_at(w1),
    )
    with pytest.raises(QueryRejected, match="another worker"):
        w2.query(pending.request)
    client.open(pending, w1.query(pending.request))


def _registered(local: Local, fresh: Any, **fields: Any) -> Any:
    """A ``WorkerRegistered`` log of w1 for the registration ``fresh`` (``fields`` override)."""
    from veilnet.chain import model as cm

    values = {
        "emitter": Address(local.net.ledger.registry),
        "tx_hash": b"\x00" * 32,
        "log_index": 0,
        "worker": Address(fresh.worker),
        "operator": Address(fresh.operator),
        "hpke_key": fresh.hpke_key,
        "tee_kind": fresh.tee_kind,
        "measurement": fresh.measurement,
        "quote_hash": b"\x01" * 32,
        "registration": b"\x0a" * 32,
        "collateral_hash": b"\x02" * 32,
        "attested_block": 0,
        **fields,
    }
    return cm.WorkerRegistered(**values)


def test_audit_reverifies_each_quote_a_reattestation_included(local: Local) -> None:
    """``veil audit`` re-checks every quote on chain: a ``WorkerReattested`` is judged as the
    registration before it with the fresh quote, bound to the block the chain recorded."""
    from veilnet.chain import model as cm

    client = local.client()
    core = local.net.cores["w1"]
    fresh = core.registration(b"\x0b" * 20)
    head = core.head
    common = {"emitter": Address(local.net.ledger.registry), "tx_hash": b"\x00" * 32}
    registered = _registered(
        local, fresh, block_number=1, quote=b"the first quote", attested_hash=b"\x03" * 32
    )
    reattested = cm.WorkerReattested(
        **common,
        block_number=head.number + 1,
        log_index=0,
        worker=Address(core.address),
        quote_hash=b"\x04" * 32,
        collateral_hash=b"\x05" * 32,
        quote=fresh.quote,
        attested_block=head.number,
        attested_hash=head.hash,
        registration=b"\x0b" * 32,
    )
    quotes = client.quotes_on_chain([registered], [reattested])
    assert [kind for kind, _ in quotes] == ["registration", "reattestation"]
    kind, event = quotes[1]
    assert (event.operator, event.quote, event.attested_hash) == (
        registered.operator,
        fresh.quote,
        head.hash,
    )
    entry = client.audit_entry(
        event,
        fresh.collateral,
        at=TEST_TIME,
        measurement_allowed=True,
        confidence_on_chain=1,
        kind=kind,
    )
    assert entry.passed, entry.reasons
    assert entry.to_json()["kind"] == "reattestation"
    moved = dataclasses.replace(event, attested_hash=b"\x06" * 32)  # not the block it binds
    failed = client.audit_entry(
        moved, fresh.collateral, at=TEST_TIME, measurement_allowed=True, confidence_on_chain=1
    )
    assert not failed.passed


def test_audit_with_a_pccs_judges_under_the_verifiers_own_collateral(local: Local) -> None:
    """``veil audit --pccs``: the client fetches each quote's collateral itself. A registrant
    that posted fresh collateral is judged as the PCCS says (here: collateral that expired
    long ago), and a PCCS that answers nothing is a failure with its reason, never a pass."""
    from veilnet.attestation.pccs import LocalPCCS
    from veilnet.tee import DevEnclave
    from veilnet.testing.network import NETWORK_SEED

    client = local.client()
    core = local.net.cores["w1"]
    fresh, head = core.registration(b"\x0b" * 20), core.head
    assert head is not None
    event = _registered(
        local,
        fresh,
        block_number=head.number + 1,
        quote=fresh.quote,
        attested_block=head.number,
        attested_hash=head.hash,
    )
    judge = {"at": TEST_TIME, "measurement_allowed": True, "confidence_on_chain": 1}
    posted = client.audit_entry(event, fresh.collateral, **judge)
    assert posted.passed, posted.reasons
    stale = DevEnclave(
        NETWORK_SEED, allow_insecure_dev_tee=True, collateral_issued_at=TEST_TIME - 400 * 86400
    ).collateral()
    with LocalPCCS(stale) as pccs:
        collateral, error = client.collateral_from_pccs(pccs.url, event.quote)
        assert error is None and pccs.requests
    entry = client.audit_entry(
        event, collateral, collateral_source=pccs.url, collateral_error=error, **judge
    )
    assert not entry.passed
    assert any(r.startswith("attestation_collateral_expired") for r in entry.reasons)
    assert entry.to_json()["collateral_source"] == pccs.url
    with LocalPCCS(stale) as gone:
        url = gone.url
    collateral, error = client.collateral_from_pccs(url, event.quote)
    entry = client.audit_entry(
        event, collateral, collateral_source=url, collateral_error=error, **judge
    )
    assert not entry.passed
    assert any(r.startswith("attestation_collateral_unavailable") for r in entry.reasons)
