"""The worker host (untrusted): follows the chain, feeds the enclave core, relays its egress,
keeps sealed checkpoints and serves the worker HTTP API; ``bootstrap_network`` for devnets."""

from veilnet.worker.adapter import to_core_block, to_core_event
from veilnet.worker.api import APIServer, TokenBuckets, create_app
from veilnet.worker.bootstrap import (
    BootstrapResult,
    bootstrap_network,
    cluster_id,
    dev_measurement,
)
from veilnet.worker.config import WorkerConfig
from veilnet.worker.errors import (
    BadRequest,
    BootstrapTimeout,
    RateLimited,
    RegistrationFailed,
    RequestTooLarge,
    RouteNotFound,
    StorageUnavailable,
    WaitTimeout,
    WorkerConfigInvalid,
)
from veilnet.worker.host import WorkerHost
from veilnet.worker.interfaces import WorkerService
from veilnet.worker.storage import StoredCheckpoint, WorkerStorage, atomic_write

__all__ = [
    "APIServer",
    "BadRequest",
    "BootstrapResult",
    "BootstrapTimeout",
    "RateLimited",
    "RegistrationFailed",
    "RequestTooLarge",
    "RouteNotFound",
    "StorageUnavailable",
    "StoredCheckpoint",
    "TokenBuckets",
    "WaitTimeout",
    "WorkerConfig",
    "WorkerConfigInvalid",
    "WorkerHost",
    "WorkerService",
    "WorkerStorage",
    "atomic_write",
    "bootstrap_network",
    "cluster_id",
    "create_app",
    "dev_measurement",
    "to_core_block",
    "to_core_event",
]
