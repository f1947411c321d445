"""``veil keys``: rotate the master key (governance) and follow it to the end; evict a worker
that lost its eligibility (anyone)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from veilnet.cli._output import console, emit, json_option
from veilnet.cli.agent import network_options, open_client


@click.group()
def keys() -> None:
    """Network key management (governance)."""


@keys.command()
@network_options
@click.option(
    "--admin-key",
    default=None,
    envvar="VEIL_ADMIN_KEY",
    metavar="HEX",
    help="Governance key ($VEIL_ADMIN_KEY; default: the devnet's admin account).",
)
@click.option("--timeout", default=180.0, show_default=True, help="Seconds to wait.")
@json_option
def rotate(
    network: Path | None, key: str | None, admin_key: str | None, timeout: float, as_json: bool
) -> None:
    """Rotate the master key, then wait until every cluster and contract is re-keyed."""
    with (
        open_client(network, key) as client,
        console.status("locking the rotation…", spinner="dots") as spinner,
    ):

        def progress(line: str) -> None:
            if not as_json:
                console.print(f"  {line}", soft_wrap=True)
            spinner.update(line)

        summary = client.rotate_master_key(admin=admin_key, timeout=timeout, progress=progress)
    emit(summary, as_json=as_json, render=_render)


def _render(doc: dict[str, Any]) -> None:
    console.print(
        f"[green]rotation {doc['rotation']} complete[/green] in {doc['blocks']} blocks "
        f"({doc['seconds']:.1f} s): {len(doc['clusters'])} cluster(s), "
        f"{doc['contracts']} contract(s) re-keyed"
    )


@keys.command()
@network_options
@click.argument("worker")
@json_option
def evict(network: Path | None, key: str | None, worker: str, as_json: bool) -> None:
    """Take WORKER (0x address) out of its cluster and the gatekeeper set once it is no longer
    eligible: endorsement ended or expired, measurement revoked, flagged or found diverged.
    Anyone may; the Registry refuses an eligible worker (`still eligible`)."""
    with open_client(network, key) as client:
        block = client.evict(worker)
    emit(
        {"worker": worker, "evicted": True, "block": block},
        as_json=as_json,
        render=lambda doc: console.print(f"[green]evicted[/green] {worker} at block {block}"),
    )
