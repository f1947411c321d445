"""``veil bench``: run named benchmarks and print a table, or JSON with ``--json``.
Each benchmark reports figures next to a baseline measured in the same run."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from veilnet.bench import available, run
from veilnet.cli._output import console, emit, json_option


@click.command()
@click.argument("names", nargs=-1)
@click.option("--quick", is_flag=True, help="Smaller sizes: a smoke run, not a measurement.")
@json_option
def bench(names: tuple[str, ...], quick: bool, as_json: bool) -> None:
    """Run benchmarks (all available when no NAME is given).

    With one NAME and --json, prints {"bench", "figures", "env"}; with several, a list.
    """
    known = available()
    for name in names:
        if name not in known:
            raise click.BadParameter(f"unknown benchmark {name!r}; choose from {', '.join(known)}")
    results = [run(name, quick=quick).to_json() for name in (names or tuple(known))]
    document: Any = results[0] if len(results) == 1 else results
    emit(document, as_json=as_json, render=lambda _: _render(results))


def _render(results: list[dict[str, Any]]) -> None:
    for result in results:
        table = Table(title=f"veil bench {result['bench']}")
        table.add_column("figure")
        table.add_column("value", justify="right")
        for key, value in result["figures"].items():
            shown = f"{value:,.3f}" if isinstance(value, float) else str(value)
            table.add_row(key, shown)
        console.print(table)
        params = result["env"].get("params")
        if params:
            console.print(f"[dim]params: {params}[/dim]")
