"""``veil devnet [--demo]``: a whole network on this machine, and the guided tour of it.
Starts chain, gatekeepers, workers and gateway, writes ``network.json`` and prints endpoints."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.panel import Panel
from rich.table import Table

from veilnet._gc import freeze_loaded
from veilnet.cli._output import console, err_console, json_option
from veilnet.devnet import constants as C  # noqa: N812

if TYPE_CHECKING:  # the devnet itself is imported when the command runs (a fast `veil --help`)
    from rich.console import Console

    from veilnet.devnet import Devnet


@click.command()
@click.option("--workers", default=C.DEFAULT_WORKERS, show_default=True, help="Worker nodes.")
@click.option("--gatekeepers", default=C.DEFAULT_GATEKEEPERS, show_default=True)
@click.option("--block-time", default=C.DEFAULT_BLOCK_TIME, show_default=True, help="Seconds.")
@click.option("--finality", default=C.DEFAULT_FINALITY, show_default=True, help="Blocks.")
@click.option(
    "--chain",
    default="auto",
    show_default=True,
    metavar="embedded|anvil|URL",
    help="auto = anvil when installed (make), else the embedded py-evm chain.",
)
@click.option("--rpc-port", default=None, type=int, help="Chain RPC port (default: free port).")
@click.option("--api-port", default=None, type=int, help="First worker API port (default: free).")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address the chain, the sequencer, the gateway and the nodes listen on and "
    "network.json names; another host's `veil worker run --network` joins through it.",
)
@click.option(
    "--data-dir",
    default=C.DEFAULT_DATA_DIR,
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
)
@click.option("--no-gateway", is_flag=True, help="Do not start the inference gateway.")
@click.option("--demo", is_flag=True, help="Run the guided tour of every capability, then exit.")
@json_option
def devnet(
    workers: int,
    gatekeepers: int,
    block_time: float,
    finality: int,
    chain: str,
    rpc_port: int | None,
    api_port: int | None,
    host: str,
    data_dir: Path,
    no_gateway: bool,
    demo: bool,
    as_json: bool,
) -> None:
    """Start a local network (dev TEE): chain, gatekeepers, workers, inference gateway.

    Writes DATA_DIR/network.json (the SDK and every `veil` command find it there) and runs
    until Ctrl-C. With --demo: deploys the example agents, tours every capability printing
    each verified result, and exits 0.
    """
    from veilnet.devnet import Devnet, DevnetOptions

    options = DevnetOptions(
        workers=workers,
        gatekeepers=gatekeepers,
        block_time=block_time,
        finality=finality,
        chain=chain,
        rpc_port=rpc_port,
        api_port=api_port,
        host=host,
        data_dir=data_dir,
        gateway=False if no_gateway else None,
    )
    began = time.monotonic()
    out = err_console if as_json else console
    _stop_on_signals()
    spinner = out.status("starting the devnet…", spinner="dots")
    net = Devnet(options, progress=lambda line: spinner.update(line))
    try:
        out.print(
            "[bold red]INSECURE development TEE[/bold red]: a devnet proves nothing about hardware",
            highlight=False,
        )
        # A stop asked for while it starts (or as it comes up) stops it cleanly too: the
        # handlers raise KeyboardInterrupt wherever the main thread is.
        with spinner:
            net.start()
        freeze_loaded()  # what the devnet loaded to start lives as long as it
        _serve(net, demo=demo, as_json=as_json, out=out, began=began)
    except KeyboardInterrupt:
        if demo:
            raise  # an interrupted tour did not complete: not a success
    finally:
        with out.status("stopping the devnet…", spinner="dots"):
            net.stop()


def _serve(net: Devnet, *, demo: bool, as_json: bool, out: Console, began: float) -> None:
    """Print the endpoints and run until stopped, or run the tour and print its result."""
    started = time.monotonic() - began
    if not as_json:
        _endpoints(net, started)
    if not demo:
        if as_json:
            click.echo(json.dumps(_public(net.network), indent=2))
        out.print("[dim]running; Ctrl-C to stop[/dim]")
        net.wait_forever()
        return
    from veilnet.devnet._demo import run_demo

    steps = run_demo(net, (lambda _s: None) if as_json else _render_step)
    total = time.monotonic() - began
    if as_json:
        click.echo(
            json.dumps(
                {
                    "network": _public(net.network),
                    "steps": [s.to_json() for s in steps],
                    "start_s": round(started, 3),
                    "total_s": round(total, 3),
                },
                indent=2,
                default=str,
            )
        )
    else:
        console.print(
            f"[bold green]demo complete[/bold green]: {len(steps)} steps, every result "
            f"verified; devnet up in {started:.1f} s, whole tour {total:.1f} s"
        )


def _stop_on_signals() -> None:
    """Ctrl-C and SIGTERM both end the devnet through its ``finally``: workers, gateway and
    anvil stop, ``network.json`` is marked stale. Installed explicitly, because a shell starts a
    background job with SIGINT ignored, and SIGTERM would otherwise kill it with anvil left
    running."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread may install handlers (a devnet run inside a test's thread)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, interrupt)


def _public(network: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in network.items() if k not in ("dev_accounts", "network_seed")}


def _endpoints(net: Any, started: float) -> None:
    table = Table(title=f"Veilnet devnet (up in {started:.1f} s)")
    table.add_column("role")
    table.add_column("name")
    table.add_column("endpoint", overflow="fold")
    for role, name, url in net.endpoints():
        table.add_row(role, name, url)
    console.print(table)
    console.print(
        f"chain id {net.network['chain_id']} · Registry {net.network['contracts']['Registry']} · "
        f"Bus {net.network['contracts']['Bus']}",
        soft_wrap=True,
    )


def _render_step(step: Any) -> None:
    if step.skipped:
        console.print(Panel(f"[yellow]skipped[/yellow]: {step.skipped}", title=step.title))
        return
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="cyan", no_wrap=True)
    table.add_column(overflow="fold")
    for label, value in step.lines:
        table.add_row(label, value)
    console.print(
        Panel(table, title=f"[bold]{step.title}[/bold]", subtitle=f"{step.seconds:.1f} s")
    )
