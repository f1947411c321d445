"""Compiles the Solidity twin of a contract (``contracts/*.sol``) with solc-js from ``.tools``
(npm ``solc``, pinned in the Makefile), so tests check it against its Vyper original."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from veilnet.chain.artifacts import CONTRACTS_DIR
from veilnet.chain.errors import ArtifactMismatch

__all__ = ["compile_solidity", "find_solc"]

_COMPILE_JS = """
const solc = require(process.argv[1]);
let input = "";
process.stdin.on("data", (d) => (input += d));
process.stdin.on("end", () => process.stdout.write(solc.compile(input)));
"""


def find_solc() -> Path | None:
    """The solc-js package in ``.tools/node_modules`` of the repository (or cwd), when node
    is on PATH to run it."""
    if shutil.which("node") is None:
        return None
    for root in [Path.cwd(), *Path(__file__).resolve().parents]:
        package = root / ".tools" / "node_modules" / "solc"
        if (package / "soljson.js").is_file():
            return package
    return None


def compile_solidity(name: str, contract: str | None = None) -> dict[str, Any]:
    """``{"abi": [...], "bytecode": bytes}`` of ``contract`` (default ``name``) in
    ``contracts/<name>.sol``, optimized, for the cancun EVM.

    Raises:
        ArtifactMismatch: solc-js or node is missing, or the source does not compile.
    """
    package = find_solc()
    if package is None:
        raise ArtifactMismatch("solc-js is not installed (`make` puts it into .tools with npm)")
    source = (CONTRACTS_DIR / f"{name}.sol").read_text()
    request = {
        "language": "Solidity",
        "sources": {f"{name}.sol": {"content": source}},
        "settings": {
            "optimizer": {"enabled": True, "runs": 200},
            "evmVersion": "cancun",
            "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}},
        },
    }
    done = subprocess.run(  # noqa: S603 - node runs our fixed script on our own source
        ["node", "-e", _COMPILE_JS, str(package)],  # noqa: S607 - node from PATH, as npm
        input=json.dumps(request).encode(),
        capture_output=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise ArtifactMismatch(f"solc-js failed: {done.stderr.decode(errors='replace')[:500]}")
    output = json.loads(done.stdout)
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise ArtifactMismatch(f"{name}.sol does not compile: {errors[0].get('formattedMessage')}")
    compiled = output["contracts"][f"{name}.sol"][contract or name]
    return {
        "abi": compiled["abi"],
        "bytecode": bytes.fromhex(compiled["evm"]["bytecode"]["object"]),
    }
