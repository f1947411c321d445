"""Every quote in tests/data/attestation gives the outcome recorded in expected.json,
through the library and through ``veil attest verify``."""

from __future__ import annotations

import json
from typing import Any

import pytest

from veilnet.attestation import (
    DevAttestationRoot,
    Policy,
    QuoteUnverified,
    TEEKind,
    TrustRoot,
    verify_quote_at,
)
from veilnet.cli._main import main

from .conftest import EXPECTED, TESTDATA, load_collateral, load_quote

NAMES = sorted(EXPECTED)


def _root(case: dict[str, Any]) -> TrustRoot:
    if case["trusted_root"].startswith("mock/"):
        der = (TESTDATA / case["trusted_root"]).read_bytes()
        return DevAttestationRoot(der, allow_insecure_dev_tee=True)
    return TrustRoot.intel()


def _check(document: dict[str, Any], case: dict[str, Any]) -> None:
    assert document["status"] == case["status"]
    assert document["advisory_ids"] == case["advisory_ids"]
    assert document["report_data"] == case["report_data"]
    assert document["tee"] == case["quote_type"].lower()
    measurements = document["measurements"]
    if case["quote_type"] == "TDX":
        assert measurements["mrtd"] == case["mr_td"]
        for i in range(4):
            assert measurements[f"rtmr{i}"] == case[f"rt_mr{i}"]
    else:
        assert measurements["mr_enclave"] == case["mr_enclave"]
        assert measurements["mr_signer"] == case["mr_signer"]
    assert document["accepted"] is True
    assert document["reasons"] == []


def test_intel_root_is_the_shipped_certificate() -> None:
    assert TrustRoot.intel().der == (TESTDATA / "intel" / "intel_sgx_root_ca.der").read_bytes()


@pytest.mark.parametrize("name", NAMES)
def test_library_outcome(name: str) -> None:
    case = EXPECTED[name]
    quote, collateral = load_quote(name), load_collateral(case["collateral"])
    root = _root(case)
    policy = Policy(production=not root.is_dev)
    if case["expect"] == "error":
        with pytest.raises(QuoteUnverified) as info:
            verify_quote_at(quote, collateral, at=case["verify_at"], policy=policy, root=root)
        assert info.value.code == "attestation_quote_unverified"
        assert "No matching TCB level" in info.value.message
        return
    report = verify_quote_at(quote, collateral, at=case["verify_at"], policy=policy, root=root)
    _check(report.to_json(), case)
    assert report.quote_version == case["quote_version"]
    assert report.ppid.hex() == case["ppid"]
    assert [collateral.issued_at, collateral.expires_at] == case["collateral_window"]
    assert report.tee is (TEEKind.TDX if case["quote_type"] == "TDX" else TEEKind.SGX)


@pytest.mark.parametrize("name", NAMES)
def test_cli_outcome(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    case = EXPECTED[name]
    args = [
        "attest",
        "verify",
        "--quote",
        str(TESTDATA / name),
        "--collateral",
        str(TESTDATA / case["collateral"]),
        "--at",
        str(case["verify_at"]),
        "--json",
    ]
    if case["trusted_root"].startswith("mock/"):
        args += ["--root-ca", str(TESTDATA / case["trusted_root"]), "--insecure-dev-tee"]
    if case["expect"] == "error":
        with pytest.raises(SystemExit) as info:
            main(args)
        assert info.value.code == 1
        err = capsys.readouterr().err
        assert err.startswith("attestation_quote_unverified: ")
        assert "Traceback" not in err
        return
    main(args)
    _check(json.loads(capsys.readouterr().out), case)


@pytest.mark.parametrize("form", ["hex", "json"])
def test_cli_reads_hex_and_json_array_quotes(
    form: str, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    name = "dcap-qvl/tdx_quote"
    case = EXPECTED[name]
    raw = load_quote(name)
    path = tmp_path / "quote.txt"
    path.write_text("0x" + raw.hex() + "\n" if form == "hex" else json.dumps(list(raw)))
    main(
        [
            "attest",
            "verify",
            "--quote",
            str(path),
            "--collateral",
            str(TESTDATA / case["collateral"]),
            "--at",
            str(case["verify_at"]),
            "--json",
        ]
    )
    _check(json.loads(capsys.readouterr().out), case)


def test_dev_quote_with_intel_root_is_rejected_by_plain_dcap_path() -> None:
    case = EXPECTED["mock/dev_tdx_quote"]
    assert case["with_intel_root"].startswith("rejected")
