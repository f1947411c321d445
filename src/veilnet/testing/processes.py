"""``veil devnet`` as a user runs it, in a process of its own: started with ``--json``, read until
it prints its network, stopped with Ctrl-C (SIGINT to its process group); for end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

__all__ = ["DevnetProcess", "devnet_process"]

_STOP_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class DevnetProcess:
    """A running ``veil devnet``: the JSON document it printed, its network file, its stderr."""

    document: dict[str, Any]
    network: Path
    errors: Path
    process: subprocess.Popen[str]


@contextmanager
def devnet_process(data: Path, *args: str, cwd: Path | None = None) -> Iterator[DevnetProcess]:
    """Start ``veil devnet --data-dir DATA --json ARGS...`` and yield once it is up; on exit stop
    it as Ctrl-C in a terminal does and check that it stopped cleanly (exit 0, no traceback).

    Raises:
        AssertionError: it exited before printing its network, or did not stop cleanly.
    """
    errors = data.parent / f"{data.name}.err"
    data.parent.mkdir(parents=True, exist_ok=True)
    with errors.open("w") as err:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "veilnet.cli", "devnet", "--data-dir", str(data), "--json",
             *args],
            cwd=cwd, stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True,
        )  # fmt: skip
    try:
        assert process.stdout is not None
        document = _first_document(process.stdout, errors)
        yield DevnetProcess(document, data / "network.json", errors, process)
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.communicate(timeout=_STOP_TIMEOUT_S)
    stderr = errors.read_text()
    assert process.returncode == 0, stderr[-2000:]
    assert "follower:" not in stderr, stderr[-2000:]
    assert "Traceback" not in stderr, stderr[-2000:]


def _first_document(stream: IO[str], errors: Path) -> dict[str, Any]:
    """The JSON document ``veil devnet --json`` prints once the network is up (blocking)."""
    lines: list[str] = []
    for line in stream:
        lines.append(line)
        if line.rstrip() == "}":
            document: dict[str, Any] = json.loads("".join(lines))
            return document
    raise AssertionError(f"veil devnet exited before printing its network: {errors.read_text()}")
