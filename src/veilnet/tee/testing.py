"""Conformance suite for ``Enclave`` backends: every backend must pass ``check_tee_backend``.
Used by Veilnet's tests for dev, dstack and gramine, and by anyone writing a new backend."""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn, cast

from veilnet.attestation import Measurement, parse_quote
from veilnet.tee.base import Enclave
from veilnet.tee.errors import UnsealFailed

__all__ = ["check_tee_backend"]


def _fail(message: str) -> NoReturn:
    raise AssertionError(f"TEE backend conformance: {message}")


def check_tee_backend(
    enclave: Enclave,
    *,
    report_data: bytes = bytes(range(64)),
    verify: Callable[[bytes], None] | None = None,
) -> None:
    """Exercise ``enclave`` and raise ``AssertionError`` on the first broken promise.

    Args:
        enclave: the backend under test.
        report_data: the 64 bytes to quote (recorded backends can only quote what they have).
        verify: optional full check of the quote (e.g. dcap-qvl with collateral).
    """
    if not isinstance(cast(object, enclave), Enclave):
        _fail("does not implement the Enclave protocol")
    quote = cast(object, enclave.quote(report_data))
    if not isinstance(quote, bytes):
        _fail("quote() must return bytes")
    parsed = parse_quote(quote)
    if parsed.tee is not enclave.kind:
        _fail(f"quote is {parsed.tee.value}, backend says {enclave.kind.value}")
    if parsed.report_data != report_data:
        _fail("quote does not bind the requested report_data")
    measurement = enclave.measurement
    if not isinstance(measurement, Measurement) or measurement.tee is not enclave.kind:
        _fail("measurement has the wrong type or TEE kind")
    if measurement.id != Measurement.of_quote(parsed).id:
        _fail("measurement differs from the quote's")
    for bad in (b"", bytes(63), bytes(65)):
        try:
            enclave.quote(bad)
        except ValueError:
            pass
        else:
            _fail(f"quote() accepted {len(bad)} bytes of report_data")
    if verify is not None:
        verify(quote)

    secret = b"conformance secret \x00\xff"
    blob = enclave.seal(secret, b"aad-1")
    if secret in blob:
        _fail("sealed blob contains the plaintext")
    if enclave.unseal(blob, b"aad-1") != secret:
        _fail("unseal(seal(x)) != x")
    tampered = bytearray(blob)
    tampered[-1] ^= 1
    for case, args in (("wrong AAD", (blob, b"aad-2")), ("tampering", (bytes(tampered), b"aad-1"))):
        try:
            enclave.unseal(*args)
        except UnsealFailed:
            pass
        else:
            _fail(f"unseal accepted {case}")

    first, second = enclave.random_bytes(32), enclave.random_bytes(32)
    if len(first) != 32 or first == second:
        _fail("random_bytes must return fresh bytes of the requested length")
