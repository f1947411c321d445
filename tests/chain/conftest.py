"""Fixtures for chain tests: an embedded chain per test, anvil when its binary is installed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from veilnet.chain import AnvilChain, EmbeddedChain, Network, TxSender, deploy
from veilnet.chain.deploy import Deployment
from veilnet.chain.interfaces import ChainBackend
from veilnet.crypto import SecretKey
from veilnet.testing import require_tool

MEASUREMENT = b"\x42" * 32


@dataclass
class Net:
    backend: ChainBackend
    deployment: Deployment
    network: Network
    admin: TxSender
    user: TxSender
    relayer: TxSender


def make_net(backend: ChainBackend) -> Net:
    client = backend.client()
    deployment = deploy(client, backend.dev_accounts[0][1], measurements=[MEASUREMENT])
    network = Network(client, deployment.addresses)
    return Net(
        backend=backend,
        deployment=deployment,
        network=network,
        admin=network.sender(backend.dev_accounts[0][1]),
        user=network.sender(backend.dev_accounts[1][1]),
        relayer=network.sender(backend.dev_accounts[2][1]),
    )


def key(name: str) -> SecretKey:
    return SecretKey.derive(b"veilnet-chain-tests-fixed-seed-0001", name)


def register(
    net: Net, worker: SecretKey, *, quote: bytes = b"quote", poster: bool = False
) -> TxSender:
    """Fund the worker identity and register it (the tx comes from the identity itself).

    ``poster``: also name it the genesis gatekeeper, the one identity the Bus takes egress
    from before anyone endorsed it (tests of the Bus need a worker that may post)."""
    net.relayer.transact(worker.address, b"", value=10**18, gas=21_000)
    sender = net.network.sender(worker._private_scalar())
    net.network.register_worker(
        sender,
        operator=net.relayer.address,
        hpke_key=worker.public.x25519,
        tee_kind=1,
        measurement=MEASUREMENT,
        quote=quote,
        collateral_hash=b"\x07" * 32,
    )
    if poster:
        net.network.add_gatekeeper(net.admin, worker.address)
    return sender


@pytest.fixture
def embedded() -> Iterator[EmbeddedChain]:
    chain = EmbeddedChain()
    yield chain
    chain.close()


@pytest.fixture
def net(embedded: EmbeddedChain) -> Net:
    return make_net(embedded)


@pytest.fixture
def anvil() -> Iterator[AnvilChain]:
    require_tool("anvil")
    chain = AnvilChain()
    yield chain
    chain.close()


@pytest.fixture(params=["embedded", "anvil"])
def any_backend(request: pytest.FixtureRequest) -> Iterator[ChainBackend]:
    if request.param == "embedded":
        chain: ChainBackend = EmbeddedChain()
    else:
        require_tool("anvil")
        chain = AnvilChain()
    yield chain
    chain.close()
