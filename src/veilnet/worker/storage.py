"""The worker's data directory: sealed identity, sealed checkpoints with the follower position,
and the relay journal. Writes are atomic (temp file, fsync, rename, fsync dir); nothing else."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from veilnet.codec import CodecError, decode, encode
from veilnet.worker.constants import (
    CHECKPOINT_DIR,
    CHECKPOINT_MAGIC,
    DEFAULT_KEEP_CHECKPOINTS,
    IDENTITY_FILE,
    RELAY_JOURNAL_FILE,
)
from veilnet.worker.errors import StorageUnavailable

__all__ = ["StoredCheckpoint", "WorkerStorage", "atomic_write"]

log = logging.getLogger("veilnet.worker.storage")

_MAX_CHECKPOINT = 1 << 30


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so a crash leaves either the old or the new file.

    Raises:
        StorageUnavailable: the directory cannot be written.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise StorageUnavailable(f"cannot write {path.name}: {exc.strerror}") from exc


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredCheckpoint:
    """One checkpoint file: the sealed core state and where the follower resumes."""

    block_number: int
    """Number of the last block applied in ``sealed``; the follower resumes at the next one."""
    block_hash: bytes
    """Hash of that block: the parent hash the next block must carry."""
    sealed: bytes
    """``EnclaveCore.checkpoint()`` output (already sealed by the core)."""
    path: Path | None = None

    @property
    def next_block(self) -> int:
        return self.block_number + 1

    def to_bytes(self) -> bytes:
        body = encode([self.block_number, self.block_hash, self.sealed])
        return CHECKPOINT_MAGIC + hashlib.sha256(body).digest() + body

    @classmethod
    def from_bytes(cls, data: bytes, *, path: Path | None = None) -> StoredCheckpoint:
        """Raises ValueError for a torn, truncated or corrupted file."""
        if not data.startswith(CHECKPOINT_MAGIC) or len(data) < len(CHECKPOINT_MAGIC) + 32:
            raise ValueError("not a checkpoint file")
        digest = data[len(CHECKPOINT_MAGIC) : len(CHECKPOINT_MAGIC) + 32]
        body = data[len(CHECKPOINT_MAGIC) + 32 :]
        if hashlib.sha256(body).digest() != digest:
            raise ValueError("checkpoint checksum mismatch")
        try:
            value = decode(body, max_size=_MAX_CHECKPOINT)
        except CodecError as exc:
            raise ValueError("checkpoint does not decode") from exc
        if not (
            isinstance(value, list)
            and len(value) == 3
            and isinstance(value[0], int)
            and isinstance(value[1], bytes)
            and isinstance(value[2], bytes)
        ):
            raise ValueError("checkpoint has the wrong shape")
        return cls(block_number=value[0], block_hash=value[1], sealed=value[2], path=path)


class WorkerStorage:
    """Files of one worker under ``root`` (created with mode 0700 if missing).

    Args:
        root: the data directory.
        keep: how many checkpoints to keep (the newest ones).
    """

    def __init__(self, root: Path, *, keep: int = DEFAULT_KEEP_CHECKPOINTS) -> None:
        if keep < 1:
            raise ValueError("keep must be at least 1")
        self.root = Path(root)
        self.keep = keep
        self.checkpoint_dir = self.root / CHECKPOINT_DIR
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.checkpoint_dir.mkdir(exist_ok=True, mode=0o700)
        except OSError as exc:
            raise StorageUnavailable(f"cannot create data directory: {exc.strerror}") from exc

    # --- identity ---

    @property
    def identity_path(self) -> Path:
        return self.root / IDENTITY_FILE

    def load_identity(self) -> bytes | None:
        """The sealed identity written by an earlier run, or None on first start."""
        return _read_optional(self.identity_path, "identity")

    def save_identity(self, sealed: bytes) -> None:
        atomic_write(self.identity_path, sealed)

    @property
    def keys_path(self) -> Path:
        return self.root / "keys.sealed"

    def load_keys(self) -> bytes | None:
        """Master keys and proposals the enclave drew from TEE entropy (sealed), or None."""
        return _read_optional(self.keys_path, "sealed keys")

    def save_keys(self, sealed: bytes) -> None:
        atomic_write(self.keys_path, sealed)

    # --- checkpoints ---

    def _checkpoint_files(self) -> list[tuple[int, Path]]:
        found = []
        try:
            entries = list(self.checkpoint_dir.iterdir())
        except OSError as exc:
            raise StorageUnavailable(f"cannot list checkpoints: {exc.strerror}") from exc
        for path in entries:
            name = path.name
            if not (name.startswith("ckpt-") and name.endswith(".bin")):
                continue
            try:
                found.append((int(name[5:-4]), path))
            except ValueError:
                continue
        return sorted(found)

    def save_checkpoint(self, checkpoint: StoredCheckpoint) -> Path:
        """Write one checkpoint atomically, then drop all but the newest ``keep``."""
        path = self.checkpoint_dir / f"ckpt-{checkpoint.block_number:012d}.bin"
        atomic_write(path, checkpoint.to_bytes())
        files = self._checkpoint_files()
        for _, old in files[: max(0, len(files) - self.keep)]:
            with contextlib.suppress(OSError):
                old.unlink()
        return path

    def checkpoints(self) -> Iterator[StoredCheckpoint]:
        """Readable checkpoints, newest first; corrupt ones are skipped with a warning."""
        for number, path in reversed(self._checkpoint_files()):
            try:
                checkpoint = StoredCheckpoint.from_bytes(path.read_bytes(), path=path)
            except (OSError, ValueError) as exc:
                log.warning("skipping unreadable checkpoint %s: %s", path.name, exc)
                continue
            if checkpoint.block_number != number:
                log.warning("skipping checkpoint %s: its block number disagrees", path.name)
                continue
            yield checkpoint

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        return next(iter(self.checkpoints()), None)

    def discard_checkpoints(self) -> None:
        """Remove every checkpoint (an operator starting the worker over)."""
        for _, path in self._checkpoint_files():
            with contextlib.suppress(OSError):
                path.unlink()

    # --- relay ---

    @property
    def relay_journal_path(self) -> Path:
        return self.root / RELAY_JOURNAL_FILE


def _read_optional(path: Path, what: str) -> bytes | None:
    """A file an earlier run wrote, or None when there is none yet."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StorageUnavailable(f"cannot read {what}: {exc.strerror}") from exc
