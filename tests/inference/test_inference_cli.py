"""``veil inference verify`` against a live dev-TEE gateway, and ``serve``'s refusals.
The commands are invoked through click's runner on the ``inference`` group itself."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

import veilnet.tee.dev as tee
from veilnet.cli.inference import inference
from veilnet.crypto import SecretKey
from veilnet.inference import create_app
from veilnet.inference._serve import serve_in_thread

from .inference_helpers import StubBackend

SEED = b"inference-cli-test-network-seed!"


def test_verify_a_receipt(tmp_path: Path) -> None:
    enclave = tee.DevEnclave(SEED, allow_insecure_dev_tee=True)
    key = SecretKey.derive(SEED, "gateway")
    app = create_app(StubBackend(), key, enclave)
    runner = CliRunner()
    with serve_in_thread(app) as url:
        # A client that trusts nothing yet: it only collects a receipt id and the bodies.
        import httpx

        body = b'{"model":"stub-model","messages":[{"role":"user","content":"cli"}]}'
        response = httpx.post(url + "/v1/chat/completions", content=body)
        receipt_id = response.json()["id"]
        (tmp_path / "req.json").write_bytes(body)
        (tmp_path / "resp.json").write_bytes(response.content)
        base = ["verify", receipt_id, "--gateway", url, "--insecure-dev-tee", "--json"]
        base += ["--dev-seed", SEED.hex()]
        result = runner.invoke(
            inference,
            [
                *base,
                "--request",
                str(tmp_path / "req.json"),
                "--response",
                str(tmp_path / "resp.json"),
            ],
        )
        assert result.exit_code == 0, result.output
        document = json.loads(result.stdout)  # stderr may carry log lines
        assert document["verified"] is True
        assert document["bodies_checked"] is True
        assert document["signing_address"] == key.address.hex
        assert document["measurements"]["measurement_id"] == enclave.measurement.id.hex()

        (tmp_path / "resp.json").write_bytes(response.content.replace(b"cli", b"CLI"))
        tampered = runner.invoke(
            inference,
            [
                *base,
                "--request",
                str(tmp_path / "req.json"),
                "--response",
                str(tmp_path / "resp.json"),
            ],
        )
        assert tampered.exit_code != 0
        assert tampered.exception is not None
        assert getattr(tampered.exception, "code", None) == "inference_receipt_invalid"

        wrong = runner.invoke(inference, [*base, "--measurement-id", "00" * 32])
        assert getattr(wrong.exception, "code", None) == "inference_measurement_not_allowed"

        human = runner.invoke(inference, [a for a in base if a != "--json"])
        assert human.exit_code == 0, human.output
        assert "verified" in human.output


def test_serve_refuses_without_the_dev_tee_flag() -> None:
    result = CliRunner().invoke(inference, ["serve"])
    assert result.exit_code == 2
    assert "--insecure-dev-tee" in result.output
    both = CliRunner().invoke(
        inference, ["serve", "--insecure-dev-tee", "--model", "x", "--upstream", "http://h/v1"]
    )
    assert both.exit_code == 2
