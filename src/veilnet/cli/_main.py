"""The ``veil`` click group, lazy subcommand loading and the one-line error contract.
Every failure prints ``code: message`` on stderr, exits non-zero; ``--debug`` shows tracebacks."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any

import click

from veilnet._version import __version__
from veilnet.errors import VeilnetError

# name -> "module:attribute" of a click command or group; add one line per new subcommand.
SUBCOMMANDS: dict[str, str] = {
    "bench": "veilnet.cli.bench:bench",
    "attest": "veilnet.cli.attest:attest",
    "inference": "veilnet.cli.inference:inference",
    "worker": "veilnet.cli.worker:worker",
    "devnet": "veilnet.cli.devnet:devnet",
    "status": "veilnet.cli.status:status",
    "agent": "veilnet.cli.agent:agent",
    "audit": "veilnet.cli.audit:audit",
    "keys": "veilnet.cli.keys:keys",
    "cluster": "veilnet.cli.cluster:cluster",
    "consumer": "veilnet.cli.consumer:consumer",
    "abi": "veilnet.cli.abi:abi",
    "enclave": "veilnet.cli.enclave:enclave",
}


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module only when that subcommand runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._available()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is not None or cmd_name not in self._available():
            return found
        module_name, attribute = SUBCOMMANDS[cmd_name].split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{SUBCOMMANDS[cmd_name]} is not a click command")
        return command

    @staticmethod
    def _available() -> list[str]:
        return [
            name
            for name, target in SUBCOMMANDS.items()
            if importlib.util.find_spec(target.split(":")[0]) is not None
        ]


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="veil")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Veilnet: confidential compute for AI agent contracts.

    Run `veil devnet --demo` for a tour, `veil COMMAND --help` for details.
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def main(argv: list[str] | None = None) -> Any:
    """Console entry point: run the CLI, turning Veilnet errors into one line on stderr."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        return cli.main(args=argv, prog_name="veil", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except VeilnetError as exc:
        if debug:
            raise
        click.echo(f"{exc.code}: {exc.message}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
