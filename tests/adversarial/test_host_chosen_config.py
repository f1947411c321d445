"""A host that builds its worker's enclave from a configuration of its own choosing (another
Registry, key window, policy or root) gets a registration no gatekeeper endorses."""

from __future__ import annotations

import dataclasses

import pytest

from veilnet.protocol import enclave as wire
from veilnet.sandbox import AgentRuntime
from veilnet.testing import Network
from veilnet.testing.adversary import dev_enclave_config

NETWORK = dev_enclave_config()


@pytest.mark.parametrize(
    "chosen",
    [
        dataclasses.replace(NETWORK, key_window_blocks=NETWORK.key_window_blocks * 10),
        dataclasses.replace(NETWORK, registry=b"\x09" * 20),
        dataclasses.replace(NETWORK, dev_network_seed=b"a-root-the-host-made-up-itself-00"),
        dataclasses.replace(NETWORK, max_confidence_level=5),
    ],
    ids=["key_window", "registry", "attestation_root", "policy"],
)
def test_a_host_chosen_configuration_is_not_endorsed(
    engine: AgentRuntime, chosen: wire.EnclaveConfig
) -> None:
    net = Network(engine=engine, config_digest=NETWORK.network_digest)
    net.bootstrap(workers=("w1",), clusters={"c1": ["w1"]})
    gatekeeper = net.cores["gk"]
    honest = net.cores["w1"]
    assert gatekeeper.workers[honest.address].confidence > 0  # the same config: endorsed
    assert net.config is not None
    rogue = net.register(
        "rogue", config=dataclasses.replace(net.config, config_digest=chosen.network_digest)
    )
    net.settle()
    record = gatekeeper.workers[rogue.address]
    assert record.collateral_hash in gatekeeper.state.collaterals  # it was judged...
    assert record.confidence == 0  # ...and refused
    assert net.ledger.workers[rogue.address].confidence == 0  # nothing endorsed on chain


def test_the_tee_backend_is_the_operators_choice() -> None:
    """Operators of one network pick their own TEE; the quote itself shows which."""
    assert dataclasses.replace(NETWORK, tee="dstack", dev_network_seed=None).network_digest != (
        NETWORK.network_digest
    )  # the dev seed is part of the network...
    assert dataclasses.replace(NETWORK, tee="gramine").network_digest == NETWORK.network_digest


def test_a_checkpoint_does_not_move_to_another_configuration(engine: AgentRuntime) -> None:
    """State sealed under the network's configuration is refused by a core the host built
    from another one (the identity still opens: the platform is the same)."""
    from veilnet.runtime import CheckpointInvalid, EnclaveCore

    net = Network(engine=engine, config_digest=NETWORK.network_digest)
    net.bootstrap(workers=("w1",), clusters={"c1": ["w1"]})
    assert net.config is not None
    blob = net.cores["w1"].checkpoint()
    other = dataclasses.replace(
        net.config,
        config_digest=dataclasses.replace(NETWORK, key_window_blocks=1).network_digest,
    )
    parts = {"platform": net.platforms["w1"], "engine": engine, "verifier": net.verifier()}
    assert EnclaveCore.restore(blob, config=net.config, **parts).state_root() == (
        net.cores["w1"].state_root()
    )
    with pytest.raises(CheckpointInvalid, match="another enclave configuration"):
        EnclaveCore.restore(blob, config=other, **parts)
