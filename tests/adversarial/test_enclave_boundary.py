"""A malicious host against a real enclave process: only bytes cross, only the interface's
operations exist, and every bad frame gets a typed failure while the enclave keeps serving."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from veilnet.codec import encode_record
from veilnet.protocol import enclave as wire
from veilnet.protocol.errors import BlockRejected, CheckpointInvalid, QueryRejected
from veilnet.protocol.registration import register_worker_calldata
from veilnet.testing.adversary import MaliciousHost, dev_enclave_config, empty_block

pytestmark = pytest.mark.slow  # each module starts one enclave process


@pytest.fixture(scope="module")
def host() -> Iterator[MaliciousHost]:
    with MaliciousHost() as malicious:
        malicious.enclave.boot(wire.Boot(config=dev_enclave_config()))
        malicious.enclave.apply_block(empty_block(1))
        yield malicious


def test_the_interface_is_exactly_its_operations() -> None:
    from veilnet.enclave import EnclaveService

    service = EnclaveService()
    assert set(service._ops) == wire.OPS
    # None hands out keys, plaintext state or a prepared query for the host to edit and sign;
    # "jobs" hands out results already signed by the contract key, which the consumer checks
    # (an edited one is refused: tests/chain/test_chain_consumer.py); "queries" answers each
    # query as "query" would (tests/adversarial/test_query_batch.py).
    assert {
        "hello",
        "boot",
        "apply_block",
        "certify",
        "query",
        "queries",
        "attest",
        "checkpoint",
        "registration",
        "register_transaction",
        "status",
        "contract",
        "snapshot",
        "sync",
        "collateral",
        "jobs",
    } == wire.OPS


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"\x00\x00\x00\x03abc", "enclave_frame_invalid"),  # not a record
        (wire.frame(wire.Call(op="export_keys", body=b"")), "enclave_frame_invalid"),
        (wire.frame(wire.Call(op="query", body=b"\x01" * 40)), QueryRejected.code),
        (wire.frame(wire.Call(op="apply_block", body=b"junk")), "codec_unknown_version"),
        (wire.frame(wire.Call(op="attest", body=b"short")), "enclave_frame_invalid"),
        (wire.frame(wire.Call(op="registration", body=b"\x01")), "enclave_frame_invalid"),
        (wire.frame(wire.Call(op="sign_transaction", body=b"{}")), "enclave_frame_invalid"),
        (wire.frame(wire.Call(op="register_transaction", body=b"[1]")), "codec_unknown_version"),
        (wire.frame(wire.Call(op="checkpoint", body=b"")), None),  # allowed: sealed bytes
        # a call in the codec's record layout: a call has one encoding, its own
        (
            wire.frame_bytes(encode_record(wire.Call(op="status", body=b""))),
            "enclave_frame_invalid",
        ),
        (wire.frame_bytes(b"\xc1\x09query"), "enclave_frame_invalid"),  # op cut short
        (wire.frame_bytes(b"\xc1\x02\xff\xfe"), "enclave_frame_invalid"),  # op not UTF-8
        (wire.frame_bytes(b"\xc2"), "enclave_frame_invalid"),  # a result sent as a call
    ],
)
def test_bad_frames_get_typed_failures(host: MaliciousHost, frame: bytes, code: str | None) -> None:
    reply = host.send_raw(frame)
    if code is None:
        assert isinstance(reply, wire.Result)
        return
    assert isinstance(reply, wire.Failure)
    assert (
        reply.code.startswith(code.split("_")[0]) if code == "codec_invalid" else reply.code == code
    )
    assert host.enclave.status().head is not None  # still serving, state unchanged


def _register(**overrides: int) -> wire.RegisterTransaction:
    values = {"nonce": 0, "gas": 500_000, "max_fee_per_gas": 2, "max_priority_fee_per_gas": 1}
    values.update(overrides)
    return wire.RegisterTransaction(operator=b"\x0b" * 20, **values)


def test_the_identity_signs_only_the_registration_the_core_builds(host: MaliciousHost) -> None:
    """No operation signs host-chosen calldata: the one transaction is the core's own
    ``register_worker``, to the configured Registry, with its own key and a fresh quote."""
    from eth_account import Account
    from eth_account.typed_transactions import TypedTransaction
    from hexbytes import HexBytes

    config = dev_enclave_config()
    signed = host.enclave.register_transaction(_register(nonce=7))
    tx = TypedTransaction.from_bytes(HexBytes(signed.raw)).as_dict()
    assert bytes(tx["to"]) == config.registry and tx["nonce"] == 7 and tx["value"] == 0
    assert tx["chainId"] == config.chain_id
    assert bytes(tx["data"]) == register_worker_calldata(signed.request)
    assert signed.request.operator == b"\x0b" * 20
    sender = Account.recover_transaction(signed.raw)
    assert bytes.fromhex(sender[2:]) == host.enclave.status().address == signed.request.worker
    for bad in (_register(gas=20_000_000), _register(max_priority_fee_per_gas=3)):
        reply = host.send_raw(wire.frame(wire.Call(op="register_transaction", body=bad.to_bytes())))
        assert isinstance(reply, wire.Failure) and reply.code == "policy_rejected"


def test_the_host_chooses_the_deposit_only_within_the_cores_bound(host: MaliciousHost) -> None:
    """The registration deposit is the one value the host picks (its operator's money, the
    Registry refunds it): the core sends what is asked, up to ``MAX_REGISTRATION_DEPOSIT``, and
    signs nothing that would empty the identity beyond it."""
    from eth_account.typed_transactions import TypedTransaction
    from hexbytes import HexBytes

    from veilnet.protocol.limits import MAX_REGISTRATION_DEPOSIT

    signed = host.enclave.register_transaction(_register(deposit=10**15))
    assert TypedTransaction.from_bytes(HexBytes(signed.raw)).as_dict()["value"] == 10**15
    for bad in (_register(deposit=MAX_REGISTRATION_DEPOSIT + 1), _register(deposit=-1)):
        reply = host.send_raw(wire.frame(wire.Call(op="register_transaction", body=bad.to_bytes())))
        assert isinstance(reply, wire.Failure) and reply.code == "policy_rejected"


def test_an_oversized_frame_closes_only_that_connection(host: MaliciousHost) -> None:
    too_big = (wire.MAX_FRAME_BYTES + 1).to_bytes(wire.FRAME_HEADER_BYTES, "big")
    assert host.send_raw(too_big) is None
    assert host.enclave.hello().version == wire.ENCLAVE_INTERFACE_VERSION


def test_blocks_that_do_not_extend_the_chain_change_nothing(host: MaliciousHost) -> None:
    before = host.enclave.status()
    with pytest.raises(BlockRejected):
        host.enclave.apply_block(empty_block(5, parent=b"\x09" * 32))
    assert host.enclave.status() == before


def test_a_second_boot_and_a_forged_checkpoint_are_refused(host: MaliciousHost) -> None:
    from veilnet.worker.enclave import EnclaveFailed

    with pytest.raises(EnclaveFailed) as info:
        host.enclave.boot(wire.Boot(config=dev_enclave_config()))
    assert info.value.details["enclave_code"] == "enclave_already_booted"
    with MaliciousHost() as fresh, pytest.raises(CheckpointInvalid):
        fresh.enclave.boot(
            wire.Boot(config=dev_enclave_config(), checkpoint=b"\x01forged checkpoint")
        )


def test_the_enclave_reports_the_configuration_it_was_built_from(host: MaliciousHost) -> None:
    status = host.enclave.status()
    assert status.config_digest == dev_enclave_config().network_digest
    assert status.config_digest != dev_enclave_config(registry=b"\x05" * 20).network_digest
    assert status.tee == "tdx"  # the dev TEE issues TDX quotes


_HOST_ONLY = """
import sys
from veilnet.codec import encode_record
from veilnet.protocol import enclave as wire
from eth_hash.auto import keccak
from veilnet.chain.sequencer import sign_block
from veilnet.crypto import SecretKey
from veilnet.protocol.chain import ChainBlock, ChainTrust, encode_header
from veilnet.worker import WorkerHost  # the whole host package, API included
from veilnet.worker.enclave import Enclave, ProcessEnclave

sequencer = SecretKey.derive(b"\x5e" * 32, "ledger sequencer")
anchor = keccak(b"veil ledger anchor")
trust = ChainTrust(anchor_number=0, anchor_hash=anchor, policy="sequencer",
    sequencer=sequencer.address.raw)
config = wire.EnclaveConfig(chain_id=31337, registry=b"\x03" * 20, bus=b"\x04" * 20,
    chain_trust=trust, key_window_blocks=200, commitment_interval=0, heartbeat_interval=0,
    max_confidence_level=3, tee="dev", dev_network_seed=b"veilnet-adversary-network-seed-0")
enclave = Enclave(ProcessEnclave())
booted = enclave.boot(wire.Boot(config=config))
header = encode_header(parent_hash=anchor, number=1, timestamp=1767225602)
evidence = sign_block(sequencer, chain_id=31337, registry=b"\x03" * 20, number=1,
    block_hash=keccak(header))
enclave.apply_block(ChainBlock(header=header, evidence=evidence))
assert enclave.status().head.number == 1
assert len(enclave.attest(bytes(32)).quote) > 0
enclave.close()
core_code = ("veilnet.runtime", "veilnet.sandbox", "veilnet.enclave", "veilnet.testing")
loaded = sorted(m for m in sys.modules if m.startswith(core_code))
print(loaded)
assert not loaded, loaded
"""


def test_the_host_process_holds_no_core() -> None:
    """Booting, applying, attesting through the enclave loads no core code in the host."""
    result = subprocess.run(
        [sys.executable, "-c", _HOST_ONLY], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize(
    "url",
    [
        "ftp://w1.example.org/",
        "http://user:secret@w1.example.org/",
        "https://w1.example.org/?next=evil",
        "https://w1.example.org/#frag",
        "https://w1 example.org/",
        "https://w1.example.org:0/",
        "https://" + "a" * 250 + ".org/",
        "http://under_score.example/",
    ],
)
def test_the_core_publishes_only_an_api_url_a_client_could_dial(
    host: MaliciousHost, url: str
) -> None:
    """The host names the URL its worker serves at, but the core signs the registration that
    publishes it: a URL no client could dial (or one carrying credentials) is refused, by both
    operations, and nothing is signed."""
    for call in (
        wire.Call(op="register_transaction", body=_register(api_url=url).to_bytes()),
        wire.Call(op="registration", body=b"\x0b" * 20 + url.encode()),
    ):
        reply = host.send_raw(wire.frame(call))
        assert isinstance(reply, wire.Failure) and reply.code == "policy_rejected", url


def test_the_api_url_the_host_names_is_in_the_signed_registration(host: MaliciousHost) -> None:
    from eth_account.typed_transactions import TypedTransaction
    from hexbytes import HexBytes

    from veilnet.codec import abi_decode

    url = "https://w1.example.org:8443"
    signed = host.enclave.register_transaction(_register(api_url=url))
    data = bytes(TypedTransaction.from_bytes(HexBytes(signed.raw)).as_dict()["data"])
    types = ["address", "bytes", "uint8", "bytes32", "bytes", "bytes32", "uint256", "string"]
    assert abi_decode(types, data[4:])[-1] == url == signed.request.api_url
    assert host.enclave.registration(b"\x0b" * 20, api_url=url).api_url == url
