"""Allows ``python -m veilnet.cli``; the installed entry point is ``veil``.
Both go through ``veilnet.cli.main`` and its one-line error contract."""

from veilnet.cli import main

main()
