"""``veil audit``: re-verify every worker registration and re-attestation on chain, as of now.
Quotes come from the logs; collateral from egress, or with ``--pccs`` from a PCCS the user names."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from veilnet.cli._output import console, emit, json_option
from veilnet.cli.agent import network_options, open_client


@click.command()
@network_options
@click.option(
    "--pccs",
    metavar="URL",
    default=None,
    help="Judge each quote under collateral fetched from this PCCS-compatible service "
    "(Intel PCS v4 API) instead of the copy the worker posted.",
)
@json_option
def audit(network: Path | None, key: str | None, pccs: str | None, as_json: bool) -> None:
    """Re-verify every registration and re-attestation quote on chain; exit 1 if any no longer
    passes."""
    with (
        open_client(network, key) as client,
        console.status("re-verifying registrations…", spinner="dots"),
    ):
        entries = [entry.to_json() for entry in client.audit(pccs=pccs)]
    failed = [e for e in entries if not e["passed"]]
    document = {
        "registrations": len(entries),
        "failed": len(failed),
        "collateral_source": pccs or "registrant",
        "entries": entries,
    }
    emit(document, as_json=as_json, render=_render)
    if failed:
        sys.exit(1)


def _render(doc: dict[str, Any]) -> None:
    source = doc["collateral_source"]
    judged = "the collateral each worker posted" if source == "registrant" else source
    table = Table(
        title=f"worker registrations ({doc['registrations']})",
        caption=f"collateral from {judged}",
    )
    columns = ("worker", "kind", "block", "result", "confidence", "collateral expires", "reasons")
    for column in columns:
        table.add_column(column, overflow="fold")
    for entry in doc["entries"]:
        table.add_row(
            entry["worker"],
            entry["kind"],
            str(entry["block_number"]),
            "[green]passes[/green]" if entry["passed"] else "[red]FAILS[/red]",
            str(entry["confidence"] if entry["confidence"] is not None else "-"),
            str(entry["collateral_expires_at"] or "-"),
            "; ".join(entry["reasons"]) or "-",
        )
    console.print(table)
    if doc["failed"]:
        console.print(f"[red]{doc['failed']} registration(s) no longer pass[/red]")
    else:
        console.print("[green]every registration still verifies[/green]")
