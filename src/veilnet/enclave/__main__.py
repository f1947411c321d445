"""``python -m veilnet.enclave serve --socket PATH``: the enclave process, as its host starts it.
The same as ``veil enclave serve``, without loading the CLI's dependencies."""

from __future__ import annotations

import argparse
import logging

from veilnet.enclave.server import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="veilnet.enclave", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="serve the enclave interface on a Unix socket")
    run.add_argument("--socket", required=True, help="path of the Unix socket to listen on")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="enclave %(levelname)s %(message)s")
    serve(args.socket)


if __name__ == "__main__":
    main()
