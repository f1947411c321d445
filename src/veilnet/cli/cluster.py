"""``veil cluster``: a cluster owner's consent to deployments (open, closed, allowed deployers)
and an operator's registration deposits coming back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.table import Table

from veilnet.cli._output import console, emit, json_option
from veilnet.cli.agent import network_options, open_client
from veilnet.crypto import Address


@click.group()
def cluster() -> None:
    """Cluster policy and deposits (cluster owners, operators)."""


@cluster.command()
@network_options
@click.option(
    "--cluster", "name", default=None, help="Cluster name or 0x id (default: the network's first)."
)
@click.option(
    "--open", "open_", is_flag=True, help="Let anyone deploy agents into the cluster (the default)."
)
@click.option("--close", is_flag=True, help="Only the owner and allowed deployers may deploy.")
@click.option(
    "--allow", "allow", multiple=True, metavar="0xADDR", help="Allow a deployer while closed."
)
@click.option(
    "--deny", "deny", multiple=True, metavar="0xADDR", help="Withdraw a deployer's permission."
)
@json_option
def policy(
    network: Path | None,
    key: str | None,
    name: str | None,
    open_: bool,
    close: bool,
    allow: tuple[str, ...],
    deny: tuple[str, ...],
    as_json: bool,
) -> None:
    """Show or set who may deploy agents into a cluster. Changing it needs the cluster owner's
    `--key` (others get `not cluster owner`); without options it only shows the policy."""
    if open_ and close:
        raise click.UsageError("--open and --close exclude each other")
    with open_client(network, key) as client:
        if open_ or close:
            client.set_deploy_policy(name, open=open_)
        for address in allow:
            client.set_deploy_policy(name, deployer=address, allowed=True)
        for address in deny:
            client.set_deploy_policy(name, deployer=address, allowed=False)
        doc = client.deploy_policy(name, deployers=[*allow, *deny])
    emit(doc, as_json=as_json, render=_render_policy)


def _render_policy(doc: dict[str, Any]) -> None:
    state = "[green]open[/green] to anyone" if doc["open"] else "[yellow]closed[/yellow]"
    console.print(f"cluster {doc['cluster'][:18]}…: {state}")
    for address, allowed in doc["allowed"].items():
        console.print(f"  {address}: {'allowed' if allowed else 'not allowed'}")


@cluster.command()
@network_options
@json_option
def refund(network: Path | None, key: str | None, as_json: bool) -> None:
    """Take the registration deposits refunded to this operator (`--key`): its workers were
    endorsed, or nobody judged them within the window (`Registry.reclaim_deposit`)."""
    with open_client(network, key) as client:
        amount = client.claim_refund()
    emit(
        {"claimed_wei": amount},
        as_json=as_json,
        render=lambda doc: console.print(f"[green]claimed[/green] {amount} wei"),
    )


_CLUSTER_OPTION = click.option(
    "--cluster", "name", default=None, help="Cluster name or 0x id (default: the network's first)."
)


@cluster.command("add-worker")
@click.argument("worker", metavar="0xWORKER")
@_CLUSTER_OPTION
@network_options
@json_option
def add_worker(
    worker: str, name: str | None, network: Path | None, key: str | None, as_json: bool
) -> None:
    """Take endorsed WORKER into the cluster (its owner's --key): the gatekeepers then send it
    the cluster's keys, and it serves the cluster's agents once it has caught up."""
    _change_membership("added", worker, name, network, key, as_json)


@cluster.command("remove-worker")
@click.argument("worker", metavar="0xWORKER")
@_CLUSTER_OPTION
@network_options
@json_option
def remove_worker(
    worker: str, name: str | None, network: Path | None, key: str | None, as_json: bool
) -> None:
    """Take WORKER out of the cluster (its owner's --key): the cluster moves to a new key epoch
    the removed worker never gets, and it stops serving the cluster."""
    _change_membership("removed", worker, name, network, key, as_json)


def _change_membership(
    done: str, worker: str, name: str | None, network: Path | None, key: str | None, as_json: bool
) -> None:
    with open_client(network, key) as client:
        change = client.add_cluster_worker if done == "added" else client.remove_cluster_worker
        block = change(worker, cluster=name)
        members = client.cluster_members(name)
    emit(
        {"worker": worker, f"{done}_at": block, "members": members},
        as_json=as_json,
        render=lambda d: console.print(f"{worker} {done} at block {block}; {len(members)} members"),
    )


@cluster.command("list")
@_CLUSTER_OPTION
@network_options
@json_option
def list_members(name: str | None, network: Path | None, key: str | None, as_json: bool) -> None:
    """The cluster's members now, each with the API URL its registration published on chain
    (where clients find it; `-` when it published none)."""
    with open_client(network, key) as client:
        members = client.cluster_members(name)
        urls = client.registered_urls(members)
    rows = [
        {"address": member, "api_url": urls.get(Address.parse(member).raw)} for member in members
    ]
    emit(rows, as_json=as_json, render=_members_table)


def _members_table(rows: list[dict[str, Any]]) -> None:
    if not rows:
        console.print("no members")
        return
    table = Table("worker", "API URL (registered on chain)")
    for row in rows:
        table.add_row(row["address"], row["api_url"] or "-")
    console.print(table)
