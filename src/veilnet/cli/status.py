"""``veil status``: chain head, gatekeepers, master key, clusters, workers, divergences, contracts.
Workers are checked live: online (health), last applied block, and a fresh attestation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.table import Table

from veilnet.cli._output import console, emit, json_option
from veilnet.cli.agent import network_options, open_client


@click.command()
@network_options
@json_option
def status(network: Path | None, key: str | None, as_json: bool) -> None:
    """Show the network: chain, gatekeepers, master key epoch, clusters, workers, contracts."""
    with (
        open_client(network, key) as client,
        console.status("reading the chain and asking the workers…", spinner="dots"),
    ):
        document = client.status()
    emit(document, as_json=as_json, render=_render)


def _render(doc: dict[str, Any]) -> None:
    master = doc["master_key"]
    console.print(
        f"chain {doc['chain_id']} at [bold]block {doc['head']}[/bold] ({doc['rpc_url']})",
        soft_wrap=True,
    )
    console.print(
        f"master key {master['address'] or '[red]not yet generated[/red]'} · rotation "
        f"{master['rotation']}"
        + (" [yellow](rotation in progress)[/yellow]" if master["rotation_locked"] else ""),
        soft_wrap=True,
    )
    console.print(f"gatekeepers {', '.join(doc['gatekeepers']) or '-'}", soft_wrap=True)
    clusters = Table(title="clusters")
    for column in ("id", "key epoch", "workers"):
        clusters.add_column(column)
    for cluster in doc["clusters"]:
        clusters.add_row(cluster["id"][:18] + "…", str(cluster["epoch"]), str(cluster["workers"]))
    console.print(clusters)
    workers = Table(title="workers")
    columns = ("address", "role", "attested", "confidence", "online", "applied", "heartbeat")
    for column in (*columns, "cluster"):
        workers.add_column(column)
    for worker in doc["workers"]:
        attested = (
            "[green]yes[/green]"
            if worker["attested"]
            else f"[red]no[/red] {worker['attestation_error'] or ''}"
        )
        workers.add_row(
            worker["address"],
            "gatekeeper" if worker["gatekeeper"] else "worker",
            attested,
            _confidence(worker),
            _online(worker),
            _applied(worker),
            str(worker["last_heartbeat"] or "-"),
            (worker["cluster"] or "-")[:12],
        )
    console.print(workers)
    if doc["divergences"]:
        divergences = Table(title="replica divergences (Registry verdicts on state commitments)")
        for column in ("cluster", "height", "worker", "verdict"):
            divergences.add_column(column)
        for entry in doc["divergences"]:
            divergences.add_row(
                entry["cluster"][:12],
                str(entry["height"]),
                entry["worker"],
                "[red]against the majority: de-endorsed[/red]"
                if entry["majority"]
                else "[yellow]split, no majority yet[/yellow]",
            )
        console.print(divergences)
    contracts = Table(title="contracts")
    for column in ("id", "lang", "owner", "key epoch", "paused"):
        contracts.add_column(column)
    for contract in doc["contracts"]:
        contracts.add_row(
            contract["id"],
            str(contract["language"] or "?"),
            contract["owner"],
            str(contract["epoch"]),
            "yes" if contract["paused"] else "no",
        )
    console.print(contracts)
    if doc["insecure_dev_tee"]:
        console.print("[yellow]attestation uses the INSECURE development root (devnet)[/yellow]")


def _online(worker: dict[str, Any]) -> str:
    if worker["online"]:
        return "[green]online[/green]"
    health = worker.get("health")
    return f"[red]{health.replace('_', ' ')}[/red]" if health else "[red]offline[/red]"


def _confidence(worker: dict[str, Any]) -> str:
    if worker["flagged"]:
        return "[red]0 (flagged: ran twice)[/red]"
    if worker.get("diverged_at"):
        return f"[red]0 (diverged at block {worker['diverged_at']})[/red]"
    return str(worker["confidence"])


def _applied(worker: dict[str, Any]) -> str:
    """The last applied block, and in red the chain data its core refused, if it is stuck."""
    applied = str(worker["last_applied_block"] or "-")
    rejected = worker.get("rejected")
    if isinstance(rejected, dict):
        return f"{applied} [red]stopped: {rejected.get('code')} at {rejected.get('block')}[/red]"
    return applied
