"""Network bootstrap by governance: allow measurements, name the first gatekeeper, wait for the
master key and endorsements, create clusters and add workers. Idempotent; used by the devnet."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from veilnet.chain import Deployment, JSONRPCClient, Network
from veilnet.chain.constants import KIND_WORKER
from veilnet.crypto import Address
from veilnet.worker.errors import BootstrapTimeout, WorkerConfigInvalid

__all__ = ["BootstrapResult", "bootstrap_network", "cluster_id", "dev_measurement"]

_ZERO = "0x" + "00" * 20


def cluster_id(name: str | bytes) -> bytes:
    """A 32-byte cluster id: raw 32 bytes as given, or a short name right-padded with zeros
    (``"c1"`` → ``b"c1" + 30 zero bytes``, as ``veilnet.testing.cluster_id_of``)."""
    if isinstance(name, bytes):
        if len(name) != 32:
            raise WorkerConfigInvalid("a cluster id must be 32 bytes")
        return name
    if name.startswith("0x") and len(name) == 66:
        return bytes.fromhex(name[2:])
    raw = name.encode()
    if not 0 < len(raw) <= 32:
        raise WorkerConfigInvalid("a cluster name must be 1..32 bytes")
    return raw.ljust(32, b"\x00")


def dev_measurement(kind: str = "tdx") -> bytes:
    """Measurement id the development TEE reports (what the devnet allows on chain)."""
    from veilnet.attestation import TEEKind
    from veilnet.tee import DEFAULT_DEV_MEASUREMENTS

    return DEFAULT_DEV_MEASUREMENTS[TEEKind(kind)].id


@dataclass(frozen=True, slots=True, kw_only=True)
class BootstrapResult:
    """What the bootstrap established on chain."""

    gatekeeper: Address
    master_key: Address
    clusters: Mapping[bytes, tuple[Address, ...]]
    """Cluster id → member workers (each endorsed and added)."""
    cluster_keys: Mapping[bytes, Address]
    """Cluster id → address of its current cluster key (keyed on chain)."""


def bootstrap_network(
    client: JSONRPCClient,
    deployment: Deployment,
    admin_key: bytes,
    *,
    gatekeeper: Address | str,
    clusters: Mapping[str | bytes, Sequence[Address | str]],
    measurements: Sequence[bytes] = (),
    cluster_owner_key: bytes | None = None,
    suite: int = 1,
    mine: Callable[[int], object] | None = None,
    poll_interval: float = 0.05,
    timeout: float = 120.0,
) -> BootstrapResult:
    """Bring a freshly deployed network to service, waiting on chain state between steps.

    The worker hosts must be running (they register themselves once their measurement is
    allowed, and the gatekeeper's core posts the master key and endorsements). Steps, each
    skipped when already done: allow ``measurements``; wait until the gatekeeper is registered,
    ``add_gatekeeper``; wait for the master key; wait until every cluster worker is registered
    and endorsed; ``create_cluster`` (owner = ``cluster_owner_key``, default the admin); wait
    for its key; ``add_cluster_worker`` for each member.

    Args:
        client: JSON-RPC client of the chain.
        deployment: the network (``veilnet.chain.deploy``); ``admin_key`` is its governance.
        gatekeeper: worker address to name first gatekeeper.
        clusters: cluster name or 32-byte id → worker addresses.
        measurements: measurement ids to allow (e.g. ``[dev_measurement()]``).
        suite: key suite of the clusters it creates: 1 X25519, 2 post-quantum hybrid
            (ML-KEM-768 + X25519).
        mine: ``backend.mine`` for chains that mine only on transactions (the embedded chain
            and anvil without ``--block-time``): called once per wait round to add blocks,
            so finality advances. None when the chain mines on a timer.
        poll_interval: seconds between checks.
        timeout: seconds each wait may take.

    Raises:
        BootstrapTimeout: a step did not complete in time (its ``step`` detail names it).
        ContractReverted: governance transactions were refused (wrong admin key).
    """
    network = Network(client, deployment.addresses)
    admin = network.sender(admin_key)
    owner = network.sender(cluster_owner_key) if cluster_owner_key is not None else admin
    gk = Address.parse(gatekeeper) if isinstance(gatekeeper, str) else gatekeeper
    wanted = {
        cluster_id(name): tuple(Address.parse(w) if isinstance(w, str) else w for w in members)
        for name, members in clusters.items()
    }
    pause = threading.Event()

    def wait(step: str, done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise BootstrapTimeout(f"bootstrap step timed out: {step}", step=step)
            if mine is not None:
                mine(1)
            pause.wait(poll_interval)

    def registry(fn: str, *args: object) -> object:
        return network.view("Registry", fn, *args)

    def registered(worker: Address) -> bool:
        return network.origin_kind(worker) == KIND_WORKER

    def endorsed(worker: Address) -> bool:
        info = registry("workers", worker)
        return isinstance(info, tuple) and int(info[4]) > 0

    def cluster(cid: bytes) -> tuple[object, ...]:
        found = registry("clusters", cid)
        return found if isinstance(found, tuple) else ()

    def keyed(cid: bytes) -> bool:
        found = cluster(cid)
        return bool(found) and int(str(found[1])) > 0

    for measurement in measurements:
        if not registry("allowed_measurements", measurement):
            network.set_measurement(admin, measurement, True)

    wait("gatekeeper registered", partial(registered, gk))
    if not registry("gatekeepers", gk):
        network.add_gatekeeper(admin, gk)
    wait("master key published", lambda: str(registry("master_key_address")).lower() != _ZERO)
    master = Address.parse(str(registry("master_key_address")))

    members = [w for group in wanted.values() for w in group]
    for worker in members:
        wait(f"worker {worker.hex} registered", partial(registered, worker))
    for worker in members:
        wait(f"worker {worker.hex} endorsed", partial(endorsed, worker))

    keys: dict[bytes, Address] = {}
    for cid, group in wanted.items():
        if not cluster(cid) or str(cluster(cid)[0]).lower() == _ZERO:
            network.create_cluster(admin, cid, owner.address, suite=suite)
        for worker in group:
            if not registry("cluster_members", cid, worker):
                network.add_cluster_worker(owner, cid, worker)

        wait(f"cluster 0x{cid.hex()} keyed", partial(keyed, cid))
        keys[cid] = Address.parse(str(cluster(cid)[2]))
    return BootstrapResult(gatekeeper=gk, master_key=master, clusters=wanted, cluster_keys=keys)
