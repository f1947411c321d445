"""``veil agent``: deploy agents, send encrypted commands, make verified queries, set secrets.
Also holds the ``--network``/``--key`` options and client factory that status/audit/keys share."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.table import Table

from veilnet.cli._output import console, emit, err_console, json_option
from veilnet.errors import VeilnetError
from veilnet.sandbox.check import check_agent

F = TypeVar("F", bound=Callable[..., Any])


INSECURE_DEV_TEE = "veil.insecure_dev_tee"
"""Where ``--insecure-dev-tee`` leaves its value for ``open_client`` (click context meta)."""


def _remember_dev_tee(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    ctx.meta[INSECURE_DEV_TEE] = value
    return value


def network_options(fn: F) -> F:
    """``--network F`` (default ``$VEIL_NETWORK``, then ``.devnet/network.json``), ``--key`` and
    ``--insecure-dev-tee``."""
    fn = click.option(
        "--insecure-dev-tee",
        is_flag=True,
        envvar="VEIL_INSECURE_DEV_TEE",
        expose_value=False,
        callback=_remember_dev_tee,
        help="Trust the INSECURE development TEE root of a devnet ($VEIL_INSECURE_DEV_TEE=1). "
        "Never on by itself: network.json alone does not turn it on.",
    )(fn)
    fn = click.option(
        "--key",
        "key",
        envvar="VEIL_PRIVATE_KEY",
        default=None,
        metavar="HEX",
        help="Wallet private key ($VEIL_PRIVATE_KEY; default: the devnet's first dev account).",
    )(fn)
    fn = click.option(
        "--network",
        "network",
        default=None,
        metavar="FILE",
        type=click.Path(dir_okay=False, path_type=Path),
        help="network.json ($VEIL_NETWORK, then .devnet/network.json).",
    )(fn)
    return fn


@contextmanager
def open_client(network: Path | None, key: str | None) -> Iterator[Any]:
    """A synchronous SDK client; dev-TEE networks are flagged on stderr."""
    from veilnet.sdk import Client

    context = click.get_current_context(silent=True)
    insecure = bool(context is not None and context.meta.get(INSECURE_DEV_TEE))
    client = Client.connect(network, wallet=key, allow_insecure_dev_tee=insecure)
    if client.insecure_dev_tee:
        err_console.print(
            "[dim]network uses the INSECURE development TEE root (devnet)[/dim]", highlight=False
        )
    try:
        yield client
    finally:
        client.close()


def parse_json(value: str, what: str) -> Any:
    try:
        return json.loads(value)
    except ValueError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint=what) from exc


@click.group()
def agent() -> None:
    """Deploy agents, send encrypted commands, make verified queries."""


@agent.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--cluster", default=None, metavar="ID", help="Cluster id (hex or name; default c1).")
@click.option("--init", "init", default=None, metavar="JSON", help="Arguments for init().")
@click.option(
    "--public-init",
    is_flag=True,
    help="Publish the init arguments in the clear (by default they are sealed to the cluster).",
)
@click.option(
    "--no-check",
    is_flag=True,
    help="Skip compiling the agent and running its init locally before sending it.",
)
@network_options
@json_option
def deploy(
    file: Path,
    cluster: str | None,
    init: str | None,
    public_init: bool,
    no_check: bool,
    network: Path | None,
    key: str | None,
    as_json: bool,
) -> None:
    """Deploy FILE (.js or .py) and print its contract id once its key is on chain.

    First compiles FILE and runs its init locally, as a worker will: a syntax error or a
    failing init is reported before anything is sent (--no-check skips this). The init
    arguments are sealed to the cluster unless --public-init."""
    args = None if init is None else parse_json(init, "--init")
    with (
        open_client(network, key) as client,
        console.status(f"deploying {file.name}…", spinner="dots"),
    ):
        deployed = client.deploy(
            file,
            init=args,
            cluster=cluster,
            public_init=public_init,
            check=None if no_check else check_agent,
        )
        contract_key = deployed.key()
    document = {
        "contract_id": deployed.id,
        "file": str(file),
        "owner": client.wallet.address.hex,
        "cluster": "0x" + contract_key.cluster.hex(),
        "key_epoch": contract_key.epoch,
        "init": "none" if args is None else ("public" if public_init else "sealed"),
    }
    emit(document, as_json=as_json, render=_render_deploy)


def _render_deploy(doc: dict[str, Any]) -> None:
    console.print(f"[green]deployed[/green] {doc['file']}")
    console.print(f"contract id  [bold]{doc['contract_id']}[/bold]", soft_wrap=True)
    console.print(f"owner        {doc['owner']}", soft_wrap=True)
    console.print(f"cluster      {doc['cluster']} (key epoch {doc['key_epoch']})", soft_wrap=True)
    shown = {
        "none": "none",
        "public": "public (in ContractDeployed)",
        "sealed": "sealed to the cluster",
    }
    console.print(f"init args    {shown[doc['init']]}", soft_wrap=True)


@agent.command()
@click.argument("contract_id", metavar="ID")
@click.argument("message", metavar="JSON")
@click.option("--wait", is_flag=True, help="Wait until applied; print the result and events.")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait.")
@network_options
@json_option
def command(
    contract_id: str,
    message: str,
    wait: bool,
    timeout: float,
    network: Path | None,
    key: str | None,
    as_json: bool,
) -> None:
    """Send an encrypted command (JSON) to agent ID through the chain."""
    msg = parse_json(message, "JSON")
    with (
        open_client(network, key) as client,
        console.status("sending the encrypted command…", spinner="dots"),
    ):
        result = client.agent(contract_id).command(msg, wait=wait, timeout=timeout)
    emit(result.to_json(), as_json=as_json, render=_render_command)


def _render_command(doc: dict[str, Any]) -> None:
    console.print(
        f"command [bold]#{doc['seq']}[/bold] in block {doc['block_number']} "
        f"(tx {doc['tx_hash'][:18]}…)",
        soft_wrap=True,
    )
    if not doc["applied"]:
        console.print("[dim]not waited for: use --wait to see its outcome[/dim]")
        return
    console.print(f"[green]applied[/green]: result {json.dumps(doc['result'])}", soft_wrap=True)
    for event in doc["events"]:
        console.print(f"  event {json.dumps(event)}", soft_wrap=True)
    console.print(
        f"[dim]outcome verified from worker {doc['verified_by']} at block "
        f"{doc['verified_at_block']}[/dim]",
        soft_wrap=True,
    )


@agent.command()
@click.argument("contract_id", metavar="ID")
@click.argument("message", metavar="JSON")
@network_options
@json_option
def query(
    contract_id: str, message: str, network: Path | None, key: str | None, as_json: bool
) -> None:
    """Send an encrypted, signed query to a worker; verify and print the answer."""
    msg = parse_json(message, "JSON")
    with open_client(network, key) as client:
        result = client.agent(contract_id).query(msg)
    emit(result.to_json(), as_json=as_json, render=render_query)


def render_query(doc: dict[str, Any]) -> None:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="dim")
    table.add_column(overflow="fold")
    table.add_row("value", json.dumps(doc["value"]))
    if doc["events"]:
        table.add_row("events", json.dumps(doc["events"]))
    table.add_row("worker", f"{doc['worker']} [green](registered, attested)[/green]")
    table.add_row("block", f"{doc['block_number']} {doc['block_hash']}")
    table.add_row("state", doc["state_commitment"])
    console.print(table)
    console.print("[green]✓ verified[/green]: signature, worker attestation, block on our chain")


@agent.group()
def secrets() -> None:
    """Owner-set encrypted secrets an agent reads with secrets.get(name)."""


@secrets.command("set")
@click.argument("contract_id", metavar="ID")
@click.argument("name")
@click.argument("value")
@click.option("--no-wait", is_flag=True, help="Do not wait until applied.")
@network_options
@json_option
def secrets_set(
    contract_id: str,
    name: str,
    value: str,
    no_wait: bool,
    network: Path | None,
    key: str | None,
    as_json: bool,
) -> None:
    """Store secret NAME=VALUE for agent ID (encrypted to the agent; owner only)."""
    with (
        open_client(network, key) as client,
        console.status("sending the encrypted secret…", spinner="dots"),
    ):
        result = client.agent(contract_id).set_secret(name, value, wait=not no_wait)
    document = {**result.to_json(), "secret": name}
    emit(
        document,
        as_json=as_json,
        render=lambda d: console.print(
            f"secret [bold]{d['secret']}[/bold] "
            + ("[green]stored[/green]" if d["applied"] else f"sent (command #{d['seq']})")
        ),
    )


@agent.command()
@click.argument("contract_id", metavar="ID")
@click.option("--consumer", required=True, metavar="0xADDR", help="VeilConsumer taking results.")
@click.option("--every", required=True, type=click.IntRange(min=1), help="Blocks between runs.")
@click.option("--payload", default="null", metavar="JSON", help="What job() receives.")
@network_options
@json_option
def schedule(
    contract_id: str,
    consumer: str,
    every: int,
    payload: str,
    network: Path | None,
    key: str | None,
    as_json: bool,
) -> None:
    """Run agent ID's job() every N blocks and deliver each result to a consumer (owner only).
    `veil agent schedules ID` lists them; `veil agent unschedule SID` ends one."""
    body = parse_json(payload, "--payload")
    with open_client(network, key) as client:
        schedule_id = client.schedule_job(contract_id, consumer, every=every, payload=body)
    emit(
        {"schedule_id": schedule_id, "agent": contract_id, "consumer": consumer, "every": every},
        as_json=as_json,
        render=lambda d: console.print(f"schedule {d['schedule_id']}: every {every} blocks"),
    )


@agent.command()
@click.argument("contract_id", metavar="ID")
@network_options
@json_option
def schedules(contract_id: str, network: Path | None, key: str | None, as_json: bool) -> None:
    """List agent ID's standing jobs."""
    with open_client(network, key) as client:
        found = client.schedules(contract_id)

    def render(rows: list[dict[str, Any]]) -> None:
        table = Table(title="schedules")
        for column in ("id", "consumer", "every", "since block", "active"):
            table.add_column(column)
        for row in rows:
            table.add_row(
                str(row["schedule_id"]),
                row["consumer"],
                str(row["every"]),
                str(row["start"]),
                "yes" if row["active"] else "cancelled",
            )
        console.print(table)

    emit(found, as_json=as_json, render=render)


@agent.command()
@click.argument("schedule_id", metavar="SID", type=int)
@network_options
@json_option
def unschedule(schedule_id: int, network: Path | None, key: str | None, as_json: bool) -> None:
    """End standing job SID (its agent's owner only)."""
    with open_client(network, key) as client:
        block = client.cancel_schedule(schedule_id)
    emit(
        {"schedule_id": schedule_id, "cancelled_at": block},
        as_json=as_json,
        render=lambda d: console.print(f"schedule {schedule_id} cancelled at block {block}"),
    )


@agent.command()
@click.argument("contract_id", metavar="ID")
@network_options
@json_option
def info(contract_id: str, network: Path | None, key: str | None, as_json: bool) -> None:
    """What the chain says of agent ID: owner, controller, cluster, key epoch, whether it is
    paused, and the hosts its http.fetch may reach; for its owner, also whether its init
    succeeded on the workers (and why not)."""
    with open_client(network, key) as client:
        document = client.agent_info(contract_id)
        if document["owner"].lower() == client.wallet.address.hex.lower():
            try:
                document["init"] = client.init_outcome(contract_id)
            except VeilnetError as exc:  # no worker answers now: the rest still holds
                document["init"] = {
                    "status": "unknown",
                    "ok": None,
                    "error": exc.to_json()["error"],
                }

    def render(d: dict[str, Any]) -> None:
        table = Table(title=f"agent {contract_id}", show_header=False)
        for name, value in d.items():
            if name == "egress":
                shown = ", ".join(value) or "(none: http.fetch reaches nothing)"
            elif name == "init_failed":
                shown = "no" if value is None else f"YES ({value}): the agent was paused"
            elif name == "init":
                shown = (
                    "ok"
                    if value["ok"]
                    else value["status"]
                    if value["ok"] is None
                    else f"FAILED: {value['error']['code']}: {value['error']['message']}"
                )
            else:
                shown = str(value)
            table.add_row(name, shown)
        console.print(table)

    emit(document, as_json=as_json, render=render)


@agent.group()
def egress() -> None:
    """Where an agent's http.fetch may go: host names its owner lists on chain (default deny,
    at most 16; any port). The workers enforce the list inside the enclave."""


def _egress_edit(
    contract_id: str, host: str, allowed: bool, network: Path | None, key: str | None, as_json: bool
) -> None:
    with open_client(network, key) as client:
        try:
            block = client.set_egress(contract_id, host, allowed=allowed)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="HOST") from exc
        hosts = client.egress(contract_id)
    emit(
        {
            "contract_id": contract_id,
            "host": host.lower(),
            "allowed": allowed,
            "block": block,
            "egress": hosts,
        },
        as_json=as_json,
        render=lambda d: console.print(
            f"{d['host']} {'[green]allowed[/green]' if allowed else '[red]denied[/red]'}"
            f" (block {block}); now: {', '.join(hosts) or 'none'}"
        ),
    )


@egress.command("allow")
@click.argument("contract_id", metavar="ID")
@click.argument("host", metavar="HOST")
@network_options
@json_option
def egress_allow(
    contract_id: str, host: str, network: Path | None, key: str | None, as_json: bool
) -> None:
    """Let agent ID's http.fetch reach HOST (a DNS name or IP address; owner only)."""
    _egress_edit(contract_id, host, True, network, key, as_json)


@egress.command("deny")
@click.argument("contract_id", metavar="ID")
@click.argument("host", metavar="HOST")
@network_options
@json_option
def egress_deny(
    contract_id: str, host: str, network: Path | None, key: str | None, as_json: bool
) -> None:
    """Take HOST off agent ID's allowlist (owner only)."""
    _egress_edit(contract_id, host, False, network, key, as_json)


@egress.command("list")
@click.argument("contract_id", metavar="ID")
@network_options
@json_option
def egress_list(contract_id: str, network: Path | None, key: str | None, as_json: bool) -> None:
    """The hosts agent ID's http.fetch may reach."""
    with open_client(network, key) as client:
        hosts = client.egress(contract_id)
    emit(
        {"contract_id": contract_id, "egress": hosts},
        as_json=as_json,
        render=lambda d: console.print("\n".join(hosts) or "none: http.fetch reaches nothing"),
    )
