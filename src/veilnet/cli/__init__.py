"""The ``veil`` command line: a thin layer over the SDK and libraries, with rich output.
Subcommands live in their own modules and are imported only when used, so ``--help`` is fast."""

from veilnet.cli._main import main

__all__ = ["main"]
