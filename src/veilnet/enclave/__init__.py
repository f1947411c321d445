"""The enclave process (Phala's pRuntime beside pherry): the core behind a bytes-only interface.
``veil enclave serve --socket PATH`` runs it; the worker host starts one and only sends frames."""

from veilnet.enclave.parts import EnclaveConfigInvalid, Parts, build_parts
from veilnet.enclave.service import (
    EnclaveAlreadyBooted,
    EnclaveIOFailed,
    EnclaveNotBooted,
    EnclaveService,
    IOChannel,
)

__all__ = [
    "EnclaveAlreadyBooted",
    "EnclaveConfigInvalid",
    "EnclaveIOFailed",
    "EnclaveNotBooted",
    "EnclaveService",
    "IOChannel",
    "Parts",
    "build_parts",
]
