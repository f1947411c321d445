"""Every TEE backend passes ``check_tee_backend``: dev (both kinds), dstack against a fake
guest agent on a Unix socket serving recorded responses, gramine against a fake
/dev/attestation directory."""

from __future__ import annotations

import json
import socket
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from socketserver import ThreadingMixIn, UnixStreamServer
from typing import Any

import pytest

from veilnet.attestation import Policy, parse_quote, verify_event_log, verify_quote_at
from veilnet.errors import VeilnetError
from veilnet.tee import DevEnclave, DstackEnclave, Enclave, GramineEnclave
from veilnet.tee.testing import check_tee_backend

from .conftest import AT, ISSUED_AT, SEED, TESTDATA


@pytest.mark.parametrize("kind", ["tdx", "sgx"])
def test_dev_backend_conformance(kind: str) -> None:
    enclave = DevEnclave(
        SEED, kind=kind, allow_insecure_dev_tee=True, collateral_issued_at=ISSUED_AT
    )

    def verify(quote: bytes) -> None:
        verify_quote_at(
            quote,
            enclave.collateral(),
            at=AT,
            policy=Policy.development(allowed_measurements=frozenset({enclave.measurement.id})),
            root=enclave.trust_root,
        ).require_accepted()

    check_tee_backend(enclave, verify=verify)
    assert "redacted" in repr(enclave)


def test_dev_sealing_is_bound_to_measurement_and_network(dev_tdx: DevEnclave) -> None:
    blob = dev_tdx.seal(b"state", b"aad")
    other = DevEnclave(b"x" * 32, allow_insecure_dev_tee=True)
    with pytest.raises(VeilnetError) as info:
        other.unseal(blob, b"aad")
    assert info.value.code == "tee_unseal_failed"
    with pytest.raises(VeilnetError):
        dev_tdx.unseal(b"short", b"aad")


# --- dstack: fake guest agent on a Unix socket -----------------------------------------------

RECORDED = json.loads((TESTDATA / "dstack" / "quote-report.json").read_text())
FAKE_KEY = {"key": "ab" * 32, "signature_chain": ["cd" * 65]}


class _Agent(BaseHTTPRequestHandler):
    responses: dict[str, Any] = {"GetQuote": RECORDED, "GetKey": FAKE_KEY}

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        body = self.responses.get(self.path.strip("/"))
        if body is None:
            self.send_response(404)
            self.end_headers()
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        return

    def address_string(self) -> str:
        return "unix"


class _Server(ThreadingMixIn, UnixStreamServer):
    daemon_threads = True


@pytest.fixture
def agent_socket() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="veil-dstack-") as tmp:
        path = str(Path(tmp) / "dstack.sock")
        server = _Server(path, _Agent)
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        try:
            yield path
        finally:
            server.shutdown()
            server.server_close()


def test_dstack_backend_conformance(agent_socket: str) -> None:
    enclave = DstackEnclave(agent_socket)
    recorded_report_data = bytes.fromhex(RECORDED["report_data"])
    check_tee_backend(enclave, report_data=recorded_report_data)
    quote = parse_quote(enclave.quote(recorded_report_data))
    assert enclave.last_event_log is not None
    replayed = verify_event_log(quote, enclave.last_event_log)
    assert replayed.event("compose-hash") is not None
    with pytest.raises(VeilnetError) as info:
        enclave.collateral()
    assert info.value.code == "tee_collateral_unavailable"


def test_dstack_rejects_a_quote_for_other_report_data(agent_socket: str) -> None:
    enclave = DstackEnclave(agent_socket)
    with pytest.raises(VeilnetError) as info:
        enclave.quote(b"\x01" * 64)
    assert info.value.code == "tee_response_invalid"


def test_dstack_unavailable(tmp_path: Path) -> None:
    with pytest.raises(VeilnetError) as info:
        DstackEnclave(str(tmp_path / "missing.sock"))
    assert info.value.code == "tee_unavailable"
    dead = tmp_path / "dead.sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(dead))  # exists but nobody listens
    try:
        enclave = DstackEnclave(str(dead), timeout=1)
        with pytest.raises(VeilnetError) as info:
            enclave.quote(bytes(64))
        assert info.value.code == "tee_unavailable"
    finally:
        sock.close()


# --- gramine: fake /dev/attestation directory ---------------------------------------------------


def _fake_attestation_dir(root: Path, enclave: DevEnclave, report_data: bytes) -> None:
    quote = enclave.quote(report_data)
    (root / "keys").mkdir(parents=True)
    (root / "attestation_type").write_text("dcap\n")
    (root / "keys" / "_sgx_mrenclave").write_bytes(b"\x5a" * 16)
    (root / "quote").write_bytes(quote)
    (root / "report").write_bytes(parse_quote(quote).body + bytes(48))


def test_gramine_backend_conformance(tmp_path: Path, dev_sgx: DevEnclave) -> None:
    report_data = bytes(range(64))
    _fake_attestation_dir(tmp_path, dev_sgx, report_data)
    enclave = GramineEnclave(tmp_path)
    assert isinstance(enclave, Enclave)

    def verify(quote: bytes) -> None:
        verify_quote_at(
            quote,
            dev_sgx.collateral(),
            at=AT,
            policy=Policy.development(),
            root=dev_sgx.trust_root,
        ).require_accepted()

    check_tee_backend(enclave, report_data=report_data, verify=verify)
    assert (tmp_path / "user_report_data").read_bytes() == report_data
    assert enclave.measurement == dev_sgx.measurement


def test_gramine_errors(tmp_path: Path, dev_sgx: DevEnclave, dev_tdx: DevEnclave) -> None:
    with pytest.raises(VeilnetError) as info:
        GramineEnclave(tmp_path / "missing")
    assert info.value.code == "tee_unavailable"
    _fake_attestation_dir(tmp_path, dev_sgx, bytes(64))
    enclave = GramineEnclave(tmp_path)
    with pytest.raises(VeilnetError) as info:
        enclave.quote(b"\x02" * 64)
    assert info.value.code == "tee_response_invalid"
    (tmp_path / "quote").write_bytes(dev_tdx.quote(b"\x02" * 64))
    with pytest.raises(VeilnetError) as info:
        enclave.quote(b"\x02" * 64)
    assert info.value.code == "tee_response_invalid"
    (tmp_path / "quote").write_bytes(b"garbage")
    with pytest.raises(VeilnetError) as info:
        enclave.quote(b"\x02" * 64)
    assert info.value.code == "tee_response_invalid"
    (tmp_path / "attestation_type").write_text("epid")
    with pytest.raises(VeilnetError) as info:
        GramineEnclave(tmp_path)
    assert info.value.code == "tee_unavailable"
