"""Shared CLI output helpers: JSON documents on stdout, rich tables for people.
Commands call ``emit`` with a JSON-able document and a function that renders it for humans."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click
from rich.console import Console

console = Console()
err_console = Console(stderr=True)


def emit(document: Any, *, as_json: bool, render: Callable[[Any], None]) -> None:
    """Print ``document`` as one JSON document (``--json``) or through ``render``."""
    if as_json:
        click.echo(json.dumps(document, indent=2, sort_keys=True, default=str))
    else:
        render(document)


json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
