"""The SDK stands apart from the enclave core: importing it loads neither ``veilnet.runtime``
nor ``veilnet.sandbox`` (checked in a fresh interpreter, where ``sys.modules`` starts empty)."""

from __future__ import annotations

import subprocess
import sys

import pytest

FORBIDDEN = ("veilnet.runtime", "veilnet.sandbox")


@pytest.mark.parametrize(
    "statement",
    ["import veilnet.sdk", "from veilnet import Client", "from veilnet import AsyncClient"],
)
def test_importing_the_sdk_loads_no_core_or_sandbox(statement: str) -> None:
    code = (
        "import sys\n"
        f"{statement}\n"
        f"forbidden = {FORBIDDEN!r}\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(forbidden))\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"{statement} loaded {result.stdout.strip()}"
