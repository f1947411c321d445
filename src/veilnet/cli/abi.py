"""``veil abi``: the ABIs of Veilnet's contracts, for DApps that use web3 or ethers directly
(the packaged artifacts the SDK and the workers use, never a copy that could drift)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from veilnet.chain.artifacts import CONTRACT_NAMES, load_artifact, write_abis
from veilnet.cli._output import console


@click.command()
@click.argument("name", required=False, type=click.Choice(CONTRACT_NAMES, case_sensitive=False))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write every contract's ABI as NAME.json into this folder.",
)
def abi(name: str | None, out: Path | None) -> None:
    """Print the ABI of NAME (Registry, Bus, VeilConsumer, PriceFeed, Escrow) as JSON, or
    write them all with --out DIR. `veil devnet` writes them next to its network.json."""
    if out is not None:
        written = write_abis(out)
        console.print(f"wrote {', '.join(p.name for p in written)} to {out}")
        return
    if name is None:
        raise click.UsageError("name a contract, or give --out DIR")
    canonical = {n.lower(): n for n in CONTRACT_NAMES}[name.lower()]
    click.echo(json.dumps(load_artifact(canonical).abi, indent=2))
