"""``veil consumer``: deploy an EVM consumer of an agent (``VeilConsumer.vy``), ask it for work,
list its requests and their results, and follow them as workers deliver."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from veilnet.cli._output import console, emit, json_option
from veilnet.cli.agent import network_options, open_client, parse_json


@click.group()
def consumer() -> None:
    """EVM contracts that ask agents for work and take their signed results."""


@consumer.command()
@click.argument("agent")
@click.option(
    "--ttl", default=100, show_default=True, help="Blocks a request waits for its result."
)
@click.option(
    "--kind",
    type=click.Choice(["VeilConsumer", "PriceFeed"]),
    default="VeilConsumer",
    show_default=True,
    help="PriceFeed: ticks carry a price (veil consumer price C reads it).",
)
@network_options
@json_option
def deploy(
    agent: str, ttl: int, kind: str, network: Path | None, key: str | None, as_json: bool
) -> None:
    """Deploy a VeilConsumer (or a PriceFeed) of AGENT (its contract id): it takes only
    results signed by the agent's contract key."""
    with open_client(network, key) as client:
        address = client.deploy_consumer(agent, ttl=ttl, kind=kind)
    emit(
        {"consumer": address.hex, "agent": agent, "ttl": ttl, "kind": kind},
        as_json=as_json,
        render=lambda doc: console.print(f"{kind}  {doc['consumer']}  (agent {agent[:18]}…)"),
    )


@consumer.command()
@click.argument("address")
@network_options
@json_option
def price(address: str, network: Path | None, key: str | None, as_json: bool) -> None:
    """The newest price PriceFeed ADDRESS took, and the block of its tick."""
    with open_client(network, key) as client:
        found = client.price_feed(address)
    emit(
        found,
        as_json=as_json,
        render=lambda d: console.print(
            f"{d['price'] / 10 ** d['decimals']:.6f}  at block {d['height']}"
            if d["height"]
            else "no price yet"
        ),
    )


@consumer.command()
@click.argument("address")
@click.argument("payload")
@network_options
@json_option
def request(
    address: str, payload: str, network: Path | None, key: str | None, as_json: bool
) -> None:
    """Ask the agent of consumer ADDRESS for work: PAYLOAD is JSON, handed to its job()."""
    body = parse_json(payload, "PAYLOAD")
    with open_client(network, key) as client:
        request_id = client.consumer_request(address, body)
    emit(
        {"request_id": "0x" + request_id.hex()},
        as_json=as_json,
        render=lambda doc: console.print(f"request  {doc['request_id']}"),
    )


@consumer.command()
@click.argument("address")
@network_options
@json_option
def requests(address: str, network: Path | None, key: str | None, as_json: bool) -> None:
    """List the requests consumer ADDRESS made: waiting, fulfilled (with the result's hash)
    or expired."""
    with open_client(network, key) as client:
        found = client.consumer_requests(address)
    emit(found, as_json=as_json, render=_table)


@consumer.command()
@click.argument("address")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to follow.")
@network_options
@json_option
def watch(
    address: str, timeout: float, network: Path | None, key: str | None, as_json: bool
) -> None:
    """Follow consumer ADDRESS until none of its requests waits (or --timeout): each one is
    printed when it is fulfilled or expires."""
    seen: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    with open_client(network, key) as client:
        while True:
            found = client.consumer_requests(address)
            for entry in found:
                if seen.get(entry["request_id"]) != entry["status"] and not as_json:
                    console.print(f"{entry['request_id'][:18]}…  {entry['status']}")
                seen[entry["request_id"]] = entry["status"]
            if all(e["status"] != "waiting" for e in found) or time.monotonic() > deadline:
                break
            time.sleep(1.0)
    if as_json:
        emit(found, as_json=True, render=_table)


def _table(rows: list[dict[str, Any]]) -> None:
    table = Table(title="requests")
    for column in ("request", "block", "deadline", "status", "result keccak256"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["request_id"][:18] + "…",
            str(row["block"]),
            str(row["deadline"]),
            row["status"],
            (row["result_hash"] or "")[:18],
        )
    console.print(table)
