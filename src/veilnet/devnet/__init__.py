"""The one-command devnet: chain, gatekeepers, workers and gateway in one process, plus the demo.
``Devnet(DevnetOptions(...)).start()`` writes ``network.json``; ``run_demo`` tours the features."""

from veilnet.devnet._devnet import Devnet, DevnetOptions, Progress
from veilnet.devnet.errors import DemoFailed, DevnetConfigInvalid, DevnetStartFailed

__all__ = [
    "DemoFailed",
    "Devnet",
    "DevnetConfigInvalid",
    "DevnetOptions",
    "DevnetStartFailed",
    "Progress",
]
