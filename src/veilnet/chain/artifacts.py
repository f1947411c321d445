"""Loads the committed compiled contracts (ABI and bytecode) from ``chain/artifacts/*.json``.
Stdlib only, so the sans-IO runtime can read event ABIs without the compiler or web3."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from veilnet.chain.errors import ArtifactMismatch

__all__ = [
    "ARTIFACTS_DIR",
    "CONTRACTS_DIR",
    "CONTRACT_NAMES",
    "Artifact",
    "load_artifact",
    "write_abis",
]

ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"
CONTRACTS_DIR = Path(__file__).resolve().parent / "contracts"
CONTRACT_NAMES = ("Registry", "Bus", "VeilConsumer", "PriceFeed", "Escrow")


@dataclass(frozen=True, slots=True)
class Artifact:
    """One compiled contract: its name, ABI, creation bytecode and provenance."""

    name: str
    abi: tuple[dict[str, Any], ...]
    bytecode: bytes
    vyper_version: str
    evm_version: str
    source_sha256: str


@cache
def load_artifact(name: str) -> Artifact:
    """The committed artifact of contract ``name``; raises ArtifactMismatch if missing."""
    path = ARTIFACTS_DIR / f"{name}.json"
    try:
        doc = json.loads(path.read_text())
        return Artifact(
            name=doc["contract"],
            abi=tuple(doc["abi"]),
            bytecode=bytes.fromhex(doc["bytecode"].removeprefix("0x")),
            vyper_version=doc["vyper_version"],
            evm_version=doc["evm_version"],
            source_sha256=doc["source_sha256"],
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactMismatch(
            f"artifact {name} is missing or unreadable; run python -m veilnet.chain.compile"
        ) from exc


def write_abis(folder: Path) -> list[Path]:
    """Every contract's ABI as ``folder/NAME.json`` (for DApps without the SDK); the paths."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in CONTRACT_NAMES:
        path = folder / f"{name}.json"
        path.write_text(json.dumps(load_artifact(name).abi, indent=2) + "\n")
        written.append(path)
    return written
