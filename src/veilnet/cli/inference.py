"""``veil inference``: serve the attested OpenAI-compatible gateway, and verify its receipts.
``serve`` runs in front of the embedded model or an upstream; ``verify`` re-checks one receipt."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import click

from veilnet.cli._output import console, emit, err_console, json_option
from veilnet.inference.constants import DEFAULT_MODEL_NAME, DEFAULT_PORT, UPSTREAM_KEY_ENV

_DEV_SEED_ENV = "VEIL_DEV_TEE_SEED"
_GATEWAY_ENV = "VEIL_GATEWAY_URL"


def _dev_seed(seed_hex: str | None) -> bytes:
    if seed_hex is None:
        return os.urandom(32)
    try:
        seed = bytes.fromhex(seed_hex.removeprefix("0x"))
    except ValueError as exc:
        raise click.BadParameter("the dev TEE seed must be hex", param_hint="--dev-seed") from exc
    if len(seed) < 32:
        raise click.BadParameter("the dev TEE seed is 32+ bytes", param_hint="--dev-seed")
    return seed


def _dev_enclave(seed: bytes) -> Any:
    from veilnet.tee.dev import DevEnclave

    return DevEnclave(seed, allow_insecure_dev_tee=True)


@click.group()
def inference() -> None:
    """The attested, OpenAI-compatible inference gateway."""


@inference.command()
@click.option(
    "--model",
    "model",
    default=None,
    metavar="NAME|PATH",
    help=f"Model name or .gguf path (default: the embedded {DEFAULT_MODEL_NAME}).",
)
@click.option(
    "--upstream",
    default=None,
    metavar="URL",
    help="Forward to an OpenAI-compatible server instead (base URL with /v1).",
)
@click.option(
    "--upstream-key-env",
    default=UPSTREAM_KEY_ENV,
    show_default=True,
    metavar="NAME",
    help="Environment variable holding the upstream API key (read once, then sealed).",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int)
@click.option("--seed", default=None, type=int, help="Sampler seed for requests without one.")
@click.option(
    "--insecure-dev-tee",
    is_flag=True,
    help="Attest with the development TEE (proves nothing about hardware).",
)
@click.option(
    "--dev-seed",
    default=None,
    envvar=_DEV_SEED_ENV,
    metavar="HEX",
    help=f"Network seed of the dev TEE (${_DEV_SEED_ENV}; random if unset).",
)
@click.option(
    "--root-ca-out",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the dev TEE's root CA (DER) here, for verifiers.",
)
def serve(
    model: str | None,
    upstream: str | None,
    upstream_key_env: str,
    host: str,
    port: int,
    seed: int | None,
    insecure_dev_tee: bool,
    dev_seed: str | None,
    root_ca_out: Path | None,
) -> None:
    """Run the gateway until interrupted; every completion is signed by its attested key."""
    import uvicorn

    from veilnet.crypto import SecretKey
    from veilnet.inference import (
        LlamaCppBackend,
        UpstreamBackend,
        UpstreamKey,
        create_app,
        resolve_model,
    )
    from veilnet.inference.constants import DEFAULT_SEED
    from veilnet.inference.interfaces import Backend

    if not insecure_dev_tee:
        raise click.UsageError(
            "only the development TEE is available in this build: pass --insecure-dev-tee"
        )
    if model is not None and upstream is not None:
        raise click.UsageError("give --model or --upstream, not both")
    enclave = _dev_enclave(_dev_seed(dev_seed))
    signer = SecretKey.generate(enclave.random_bytes(32))
    backend: Backend
    if upstream is not None:
        sealer = signer.symmetric("inference", "upstream-api-key")
        try:
            backend = UpstreamBackend(upstream, UpstreamKey.from_env(upstream_key_env, sealer))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--upstream") from exc
    else:
        backend = LlamaCppBackend(resolve_model(model), seed=DEFAULT_SEED if seed is None else seed)
    if root_ca_out is not None:
        root_ca_out.write_bytes(enclave.root_ca_der)
    err_console.print("[bold red]INSECURE development TEE[/bold red]: for devnets only")
    console.print(f"gateway       http://{host}:{port}/v1", soft_wrap=True)
    console.print(f"signing key   {signer.address.hex}", soft_wrap=True)
    console.print(f"measurement   {enclave.measurement.id.hex()} ({enclave.kind})", soft_wrap=True)
    console.print(f"backend       {upstream or resolve_model(model).name}", soft_wrap=True)
    app = create_app(backend, signer, enclave)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        backend.close()


@inference.command()
@click.argument("receipt_id")
@click.option(
    "--gateway",
    default=None,
    envvar=_GATEWAY_ENV,
    metavar="URL",
    help=f"Gateway base URL (${_GATEWAY_ENV}; default http://127.0.0.1:{DEFAULT_PORT}).",
)
@click.option(
    "--request",
    "request_file",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The exact request body sent, to check the receipt's hash.",
)
@click.option(
    "--response",
    "response_file",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The exact response body received, to check the receipt's hash.",
)
@click.option(
    "--measurement-id",
    "measurement_ids",
    multiple=True,
    metavar="HEX",
    help="Allowed measurement id (repeatable; the dev default with --insecure-dev-tee).",
)
@click.option(
    "--root-ca",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Trusted root CA (DER); Intel's root by default.",
)
@click.option("--insecure-dev-tee", is_flag=True, help="Accept the development TEE's root.")
@click.option(
    "--dev-seed",
    default=None,
    envvar=_DEV_SEED_ENV,
    metavar="HEX",
    help="Derive the dev root from the network seed instead of --root-ca.",
)
@click.option(
    "--at", "at", default=None, type=int, metavar="UNIX", help="Verification time (default: now)."
)
@json_option
def verify(
    receipt_id: str,
    gateway: str | None,
    request_file: Path | None,
    response_file: Path | None,
    measurement_ids: tuple[str, ...],
    root_ca: Path | None,
    insecure_dev_tee: bool,
    dev_seed: str | None,
    at: int | None,
    as_json: bool,
) -> None:
    """Re-check receipt ID: a fresh attestation of the gateway, then the receipt's signature."""
    from veilnet.attestation import Policy, TrustRoot
    from veilnet.inference import (
        AllowedMeasurements,
        DCAPQuoteVerifier,
        GatewayClient,
        GatewayVerifier,
    )

    if (request_file is None) != (response_file is None):
        raise click.UsageError("give both --request and --response, or neither")
    if dev_seed is not None and insecure_dev_tee:
        root = _dev_enclave(_dev_seed(dev_seed)).trust_root
    elif root_ca is not None:
        root = TrustRoot.from_der(root_ca.read_bytes(), allow_insecure_dev_tee=insecure_dev_tee)
    else:
        root = TrustRoot.intel()
    policy = Policy.development() if insecure_dev_tee else Policy()
    ids = [bytes.fromhex(m.removeprefix("0x")) for m in measurement_ids]
    if not ids and insecure_dev_tee:
        from veilnet.tee.dev import DEFAULT_DEV_MEASUREMENTS

        ids = [m.id for m in DEFAULT_DEV_MEASUREMENTS.values()]
    verifier = GatewayVerifier(
        quote_verifier=DCAPQuoteVerifier(root=root, policy=policy),
        policy=AllowedMeasurements.of_ids(ids),
        clock=(lambda: at) if at is not None else time.time,
    )
    url = gateway or f"http://127.0.0.1:{DEFAULT_PORT}"
    with GatewayClient(url, verifier) as client:
        receipt, attestation = client.verify(
            receipt_id,
            request_body=request_file.read_bytes() if request_file else None,
            response_body=response_file.read_bytes() if response_file else None,
        )
    document = {
        "receipt_id": receipt.id,
        "verified": True,
        "text": receipt.text,
        "signing_address": attestation.signing_address.hex,
        "bodies_checked": request_file is not None,
        "tee": attestation.tee,
        "measurements": dict(attestation.measurements),
        "verified_at": attestation.verified_at,
    }
    emit(document, as_json=as_json, render=_render_verified)


def _render_verified(document: dict[str, Any]) -> None:
    console.print(f"[green]verified[/green] receipt {document['receipt_id']}")
    console.print(f"  signed by    {document['signing_address']} (attested, {document['tee']})")
    console.print(f"  measurement  {document['measurements'].get('measurement_id', '?')}")
    checked = (
        "request and response hashes match" if document["bodies_checked"] else "signature only"
    )
    console.print(f"  checked      {checked}")
