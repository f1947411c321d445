"""Hostile and broken inputs: flipped quote regions, bad collateral, wrong roots, odd sizes.
Every case ends in a typed error with a stable code, or (unsigned padding) in a report that
the replay guard counts as the same quote."""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from veilnet.attestation import (
    Collateral,
    DevAttestationRoot,
    Policy,
    ReplayGuard,
    TrustRoot,
    parse_quote,
    read_quote,
    verify_quote_at,
)
from veilnet.attestation.constants import MAX_QUOTE_SIZE
from veilnet.cli._main import main
from veilnet.errors import VeilnetError
from veilnet.tee import DevEnclave

from .conftest import AT, EXPECTED, ISSUED_AT, OTHER_SEED, TESTDATA, load_collateral, load_quote

DEV = Policy.development()


def _verify(enclave: DevEnclave, quote: bytes, **kwargs: Any) -> Any:
    return verify_quote_at(
        quote, enclave.collateral(), at=AT, policy=DEV, root=enclave.trust_root, **kwargs
    )


def _regions(quote: bytes) -> dict[str, int]:
    """One byte offset inside each region of a dev quote."""
    parsed = parse_quote(quote)
    body_start = 48
    report_data_at = body_start + len(parsed.body) - 64
    sig_at = len(parsed.signed) + 4
    pem_at = quote.index(b"-----BEGIN CERTIFICATE-----")
    return {
        "header.version": 0,
        "header.tee_type": 4,
        "header.qe_vendor_id": 12,
        "body.measurement": body_start + 140 if parsed.tee.value == "tdx" else body_start + 70,
        "body.report_data": report_data_at + 5,
        "signature": sig_at + 3,
        "attestation_key": sig_at + 64 + 7,
        "qe_report": quote.index(parsed.qe_report) + 300,
        "qe_report_signature": quote.index(parsed.qe_report_signature) + 10,
        "qe_auth_data": quote.index(parsed.qe_report_signature) + 64 + 2 + 4,
        "pck_leaf_certificate": pem_at + 200,
    }


@pytest.mark.parametrize("kind", ["tdx", "sgx"])
def test_every_flipped_region_is_rejected(kind: str, request: pytest.FixtureRequest) -> None:
    enclave: DevEnclave = request.getfixturevalue(f"dev_{kind}")
    quote = enclave.quote(bytes(range(64)))
    original = _verify(enclave, quote)
    guard = ReplayGuard()
    guard.record(original)
    codes: dict[str, str] = {}
    for region, offset in _regions(quote).items():
        tampered = bytearray(quote)
        tampered[offset] ^= 0x01
        try:
            report = _verify(enclave, bytes(tampered))
        except VeilnetError as exc:
            codes[region] = exc.code
            continue
        # accepted despite the flip: only possible for unsigned bytes, never a new quote
        assert report.dedup_key == original.dedup_key, region
        assert not guard.is_new(report), region
        raise AssertionError(f"flip in {region} was accepted")
    assert all(code.startswith("attestation_") for code in codes.values()), codes


@pytest.mark.parametrize("kind", ["tdx", "sgx"])
def test_unsigned_padding_is_accepted_but_never_counts_as_new(
    kind: str, request: pytest.FixtureRequest
) -> None:
    enclave: DevEnclave = request.getfixturevalue(f"dev_{kind}")
    quote = enclave.quote(bytes(64))
    guard = ReplayGuard()
    guard.record(_verify(enclave, quote))
    root_pem_start = quote.rindex(b"-----BEGIN CERTIFICATE-----")
    variants = [
        quote + bytes(100),  # trailing zero padding, as TDX quote devices emit
        enclave.quote(bytes(64)),  # a fresh signature over the same report_data
    ]
    # the embedded root certificate copy is not used by dcap-qvl (the trusted root is)
    flipped = bytearray(quote)
    flipped[root_pem_start + 100] ^= 0x01
    variants.append(bytes(flipped))
    for variant in variants:
        assert variant != quote
        try:
            report = _verify(enclave, variant)
        except VeilnetError:
            continue
        assert not guard.is_new(report)
        with pytest.raises(VeilnetError) as info:
            guard.record(report)
        assert info.value.code == "attestation_quote_replayed"


def test_expired_and_premature_collateral(dev_tdx: DevEnclave) -> None:
    quote = dev_tdx.quote(bytes(64))
    collateral = dev_tdx.collateral()
    for at in (ISSUED_AT - 1, collateral.expires_at + 1):
        with pytest.raises(VeilnetError) as info:
            verify_quote_at(quote, collateral, at=at, policy=DEV, root=dev_tdx.trust_root)
        assert info.value.code == "attestation_collateral_expired"
    report = verify_quote_at(
        quote, collateral, at=collateral.expires_at - 60, policy=DEV, root=dev_tdx.trust_root
    )
    assert report.accepted
    assert any(w.startswith("collateral_expiring") for w in report.warnings)


def test_real_quote_outside_its_window() -> None:
    case = EXPECTED["dcap-qvl/tdx_quote"]
    quote, collateral = load_quote("dcap-qvl/tdx_quote"), load_collateral(case["collateral"])
    with pytest.raises(VeilnetError) as info:
        verify_quote_at(
            quote,
            collateral,
            at=case["collateral_window"][1] + 1,
            policy=Policy(),
            root=TrustRoot.intel(),
        )
    assert info.value.code == "attestation_collateral_expired"


def test_wrong_root(dev_tdx: DevEnclave) -> None:
    quote = dev_tdx.quote(bytes(64))
    other = DevEnclave(OTHER_SEED, allow_insecure_dev_tee=True, collateral_issued_at=ISSUED_AT)
    for root in (TrustRoot.intel(), other.trust_root):
        with pytest.raises(VeilnetError) as info:
            verify_quote_at(quote, dev_tdx.collateral(), at=AT, policy=DEV, root=root)
        assert info.value.code == "attestation_wrong_root"
    # collateral of the other network with its own root: the quote's chain does not verify
    with pytest.raises(VeilnetError) as info:
        verify_quote_at(quote, other.collateral(), at=AT, policy=DEV, root=other.trust_root)
    assert info.value.code == "attestation_quote_unverified"


def test_intel_quote_with_dev_root_is_unverified(dev_tdx: DevEnclave) -> None:
    case = EXPECTED["dcap-qvl/tdx_quote"]
    with pytest.raises(VeilnetError) as info:
        verify_quote_at(
            load_quote("dcap-qvl/tdx_quote"),
            load_collateral(case["collateral"]),
            at=case["verify_at"],
            policy=DEV,
            root=dev_tdx.trust_root,
        )
    assert info.value.code == "attestation_wrong_root"


def test_dev_root_needs_the_flag_and_production_refuses_it(dev_tdx: DevEnclave) -> None:
    with pytest.raises(VeilnetError) as info:
        DevAttestationRoot(dev_tdx.root_ca_der)
    assert info.value.code == "attestation_insecure_dev_tee_required"
    with pytest.raises(VeilnetError) as info:
        TrustRoot.from_der(dev_tdx.root_ca_der)
    assert info.value.code == "attestation_insecure_dev_tee_required"
    with pytest.raises(VeilnetError) as info:
        verify_quote_at(
            dev_tdx.quote(bytes(64)),
            dev_tdx.collateral(),
            at=AT,
            policy=Policy(production=True),
            root=dev_tdx.trust_root,
        )
    assert info.value.code == "attestation_dev_root_refused"
    assert info.value.http_status == 403


def test_cli_dev_quote_without_flag(capsys: pytest.CaptureFixture[str]) -> None:
    case = EXPECTED["mock/dev_tdx_quote"]
    base = [
        "attest",
        "verify",
        "--quote",
        str(TESTDATA / "mock/dev_tdx_quote"),
        "--collateral",
        str(TESTDATA / case["collateral"]),
        "--at",
        str(case["verify_at"]),
    ]
    for extra, code in (
        ([], "attestation_wrong_root"),
        (["--root-ca", str(TESTDATA / case["trusted_root"])], "attestation_insecure_dev_tee"),
    ):
        with pytest.raises(SystemExit) as info:
            main(base + extra)
        assert info.value.code == 1
        err = capsys.readouterr().err
        assert err.startswith(code), err
        assert "Traceback" not in err


def test_cli_policy_rejection_exits_nonzero(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    case = EXPECTED["dcap-qvl/sgx_quote"]
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"max_confidence_level": 1}))
    with pytest.raises(SystemExit) as info:
        main(
            [
                "attest",
                "verify",
                "--quote",
                str(TESTDATA / "dcap-qvl/sgx_quote"),
                "--collateral",
                str(TESTDATA / case["collateral"]),
                "--at",
                str(case["verify_at"]),
                "--policy",
                str(policy),
                "--json",
            ]
        )
    assert info.value.code == 1
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert document["accepted"] is False
    assert document["confidence_level"] == 3
    assert document["reasons"][0].startswith("confidence_too_low")
    assert captured.err.startswith("attestation_rejected: ")
    policy.write_text(json.dumps({"no_such_key": 1}))
    with pytest.raises(SystemExit):
        main(
            [
                "attest",
                "verify",
                "--quote",
                str(TESTDATA / "dcap-qvl/sgx_quote"),
                "--collateral",
                str(TESTDATA / case["collateral"]),
                "--policy",
                str(policy),
            ]
        )
    assert capsys.readouterr().err.startswith("attestation_policy_invalid")


def test_unknown_tee_and_versions(dev_tdx: DevEnclave) -> None:
    quote = bytearray(dev_tdx.quote(bytes(64)))
    cases = {
        "tee_type": (4, struct.pack("<I", 0x42)),
        "version": (0, struct.pack("<H", 7)),
        "sgx_v4": None,
        "key_type": (2, struct.pack("<H", 3)),
    }
    for name, patch in cases.items():
        tampered = bytearray(quote)
        if patch is None:
            tampered[4:8] = struct.pack("<I", 0)  # SGX with a v4 header
        else:
            offset, value = patch
            tampered[offset : offset + len(value)] = value
        with pytest.raises(VeilnetError) as info:
            _verify(dev_tdx, bytes(tampered))
        assert info.value.code == "attestation_unsupported_tee", name


@pytest.mark.parametrize("size", [0, 1, 47, 48, 100, 632, 700, 1000, 3000])
def test_truncated_quotes(size: int, dev_tdx: DevEnclave) -> None:
    quote = dev_tdx.quote(bytes(64))
    with pytest.raises(VeilnetError) as info:
        _verify(dev_tdx, quote[:size])
    assert info.value.code == "attestation_quote_malformed"


def test_oversized_inputs(dev_tdx: DevEnclave) -> None:
    quote = dev_tdx.quote(bytes(64))
    with pytest.raises(VeilnetError) as info:
        _verify(dev_tdx, quote + bytes(MAX_QUOTE_SIZE))
    assert info.value.code == "attestation_input_too_large"
    assert info.value.http_status == 413
    with pytest.raises(VeilnetError) as info:
        Collateral.from_json(b" " * (1024 * 1024))
    assert info.value.code == "attestation_input_too_large"
    with pytest.raises(VeilnetError) as info:
        read_quote(b"00" * (4 * 1024 * 1024))
    assert info.value.code == "attestation_input_too_large"


def test_bad_collateral() -> None:
    good = json.loads((TESTDATA / "mock/dev_tdx_collateral.json").read_text())
    cases: list[bytes] = [
        b"not json",
        b"[]",
        json.dumps({k: v for k, v in good.items() if k != "tcb_info"}).encode(),
        json.dumps({**good, "pck_crl": "zz"}).encode(),
        json.dumps({**good, "tcb_info": "{"}).encode(),
        json.dumps({**good, "tcb_info": json.dumps({"issueDate": "yesterday"})}).encode(),
        json.dumps({**good, "root_ca_crl": "00"}).encode(),
        json.dumps({**good, "tcb_info_signature": 5}).encode(),
    ]
    for data in cases:
        with pytest.raises(VeilnetError) as info:
            Collateral.from_json(data)
        assert info.value.code == "attestation_collateral_invalid", data[:60]


def test_collateral_round_trips_through_json(dev_sgx: DevEnclave) -> None:
    collateral = dev_sgx.collateral()
    again = Collateral.from_json(collateral.to_json())
    assert again == collateral
    assert again.to_json() == collateral.to_json()
    assert (again.issued_at, again.expires_at) == (ISSUED_AT, ISSUED_AT + 30 * 24 * 3600)
    report = verify_quote_at(
        dev_sgx.quote(bytes(64)), again, at=AT, policy=DEV, root=dev_sgx.trust_root
    )
    assert report.accepted


def test_read_quote_forms() -> None:
    raw = load_quote("dcap-qvl/sgx_quote")
    assert read_quote(raw.hex().encode()) == raw
    assert read_quote(b"0X" + raw.hex().upper().encode() + b"\n") == raw
    assert read_quote(json.dumps(list(raw)).encode()) == raw
    for bad in (b"[1, 2, 300]", b"[1, 2", b'["a"]', b"abc"):
        with pytest.raises(VeilnetError) as info:
            read_quote(bad)
        assert info.value.code == "attestation_quote_malformed"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=2048))
def test_fuzz_parser_random_bytes(data: bytes) -> None:
    code = "parsed"
    try:
        parse_quote(data)
    except VeilnetError as exc:
        code = exc.code
    assert code == "parsed" or code.startswith("attestation_")


_MOCK_TDX = (TESTDATA / "mock/dev_tdx_quote").read_bytes()
_MOCK_SGX = (TESTDATA / "mock/dev_sgx_quote").read_bytes()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from([_MOCK_TDX, _MOCK_SGX]),
    cut=st.integers(min_value=0, max_value=4000),
    edits=st.lists(
        st.tuples(st.integers(min_value=0, max_value=4000), st.integers(0, 255)), max_size=4
    ),
)
def test_fuzz_parser_mutated_quotes(base: bytes, cut: int, edits: list[tuple[int, int]]) -> None:
    data = bytearray(base[: max(cut, 48)])
    for offset, value in edits:
        if offset < len(data):
            data[offset] = value
    try:
        parsed = parse_quote(bytes(data))
    except VeilnetError as exc:
        code = exc.code
    else:
        code = "parsed"
        assert len(parsed.report_data) == 64
    assert code == "parsed" or code.startswith("attestation_")
