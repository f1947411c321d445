"""``veil worker run``: one worker host in the foreground until SIGINT/SIGTERM.
Reads the network from ``--network network.json`` or ``--rpc/--registry/--bus``; logs with rich."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from pathlib import Path
from typing import Any

import click

from veilnet._gc import freeze_loaded
from veilnet.cli._output import console, err_console

__all__ = ["worker"]


def _hex_bytes(value: str | None, what: str, *, size: int | None = None) -> bytes | None:
    if value is None or value == "":
        return None
    try:
        raw = bytes.fromhex(value.strip().removeprefix("0x"))
    except ValueError as exc:
        raise click.BadParameter(f"{what} must be hex") from exc
    if size is not None and len(raw) != size:
        raise click.BadParameter(f"{what} must be {size} bytes")
    return raw


def _load_network(path: Path) -> dict[str, Any]:
    from veilnet.worker.errors import WorkerConfigInvalid

    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise WorkerConfigInvalid(f"cannot read network file {path.name}") from exc
    if not isinstance(doc, dict):
        raise WorkerConfigInvalid("network file must hold a JSON object")
    contracts = doc.get("contracts")
    names = {str(name).lower() for name in contracts} if isinstance(contracts, dict) else set()
    if not {"registry", "bus"} <= names:
        raise WorkerConfigInvalid("network file needs contracts.Registry and contracts.Bus")
    if doc.get("stopped"):
        raise WorkerConfigInvalid("network file describes a devnet that has stopped")
    return doc


@click.group()
def worker() -> None:
    """Run a Veilnet worker host (chain follower, enclave core, relay, HTTP API)."""


@worker.command("run")
@click.option(
    "--network",
    "network_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="network.json (chain_id, rpc_url, contracts {registry, bus}, genesis_block).",
)
@click.option("--rpc", help="JSON-RPC URL (instead of, or overriding, the network file's).")
@click.option(
    "--sequencer",
    help="Sequencer URL for block signatures (overrides the network file's sequencer_url).",
)
@click.option("--registry", help="Registry address (with --rpc).")
@click.option("--bus", help="Bus address (with --rpc).")
@click.option("--genesis-block", type=int, default=None, help="First block to follow.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Sealed identity, checkpoints and relay journal.",
)
@click.option("--api-host", default="127.0.0.1", show_default=True)
@click.option("--api-port", type=int, default=0, show_default=True, help="0 = any free port.")
@click.option(
    "--public-url",
    help="Where clients reach this worker's API (registered on chain so they find it); "
    "default: the API's own http://HOST:PORT, nothing with a wildcard --api-host.",
)
@click.option(
    "--operator-key",
    envvar="VEIL_OPERATOR_KEY",
    help="Hex private key of the funded operator account (env VEIL_OPERATOR_KEY).",
)
@click.option(
    "--fund-from",
    envvar="VEIL_FUND_FROM",
    help="Hex dev key that funds the worker identity for registration (env VEIL_FUND_FROM).",
)
@click.option(
    "--insecure-dev-tee",
    is_flag=True,
    help="Run on the INSECURE development TEE (devnets only; proves nothing).",
)
@click.option(
    "--network-seed",
    envvar="VEIL_NETWORK_SEED",
    help="Hex dev-TEE network seed (with --insecure-dev-tee; env VEIL_NETWORK_SEED).",
)
@click.option("--finality", type=int, default=2, show_default=True, help="Confirmations.")
@click.option("--gateway", help="Attested inference gateway URL for llm.chat in queries.")
@click.option("--name", default="worker", show_default=True, help="Label for logs and metrics.")
@click.option("--checkpoint-every", type=int, default=50, show_default=True, help="Blocks.")
@click.option("--poll-interval", type=float, default=0.25, show_default=True, help="Seconds.")
@click.option(
    "--ready-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write {address, api_url, pid} as JSON here once serving starts.",
)
@click.option("--log-level", default="info", show_default=True)
def run(
    network_file: Path | None,
    rpc: str | None,
    registry: str | None,
    bus: str | None,
    genesis_block: int | None,
    data_dir: Path,
    api_host: str,
    api_port: int,
    public_url: str | None,
    sequencer: str | None,
    operator_key: str | None,
    fund_from: str | None,
    insecure_dev_tee: bool,
    network_seed: str | None,
    finality: int,
    gateway: str | None,
    name: str,
    checkpoint_every: int,
    poll_interval: float,
    ready_file: Path | None,
    log_level: str,
) -> None:
    """Run one worker host until interrupted (SIGINT/SIGTERM)."""
    from rich.logging import RichHandler

    from veilnet.chain import ChainAddresses, Deployment, JSONRPCClient
    from veilnet.chain.rpc import from_quantity
    from veilnet.crypto import Address
    from veilnet.protocol.chain import ChainTrust
    from veilnet.protocol.registration import check_api_url
    from veilnet.worker import WorkerConfig, WorkerHost
    from veilnet.worker.errors import WorkerConfigInvalid

    logging.basicConfig(
        level=log_level.upper(),
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False, rich_tracebacks=False)],
        force=True,
    )
    doc = _load_network(network_file) if network_file is not None else {}
    contracts = doc.get("contracts", {})
    rpc_url = rpc or doc.get("rpc_url")
    # the devnet writes "Registry"/"Bus" (the contracts' names); older files used lower case
    registry_hex = registry or contracts.get("Registry") or contracts.get("registry")
    bus_hex = bus or contracts.get("Bus") or contracts.get("bus")
    if not rpc_url or not registry_hex or not bus_hex:
        raise click.UsageError("give --network FILE, or --rpc URL --registry ADDR --bus ADDR")
    chain_id = doc.get("chain_id")
    if chain_id is None:
        probe = JSONRPCClient(str(rpc_url))
        try:
            chain_id = from_quantity(probe.call("eth_chainId"))
        finally:
            probe.close()
    try:
        addresses = ChainAddresses(
            chain_id=int(chain_id),
            registry=Address.parse(str(registry_hex)),
            bus=Address.parse(str(bus_hex)),
        )
        admin = Address.parse(str(doc.get("admin") or "0x" + "00" * 20))
    except (ValueError, TypeError) as exc:
        raise WorkerConfigInvalid("bad contract address or chain id") from exc
    start = genesis_block if genesis_block is not None else int(doc.get("genesis_block") or 0)
    operator = _hex_bytes(operator_key, "--operator-key", size=32)
    if operator is None:
        raise click.UsageError("--operator-key (or VEIL_OPERATOR_KEY) is required")
    try:
        chain_trust = ChainTrust.from_json(doc.get("chain_trust"))
    except ValueError as exc:
        raise WorkerConfigInvalid(
            "the network file needs chain_trust: the network's trust anchor and finality "
            f"policy ({exc})"
        ) from exc
    if public_url is not None:
        try:
            check_api_url(public_url)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--public-url") from exc
    seed_text = network_seed or (doc.get("network_seed") if insecure_dev_tee else None)
    seed = _hex_bytes(seed_text, "--network-seed")
    if insecure_dev_tee and seed is None:
        raise click.UsageError("--insecure-dev-tee needs --network-seed HEX")
    config = WorkerConfig(
        name=name,
        data_dir=data_dir,
        rpc_url=str(rpc_url),
        deployment=Deployment(addresses=addresses, admin=admin, genesis_block=start),
        chain_trust=chain_trust,
        sequencer_url=sequencer or doc.get("sequencer_url"),
        operator_key=operator,
        fund_from=_hex_bytes(fund_from, "--fund-from", size=32),
        network_seed=seed,
        allow_insecure_dev_tee=insecure_dev_tee,
        finality_depth=finality,
        api_host=api_host,
        api_port=api_port,
        public_url=public_url,
        checkpoint_every=checkpoint_every,
        poll_interval=poll_interval,
        gateway_url=gateway,
        egress_roots=str(doc.get("egress_roots_pem") or "").encode(),
        pccs_url=str(doc.get("pccs_url") or ""),
        pccs_roots=str(doc.get("pccs_roots_pem") or "").encode(),
    )
    stop = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    host = WorkerHost(config)
    host.start()
    freeze_loaded()  # what the worker loaded to start lives as long as it
    try:
        if insecure_dev_tee:
            console.print("[bold red]INSECURE development TEE[/bold red]: for devnets only")
        console.print(f"worker [bold]{name}[/bold] {host.address} serving {host.api_url}")
        if ready_file is not None:
            tmp = ready_file.with_name(ready_file.name + ".tmp")
            tmp.write_text(
                json.dumps(
                    {
                        "address": host.address,
                        "api_url": host.api_url,
                        "pid": os.getpid(),
                        "restored_from": host.restored_from,
                    }
                )
            )
            tmp.replace(ready_file)
        while not stop.wait(0.5):
            pass
    finally:
        console.print(f"worker {name} stopping")
        host.stop()


if __name__ == "__main__":  # ``python -m veilnet.cli.worker run ...`` before it is registered
    worker()
