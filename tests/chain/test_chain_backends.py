"""The same conformance suite on the embedded chain and on anvil; HTTP serving of the embedded."""

from __future__ import annotations

import pytest

from veilnet.chain import EmbeddedChain, JSONRPCClient
from veilnet.chain.interfaces import ChainBackend
from veilnet.chain.testing import check_chain_backend


@pytest.mark.slow
def test_conformance(any_backend: ChainBackend) -> None:
    check_chain_backend(any_backend)


def test_embedded_over_http(embedded: EmbeddedChain) -> None:
    url = embedded.serve()
    client = JSONRPCClient(url)
    assert int(client.call("eth_chainId"), 16) == embedded.chain_id
    replies = client.batch([("eth_blockNumber", []), ("net_version", [])])
    assert replies == ["0x0", str(embedded.chain_id)]
    client.close()
