"""Collateral fetched by the verifier from a PCCS-compatible service (``attestation/pccs.py``):
dcap-qvl's client against the local PCCS, with Intel's real quotes and collateral and dev ones."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from veilnet.attestation import DevAttestationRoot, Policy, TrustRoot, verify_quote_at
from veilnet.attestation.errors import CollateralUnavailable
from veilnet.attestation.pccs import LocalPCCS, fetch_collateral
from veilnet.tee import DevEnclave

from .conftest import AT, EXPECTED, SEED, load_collateral, load_quote

REAL = ["dcap-qvl/sgx_quote", "dcap-qvl/tdx_quote"]
"""Intel-signed quotes of real machines, with the collateral Intel's PCS served for them."""


@pytest.mark.parametrize("name", REAL)
def test_a_real_quote_gets_its_collateral_for_its_own_fmspc(name: str) -> None:
    """dcap-qvl reads the FMSPC from the quote's PCK certificate and asks the PCCS for that
    platform's TCB info; what comes back is byte for byte what was served, and the quote
    verifies under it as under the stored copy."""
    case = EXPECTED[name]
    quote, served = load_quote(name), load_collateral(case["collateral"])
    with LocalPCCS(served) as pccs:
        fetched = fetch_collateral(pccs.url, quote)
        requests = list(pccs.requests)
    assert fetched == served
    tee = "tdx" if case["quote_type"] == "TDX" else "sgx"
    assert f"/{tee}/certification/v4/tcb?fmspc={case['fmspc'].upper()}" in "".join(requests)
    assert any("/sgx/certification/v4/pckcrl?ca=" in r for r in requests)
    report = verify_quote_at(
        quote, fetched, at=case["verify_at"], policy=Policy(), root=TrustRoot.intel()
    )
    assert report.to_json()["status"] == case["status"]


def test_a_dev_quote_verifies_under_collateral_the_verifier_fetched(dev_tdx: DevEnclave) -> None:
    quote = dev_tdx.quote(b"\x01" * 64)
    with LocalPCCS(dev_tdx.collateral()) as pccs:
        fetched = fetch_collateral(pccs.url, quote)
    root = DevAttestationRoot(dev_tdx.trust_root.der, allow_insecure_dev_tee=True)
    report = verify_quote_at(quote, fetched, at=AT, policy=Policy.development(), root=root)
    assert report.report_data == b"\x01" * 64


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


class _Failing(LocalPCCS):
    """A PCCS that answers every request with a server error."""

    def answer(self, path: str) -> tuple[int, dict[str, str], bytes]:
        self.requests.append(path)
        return 500, {}, b"internal error"


@pytest.mark.parametrize("kind", ["unreachable", "server error"])
def test_a_pccs_that_gives_nothing_is_a_typed_error(kind: str, dev_tdx: DevEnclave) -> None:
    quote = dev_tdx.quote(b"\x01" * 64)
    if kind == "unreachable":
        with pytest.raises(CollateralUnavailable) as info:
            fetch_collateral(f"http://127.0.0.1:{_closed_port()}", quote, timeout=20)
    else:
        with _Failing(dev_tdx.collateral()) as pccs, pytest.raises(CollateralUnavailable) as info:
            fetch_collateral(pccs.url, quote, timeout=20)
    assert info.value.code == "attestation_collateral_unavailable"


def test_veil_attest_pccs_serves_a_devnets_collateral(tmp_path: Path, dev_tdx: DevEnclave) -> None:
    """`veil attest pccs --dev-network network.json --insecure-dev-tee` serves the devnet's
    development collateral, so `veil audit --pccs` can be tried on a devnet; it stops cleanly
    on SIGTERM."""
    network = tmp_path / "network.json"
    network.write_text(json.dumps({"network_seed": "0x" + SEED.hex()}))
    command = [sys.executable, "-m", "veilnet.cli", "attest", "pccs", "--dev-network"]
    process = subprocess.Popen(
        [*command, str(network), "--insecure-dev-tee", "--port", str(_closed_port())],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("serving PCCS v4 collateral at http://127.0.0.1:"), line
        quote = dev_tdx.quote(b"\x02" * 64)
        fetched = fetch_collateral(line.split(" at ")[1].strip(), quote)
        root = DevAttestationRoot(dev_tdx.trust_root.der, allow_insecure_dev_tee=True)
        verify_quote_at(quote, fetched, at=int(time.time()), policy=Policy.development(), root=root)
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert process.returncode == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "exactly one of --collateral and --dev-network"),
        (["--dev-network", "NETWORK"], "add --insecure-dev-tee"),
        (["--collateral", "NETWORK", "--tls-cert", "NETWORK"], "together"),
        (["--collateral", "NETWORK", "--tls-cert", "NETWORK", "--tls-key", "NETWORK"], "not load"),
    ],
)
def test_veil_attest_pccs_refuses_what_it_cannot_serve(
    args: list[str], message: str, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from veilnet.cli.attest import attest

    network = tmp_path / "network.json"
    network.write_text("{}")
    argv = ["pccs", *[str(network) if a == "NETWORK" else a for a in args]]
    result = CliRunner().invoke(attest, argv)
    assert result.exit_code == 2 and message in result.output
