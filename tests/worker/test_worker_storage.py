"""The data directory: atomic writes, keep-N checkpoints, corrupt files skipped, identity."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from veilnet.worker import StorageUnavailable, StoredCheckpoint, WorkerStorage, atomic_write


def _ckpt(n: int) -> StoredCheckpoint:
    return StoredCheckpoint(
        block_number=n, block_hash=bytes([n % 256]) * 32, sealed=b"sealed-%d" % n
    )


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    atomic_write(path, b"one")
    atomic_write(path, b"two")
    assert path.read_bytes() == b"two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_atomic_write_failure_is_typed(tmp_path: Path) -> None:
    with pytest.raises(StorageUnavailable) as info:
        atomic_write(tmp_path / "missing" / "f.bin", b"x")
    assert info.value.code == "worker_storage_unavailable"


def test_checkpoint_round_trip_and_resume_position(tmp_path: Path) -> None:
    store = WorkerStorage(tmp_path / "data")
    assert store.latest_checkpoint() is None
    store.save_checkpoint(_ckpt(7))
    found = store.latest_checkpoint()
    assert found is not None
    assert (found.block_number, found.block_hash, found.sealed) == (7, b"\x07" * 32, b"sealed-7")
    assert found.next_block == 8


def test_keeps_only_the_newest_n(tmp_path: Path) -> None:
    store = WorkerStorage(tmp_path, keep=3)
    for n in (5, 10, 15, 20, 25):
        store.save_checkpoint(_ckpt(n))
    assert [c.block_number for c in store.checkpoints()] == [25, 20, 15]
    assert len(list(store.checkpoint_dir.iterdir())) == 3


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # torn write
        lambda data: data[:-1] + bytes([data[-1] ^ 1]),  # flipped bit
        lambda data: b"",  # empty
        lambda data: b"XXXXXXXX" + data[8:],  # wrong magic
    ],
    ids=["torn", "bitflip", "empty", "magic"],
)
def test_corrupt_newest_falls_back_to_previous(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: object
) -> None:
    store = WorkerStorage(tmp_path)
    store.save_checkpoint(_ckpt(10))
    newest = store.save_checkpoint(_ckpt(20))
    newest.write_bytes(damage(newest.read_bytes()))  # type: ignore[operator]
    with caplog.at_level(logging.WARNING, logger="veilnet.worker.storage"):
        found = store.latest_checkpoint()
    assert found is not None and found.block_number == 10
    assert any("ckpt-000000000020.bin" in r.getMessage() for r in caplog.records)


def test_renamed_checkpoint_is_not_trusted(tmp_path: Path) -> None:
    store = WorkerStorage(tmp_path)
    path = store.save_checkpoint(_ckpt(10))
    os.replace(path, path.with_name("ckpt-000000000099.bin"))
    assert store.latest_checkpoint() is None


def test_shape_errors_are_value_errors() -> None:
    good = _ckpt(3).to_bytes()
    assert StoredCheckpoint.from_bytes(good).block_number == 3
    for bad in (b"", b"VEILCKP1", b"VEILCKP1" + b"\x00" * 40):
        with pytest.raises(ValueError):
            StoredCheckpoint.from_bytes(bad)


def test_identity_and_discard(tmp_path: Path) -> None:
    store = WorkerStorage(tmp_path / "d")
    assert store.load_identity() is None
    store.save_identity(b"sealed identity")
    assert WorkerStorage(tmp_path / "d").load_identity() == b"sealed identity"
    store.save_checkpoint(_ckpt(1))
    store.discard_checkpoints()
    assert store.latest_checkpoint() is None
    assert store.relay_journal_path.parent == store.root
    with pytest.raises(ValueError):
        WorkerStorage(tmp_path, keep=0)
