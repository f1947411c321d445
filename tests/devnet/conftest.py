"""Fixtures for end-to-end tests: one in-process devnet on the embedded chain per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from veilnet.devnet import Devnet, DevnetOptions

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "agents"


def start_devnet(tmp: Path, *, chain: str = "embedded") -> Devnet:
    options = DevnetOptions(
        workers=2, chain=chain, block_time=0.5, data_dir=tmp / ".devnet", gateway=False
    )
    devnet = Devnet(options)
    devnet.start()
    return devnet


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    net = start_devnet(tmp_path_factory.mktemp("devnet"))
    try:
        yield net
    finally:
        net.stop()
