"""Collateral from a PCCS-compatible service (the Intel PCS/PCCS v4 API), and a local one to serve.
Verifiers fetch collateral themselves with it instead of trusting the copy a registrant posted."""

from __future__ import annotations

import asyncio
import concurrent.futures
import ssl
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

import dcap_qvl

from veilnet.attestation._collateral import Collateral
from veilnet.attestation.errors import CollateralUnavailable

__all__ = ["LocalPCCS", "fetch_collateral"]

FETCH_TIMEOUT_S: Final = 30.0
"""How long one quote's collateral (four requests) may take before the fetch gives up."""

_FIELDS: Final = (
    "pck_crl_issuer_chain",
    "root_ca_crl",
    "pck_crl",
    "tcb_info_issuer_chain",
    "tcb_info",
    "tcb_info_signature",
    "qe_identity_issuer_chain",
    "qe_identity",
    "qe_identity_signature",
)


def fetch_collateral(
    pccs_url: str, quote: bytes, *, timeout: float = FETCH_TIMEOUT_S
) -> Collateral:
    """The collateral for ``quote`` as a PCCS-compatible service at ``pccs_url`` serves it
    (PCK CRL, TCB info for the quote's FMSPC, QE identity, root CA CRL), through dcap-qvl's
    client. Runs on a thread of its own, so it may be called from inside an event loop.

    Raises:
        CollateralUnavailable: the service could not be reached, answered with an error, or
            timed out.
        CollateralInvalid: what it served is not collateral.
    """

    def run() -> Any:
        async def fetch() -> Any:
            return await dcap_qvl.get_collateral(pccs_url, quote)

        return asyncio.run(fetch())

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        try:
            got = pool.submit(run).result(timeout=timeout)
        except concurrent.futures.TimeoutError as exc:
            raise CollateralUnavailable(f"{pccs_url} did not answer within {timeout} s") from exc
        except (RuntimeError, ValueError, OSError) as exc:
            raise CollateralUnavailable(f"no collateral from {pccs_url}: {exc}") from exc
    fields: dict[str, str] = {}
    for name in _FIELDS:
        value = getattr(got, name)
        fields[name] = value if isinstance(value, str) else bytes(value).hex()
    return Collateral.from_fields(**fields)


class LocalPCCS:
    """A PCCS-compatible HTTP service on loopback that serves one collateral set for every
    FMSPC and both TEE kinds: the stand-in for a PCCS in tests and development networks.

    It answers the four v4 requests dcap-qvl makes: ``/sgx/certification/v4/pckcrl``,
    ``/{sgx,tdx}/certification/v4/tcb``, ``/{sgx,tdx}/certification/v4/qe/identity`` and
    ``/sgx/certification/v4/rootcacrl``, with the issuer chains in the headers a PCCS uses.
    """

    def __init__(
        self,
        collateral: Collateral,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._fields = collateral.to_dict()
        self.requests: list[str] = []
        """Paths asked for, in order (what a test can check was fetched)."""
        handler = _handler(self)
        self._server = _Server((host, port), handler, tls)
        self._tls = tls
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """``http://`` or, with ``tls``, ``https://`` (as gatekeepers' cores require)."""
        host, port = self._server.server_address[:2]
        return f"{'https' if self._tls is not None else 'http'}://{host!s}:{port}"

    def serve(self, collateral: Collateral) -> None:
        """Serve ``collateral`` from now on (a PCCS whose Intel data changed)."""
        self._fields = collateral.to_dict()

    def answer(self, path: str) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) for one request path (with its query string)."""
        self.requests.append(path)
        f = self._fields
        route = urllib.parse.urlparse(path).path
        if route.endswith("/certification/v4/pckcrl"):
            chain = {"SGX-PCK-CRL-Issuer-Chain": f["pck_crl_issuer_chain"]}
            return 200, chain, bytes.fromhex(f["pck_crl"])
        if route.endswith("/certification/v4/tcb"):
            # the signed JSON goes in byte for byte: the signature covers exactly those bytes
            info, signature = f["tcb_info"], f["tcb_info_signature"]
            body = f'{{"tcbInfo":{info},"signature":"{signature}"}}'
            return 200, {"TCB-Info-Issuer-Chain": f["tcb_info_issuer_chain"]}, body.encode()
        if route.endswith("/certification/v4/qe/identity"):
            identity, signature = f["qe_identity"], f["qe_identity_signature"]
            body = f'{{"enclaveIdentity":{identity},"signature":"{signature}"}}'
            chain = {"SGX-Enclave-Identity-Issuer-Chain": f["qe_identity_issuer_chain"]}
            return 200, chain, body.encode()
        if route.endswith("/certification/v4/rootcacrl"):
            return 200, {}, f["root_ca_crl"].encode()  # hex, as a PCCS serves it
        return 404, {}, b"not found"

    def __enter__(self) -> LocalPCCS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], tls: Any
    ) -> None:
        super().__init__(address, handler)
        self.tls = tls

    def get_request(self) -> tuple[Any, Any]:
        sock, address = self.socket.accept()
        if self.tls is None:
            return sock, address
        # the handshake runs on the handler's thread, so a silent client blocks only itself
        return self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that drops its connection is not the server's error


def _handler(pccs: LocalPCCS) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, headers, body = pccs.answer(self.path)
            self.send_response(status)
            for name, value in headers.items():
                # a PCCS URL-encodes the PEM chains it puts in headers
                self.send_header(name, urllib.parse.quote(value))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return  # requests are kept in ``LocalPCCS.requests``, not printed

    return Handler
