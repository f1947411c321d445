"""Errors of the worker host: its HTTP API's own refusals, storage and chain-setup failures.
Errors from the core (``veilnet.runtime``) and chain keep their own codes through the API;
the refusals clients see (RequestTooLarge, RateLimited) live in ``veilnet.protocol.errors``.

InvalidInput
├── RequestTooLarge        a request body is larger than the API accepts (413)
├── BadRequest             a malformed path or query parameter (400)
├── WorkerConfigInvalid    the worker's configuration or network file is unusable
└── RouteNotFound          no endpoint at this path and method (404)
PolicyRejected
└── RateLimited            this client sent too many requests; retry later (429)
Unavailable
├── StorageUnavailable     the data directory cannot be read or written
├── RegistrationFailed     the worker could not register itself on chain
├── BootstrapTimeout       a network bootstrap step did not complete in time
├── WaitTimeout            ``WorkerHost.wait_until`` ran past its deadline
├── EnclaveUnavailable     the enclave process did not start, or went away
└── WorkerIOFailed         the host could not carry out I/O its core asked for (a relay)
    └── WorkerIOTimeout    the remote party did not answer the relay in time
"""

from __future__ import annotations

from veilnet.errors import InvalidInput, Unavailable
from veilnet.protocol.errors import RateLimited, RequestTooLarge

__all__ = [
    "BadRequest",
    "BootstrapTimeout",
    "EnclaveUnavailable",
    "RateLimited",
    "RegistrationFailed",
    "RequestTooLarge",
    "RouteNotFound",
    "StorageUnavailable",
    "WaitTimeout",
    "WorkerConfigInvalid",
    "WorkerIOFailed",
    "WorkerIOTimeout",
]


class BadRequest(InvalidInput):
    """A path or query parameter is malformed."""

    code = "worker_bad_request"


class WorkerConfigInvalid(InvalidInput):
    """The worker configuration (or network file) is incomplete or contradictory."""

    code = "worker_config_invalid"


class StorageUnavailable(Unavailable):
    """The worker's data directory cannot be read or written."""

    code = "worker_storage_unavailable"


class RegistrationFailed(Unavailable):
    """The worker could not register its identity on chain (unfunded, reverted, node down)."""

    code = "worker_registration_failed"


class BootstrapTimeout(Unavailable):
    """A network bootstrap step (endorsement, master key, cluster key) did not complete in time."""

    code = "worker_bootstrap_timeout"
    http_status = 504


class WaitTimeout(Unavailable):
    """``WorkerHost.wait_until`` ran past its deadline before the condition held."""

    code = "worker_wait_timeout"
    http_status = 504


class RouteNotFound(InvalidInput):
    """No API endpoint at this path (or not with this method)."""

    code = "worker_route_not_found"
    http_status = 404


class EnclaveUnavailable(Unavailable):
    """The enclave process did not start, or its connection broke."""

    code = "worker_enclave_unavailable"


class WorkerIOFailed(Unavailable):
    """The host could not carry out I/O its core asked for (connect, send, receive)."""

    code = "worker_io_failed"


class WorkerIOTimeout(WorkerIOFailed):
    """The remote party of a relayed connection sent nothing within the host's time limit."""

    code = "worker_io_timeout"
