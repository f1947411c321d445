"""Dev quotes per network seed through the real dcap-qvl path, and the policy rules on top."""

from __future__ import annotations

import dataclasses
import json

import pytest

from veilnet.attestation import (
    Measurement,
    Policy,
    ReplayGuard,
    TEEKind,
    confidence_level,
    measurement_id,
    parse_quote,
    verify_quote,
    verify_quote_at,
)
from veilnet.errors import VeilnetError
from veilnet.tee import DevEnclave

from .conftest import AT, ISSUED_AT, OTHER_SEED, SEED, TESTDATA

DEV = Policy.development()


def test_dev_pki_is_deterministic_per_seed(dev_tdx: DevEnclave) -> None:
    same = DevEnclave(SEED, kind="sgx", allow_insecure_dev_tee=True, collateral_issued_at=ISSUED_AT)
    other = DevEnclave(OTHER_SEED, allow_insecure_dev_tee=True, collateral_issued_at=ISSUED_AT)
    assert same.root_ca_der == dev_tdx.root_ca_der
    assert other.root_ca_der != dev_tdx.root_ca_der
    assert dev_tdx.collateral().to_json() == dev_tdx.collateral().to_json()


def test_quote_from_another_seed_is_rejected(dev_tdx: DevEnclave) -> None:
    other = DevEnclave(OTHER_SEED, allow_insecure_dev_tee=True, collateral_issued_at=ISSUED_AT)
    foreign = other.quote(bytes(64))
    with pytest.raises(VeilnetError) as info:
        verify_quote_at(foreign, dev_tdx.collateral(), at=AT, policy=DEV, root=dev_tdx.trust_root)
    assert info.value.code == "attestation_quote_unverified"


@pytest.mark.parametrize("kind", ["tdx", "sgx"])
def test_dev_quote_layout_matches_the_reference_mock(kind: str) -> None:
    enclave = DevEnclave(SEED, kind=kind, allow_insecure_dev_tee=True)
    ours = parse_quote(enclave.quote(bytes(64)))
    mock = parse_quote((TESTDATA / f"mock/dev_{kind}_quote").read_bytes())
    assert (ours.version, ours.tee, len(ours.body)) == (mock.version, mock.tee, len(mock.body))
    assert ours.qe_report[128:160] == mock.qe_report[128:160]  # QE MRSIGNER


def test_dev_enclave_requires_the_flag() -> None:
    with pytest.raises(VeilnetError) as info:
        DevEnclave(SEED)
    assert info.value.code == "tee_dev_not_allowed"


@pytest.mark.parametrize(
    ("status", "advisories", "level"),
    [
        ("UpToDate", (), 1),
        ("UpToDate", ("INTEL-SA-00615",), 2),
        ("SWHardeningNeeded", (), 2),
        ("ConfigurationNeeded", (), 3),
        ("ConfigurationAndSWHardeningNeeded", ("INTEL-SA-00289", "INTEL-SA-00615"), 3),
        ("SWHardeningNeeded", ("INTEL-SA-00999",), 4),
        ("OutOfDate", (), 4),
        ("OutOfDateConfigurationNeeded", (), 4),
        ("Revoked", (), 5),
        ("SomethingNew", (), 5),
    ],
)
def test_confidence_levels(status: str, advisories: tuple[str, ...], level: int) -> None:
    assert confidence_level(status, advisories) == level


@pytest.mark.parametrize(
    ("status", "advisories", "level", "accepted"),
    [
        ("SWHardeningNeeded", ("INTEL-SA-00615",), 2, True),
        ("OutOfDate", ("INTEL-SA-00999",), 4, False),
    ],
)
def test_tcb_status_through_dcap_qvl(
    status: str, advisories: tuple[str, ...], level: int, accepted: bool
) -> None:
    enclave = DevEnclave(
        SEED,
        allow_insecure_dev_tee=True,
        collateral_issued_at=ISSUED_AT,
        tcb_status=status,
        advisory_ids=advisories,
    )
    report = verify_quote_at(
        enclave.quote(bytes(64)), enclave.collateral(), at=AT, policy=DEV, root=enclave.trust_root
    )
    assert (report.status, report.advisory_ids, report.confidence_level) == (
        status,
        advisories,
        level,
    )
    assert report.accepted is accepted
    rejected = dataclasses.replace(DEV, rejected_advisories=frozenset(advisories))
    strict = verify_quote_at(
        enclave.quote(bytes(64)),
        enclave.collateral(),
        at=AT,
        policy=rejected,
        root=enclave.trust_root,
    )
    assert any(r.startswith("advisory_rejected") for r in strict.reasons)


def test_measurement_allowlist_and_ids(dev_tdx: DevEnclave, dev_sgx: DevEnclave) -> None:
    quote = dev_tdx.quote(bytes(64))
    allowed = Policy.development(allowed_measurements=frozenset({dev_tdx.measurement.id}))
    ok = verify_quote_at(
        quote, dev_tdx.collateral(), at=AT, policy=allowed, root=dev_tdx.trust_root
    )
    assert ok.accepted and ok.measurement_id == measurement_id(dev_tdx.measurement)
    assert len(ok.measurement_id) == 32
    other = Policy.development(allowed_measurements=frozenset({dev_sgx.measurement.id}))
    bad = verify_quote_at(quote, dev_tdx.collateral(), at=AT, policy=other, root=dev_tdx.trust_root)
    assert not bad.accepted and bad.reasons[0].startswith("measurement_not_allowed")
    with pytest.raises(VeilnetError) as info:
        bad.require_accepted()
    assert info.value.code == "attestation_rejected"
    # RTMR3 is not part of the id but has its own allowlist
    m = dev_tdx.measurement
    moved = Measurement.tdx(
        mrtd=m.mrtd, rtmr0=m.rtmr0, rtmr1=m.rtmr1, rtmr2=m.rtmr2, rtmr3=b"\1" * 48
    )
    assert moved.id == m.id
    rtmr3 = Policy.development(allowed_rtmr3=frozenset({b"\1" * 48}))
    report = verify_quote_at(
        quote, dev_tdx.collateral(), at=AT, policy=rtmr3, root=dev_tdx.trust_root
    )
    assert report.reasons[0].startswith("rtmr3_not_allowed")
    assert dev_sgx.measurement.id != dev_tdx.measurement.id
    assert dev_sgx.measurement.tee is TEEKind.SGX


def test_measurement_id_is_stable() -> None:
    m = Measurement.sgx(mr_enclave=b"\x55" * 32, mr_signer=b"\x66" * 32)
    assert m.id.hex() == "7de809ab76ca2cc6439436a6f7c0ea5e6df0ed9796d1af281ca632d8388dcde5"
    with pytest.raises(ValueError):
        Measurement.sgx(mr_enclave=b"\x55" * 31, mr_signer=b"\x66" * 32)


def test_report_data_binding_and_nonce(dev_sgx: DevEnclave) -> None:
    expected = bytes(range(64))
    quote = dev_sgx.quote(expected)
    args = {"at": AT, "policy": DEV, "root": dev_sgx.trust_root}
    col = dev_sgx.collateral()
    assert verify_quote_at(quote, col, expected_report_data=expected, **args).accepted  # type: ignore[arg-type]
    wrong = verify_quote_at(quote, col, expected_report_data=bytes(64), **args)  # type: ignore[arg-type]
    assert wrong.reasons == ("report_data_mismatch: the quote does not bind the expected data",)
    required = Policy.development(require_report_data=True)
    unbound = verify_quote_at(quote, col, at=AT, policy=required, root=dev_sgx.trust_root)
    assert unbound.reasons[0].startswith("report_data_unchecked")
    fresh = verify_quote_at(quote, col, nonce_issued_at=AT - 10, **args)  # type: ignore[arg-type]
    assert fresh.accepted
    stale = verify_quote_at(quote, col, nonce_issued_at=AT - 601, **args)  # type: ignore[arg-type]
    assert stale.reasons[0].startswith("nonce_stale")
    future = verify_quote_at(quote, col, nonce_issued_at=AT + 1, **args)  # type: ignore[arg-type]
    assert future.reasons[0].startswith("nonce_from_future")


def test_replay_guard_keys_on_report_data(dev_tdx: DevEnclave) -> None:
    guard = ReplayGuard(capacity=2)
    reports = [
        verify_quote_at(
            dev_tdx.quote(bytes([i]) * 64),
            dev_tdx.collateral(),
            at=AT,
            policy=DEV,
            root=dev_tdx.trust_root,
        )
        for i in range(3)
    ]
    guard.record(reports[0])
    with pytest.raises(VeilnetError) as info:
        guard.record(reports[0])
    assert info.value.code == "attestation_quote_replayed"
    guard.record(reports[1])
    guard.record(reports[2])
    assert len(guard) == 2 and guard.is_new(reports[0])


def test_policy_json_round_trip() -> None:
    policy = Policy(
        max_confidence_level=2,
        rejected_advisories=frozenset({"INTEL-SA-00615"}),
        allowed_measurements=frozenset({b"\x01" * 32}),
    )
    assert Policy.from_json(json.dumps(policy.to_json())) == policy
    for bad in ("[]", "{", '{"max_confidence_level": 9}', '{"allowed_measurements": ["zz"]}'):
        with pytest.raises(VeilnetError) as info:
            Policy.from_json(bad)
        assert info.value.code == "attestation_policy_invalid"


def test_verify_quote_reads_the_clock(dev_tdx: DevEnclave) -> None:
    enclave = DevEnclave(SEED, allow_insecure_dev_tee=True)  # collateral issued this hour
    report = verify_quote(
        enclave.quote(bytes(64)), enclave.collateral(), policy=DEV, root=enclave.trust_root
    )
    assert report.accepted
    with pytest.raises(VeilnetError) as info:
        verify_quote(dev_tdx.quote(bytes(64)), dev_tdx.collateral(), policy=Policy())
    assert info.value.code in {"attestation_collateral_expired", "attestation_wrong_root"}
