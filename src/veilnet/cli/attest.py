"""``veil attest``: verify TDX/SGX DCAP quotes offline with dcap-qvl and Veilnet's policy.
Exits 0 when accepted; prints the report and exits 1 with ``attestation_rejected`` otherwise."""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from veilnet.attestation import (
    AttestationRejected,
    Collateral,
    Policy,
    TrustRoot,
    read_quote,
    verify_quote_at,
)
from veilnet.cli._output import console, emit, json_option

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group()
def attest() -> None:
    """Remote attestation: verify quotes offline."""


def _root_der(path: Path) -> bytes:
    data = path.read_bytes()
    if data.lstrip().startswith(b"-----BEGIN"):
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import Encoding

        try:
            return x509.load_pem_x509_certificate(data).public_bytes(Encoding.DER)
        except ValueError as exc:
            raise click.BadParameter(f"{path} is not a PEM certificate") from exc
    return data


@attest.command()
@click.option(
    "--quote", "quote_path", type=_FILE, required=True, help="Quote: binary, hex or JSON."
)
@click.option("--collateral", "collateral_path", type=_FILE, required=True, help="Collateral JSON.")
@click.option("--at", type=click.IntRange(min=0), help="Verify at this unix time (default: now).")
@click.option("--root-ca", type=_FILE, help="Root CA (DER or PEM); default: Intel SGX Root CA.")
@click.option("--policy", "policy_path", type=_FILE, help="Policy JSON (Policy attribute names).")
@click.option("--expect-report-data", help="Hex report_data the quote must bind.")
@click.option(
    "--insecure-dev-tee",
    is_flag=True,
    help="INSECURE: accept a development root CA (dev TEE quotes prove nothing).",
)
@json_option
def verify(
    quote_path: Path,
    collateral_path: Path,
    at: int | None,
    root_ca: Path | None,
    policy_path: Path | None,
    expect_report_data: str | None,
    insecure_dev_tee: bool,
    as_json: bool,
) -> None:
    """Verify a TDX (v4, v5) or SGX (v3) DCAP quote against its collateral, offline."""
    quote = read_quote(quote_path.read_bytes())
    collateral = Collateral.from_json(collateral_path.read_bytes())
    root = (
        TrustRoot.from_der(_root_der(root_ca), allow_insecure_dev_tee=insecure_dev_tee)
        if root_ca is not None
        else TrustRoot.intel()
    )
    policy = Policy.from_json(policy_path.read_bytes()) if policy_path else Policy()
    if insecure_dev_tee:
        policy = dataclasses.replace(policy, production=False)
    expected = None
    if expect_report_data is not None:
        try:
            expected = bytes.fromhex(expect_report_data.removeprefix("0x"))
        except ValueError as exc:
            raise click.BadParameter("--expect-report-data must be hex") from exc
        if len(expected) != 64:
            raise click.BadParameter("--expect-report-data must be 64 bytes")
    report = verify_quote_at(
        quote,
        collateral,
        at=at if at is not None else int(time.time()),
        policy=policy,
        root=root,
        expected_report_data=expected,
    )
    document = report.to_json()
    emit(document, as_json=as_json, render=_render)
    if not report.accepted:
        raise AttestationRejected(
            "attestation rejected: " + "; ".join(report.reasons), reasons=list(report.reasons)
        )


def _render(document: dict[str, Any]) -> None:
    verdict = "[green]ACCEPTED[/green]" if document["accepted"] else "[red]REJECTED[/red]"
    table = Table(title=f"{document['tee'].upper()} quote v{document['quote_version']}: {verdict}")
    table.add_column("field")
    table.add_column("value", overflow="fold")
    table.add_row("status", document["status"])
    table.add_row("advisories", ", ".join(document["advisory_ids"]) or "-")
    table.add_row("confidence level", str(document["confidence_level"]))
    for key, value in document["measurements"].items():
        table.add_row(key, str(value))
    table.add_row("measurement id", document["measurement_id"])
    table.add_row("report_data", document["report_data"])
    table.add_row("trust root", document["trust_root"])
    table.add_row("collateral expires", str(document["collateral_expires_at"]))
    console.print(table)
    for reason in document["reasons"]:
        console.print(f"[red]reason:[/red] {reason}")
    for warning in document["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {warning}")


@attest.command()
@click.option("--collateral", "collateral_path", type=_FILE, help="Collateral JSON to serve.")
@click.option(
    "--dev-network",
    "network_path",
    type=_FILE,
    help="Serve the development collateral of this devnet's network.json (its network_seed).",
)
@click.option(
    "--insecure-dev-tee",
    is_flag=True,
    help="Required with --dev-network: the development TEE's collateral proves nothing.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8081, show_default=True)
@click.option(
    "--tls-cert",
    type=_FILE,
    help="PEM certificate (chain) to serve HTTPS with: gatekeepers' cores fetch only over "
    "https, from a certificate under the network's pccs_roots_pem.",
)
@click.option("--tls-key", type=_FILE, help="PEM private key of --tls-cert.")
@json_option
def pccs(
    collateral_path: Path | None,
    network_path: Path | None,
    insecure_dev_tee: bool,
    host: str,
    port: int,
    tls_cert: Path | None,
    tls_key: Path | None,
    as_json: bool,
) -> None:
    """Serve one collateral set over the PCCS v4 API (what dcap-qvl, `veil audit --pccs` and
    gatekeepers' cores fetch), until interrupted: a stand-in for a PCCS on a devnet or in tests."""
    import json
    import signal
    import ssl
    import threading

    from veilnet.attestation.pccs import LocalPCCS
    from veilnet.tee import DevEnclave

    tls = None
    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("give --tls-cert and --tls-key together")
    if tls_cert is not None and tls_key is not None:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            tls.load_cert_chain(tls_cert, tls_key)
        except (ssl.SSLError, OSError) as exc:
            raise click.UsageError(f"--tls-cert/--tls-key do not load: {exc}") from exc
    if (collateral_path is None) == (network_path is None):
        raise click.UsageError("give exactly one of --collateral and --dev-network")
    if network_path is not None:
        if not insecure_dev_tee:
            raise click.UsageError(
                "--dev-network serves INSECURE dev collateral: add --insecure-dev-tee"
            )
        seed = json.loads(network_path.read_text()).get("network_seed")
        if not isinstance(seed, str):
            raise click.UsageError(f"{network_path} names no network_seed (not a devnet)")
        collateral = DevEnclave(
            bytes.fromhex(seed.removeprefix("0x")), allow_insecure_dev_tee=True
        ).collateral()
    else:
        assert collateral_path is not None
        collateral = Collateral.from_json(collateral_path.read_bytes())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with LocalPCCS(collateral, host=host, port=port, tls=tls) as service:
        # one line, flushed at once: a script (or a test) waits for it to learn the URL
        if as_json:
            click.echo(json.dumps({"url": service.url}))
        else:
            click.echo(f"serving PCCS v4 collateral at {service.url}")
        sys.stdout.flush()
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
