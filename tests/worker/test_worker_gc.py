"""The long-running processes freeze what they loaded before they serve: a full collection
then walks only the objects made since (it walked every imported one: 20-70 ms stalls)."""

from __future__ import annotations

import gc
import io
import os
import threading
from pathlib import Path

from veilnet._gc import freeze_loaded
from veilnet.enclave import server
from veilnet.protocol import enclave as wire


class _Ready(io.StringIO):
    """The enclave process's standard output: notes when the ready line is written."""

    def __init__(self) -> None:
        super().__init__()
        self.ready = threading.Event()

    def write(self, text: str) -> int:
        if wire.READY_LINE in text:
            self.ready.set()
        return super().write(text)


def test_freezing_moves_what_lives_out_of_the_collectors_walks() -> None:
    gc.unfreeze()
    try:
        kept = [object() for _ in range(10)]  # noqa: F841  (alive across the freeze)
        freeze_loaded()
        assert gc.get_freeze_count() > 0
        assert gc.get_count()[0] < 10  # the collection before the freeze ran
    finally:
        gc.unfreeze()


def test_the_enclave_process_freezes_what_it_loaded_before_it_serves(tmp_path: Path) -> None:
    gc.unfreeze()
    read, write = os.pipe()
    out = _Ready()
    stdin = os.fdopen(read)
    thread = threading.Thread(
        target=server.serve,
        args=(str(tmp_path / "enclave.sock"),),
        kwargs={"out": out, "stdin": stdin},
        daemon=True,
    )
    try:
        thread.start()
        ready = out.ready.wait(30)
        frozen = gc.get_freeze_count()
    finally:
        os.close(write)  # the host went away: the process ends
        thread.join(30)
        stdin.close()
        gc.unfreeze()
    assert ready and not thread.is_alive()
    assert frozen > 0


def test_the_enclave_freezes_again_once_its_core_runs_and_only_then() -> None:
    """What booting loaded (the engine, the verifier, a restored state) lives as long as the
    core: the enclave process freezes once more after a boot, never after a refused one."""
    from veilnet.enclave import EnclaveService
    from veilnet.testing.adversary import dev_enclave_config

    booted: list[bool] = []
    service = EnclaveService(after_boot=lambda: booted.append(True))
    boot = wire.Call(op=wire.OP_BOOT, body=wire.Boot(config=dev_enclave_config()).to_bytes())
    try:
        assert isinstance(wire.decode_frame(service.handle(boot.to_bytes())), wire.Result)
        assert booted == [True]
        again = wire.decode_frame(service.handle(boot.to_bytes()))
        assert isinstance(again, wire.Failure) and again.code == "enclave_already_booted"
        assert booted == [True]
    finally:
        service.close()
