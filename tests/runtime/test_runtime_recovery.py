"""Checkpoints, crashes at random points, replay from genesis, determinism across processes."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from veilnet.protocol.chain import ChainBlock
from veilnet.runtime import CheckpointInvalid, EnclaveCore
from veilnet.sandbox import AgentRuntime
from veilnet.testing import Network
from veilnet.testing.ledger import build_block

from .conftest import ALICE, EXAMPLES, OWNER


def _restore(net: Network, name: str, blob: bytes) -> EnclaveCore:
    assert net.config is not None
    core = net.cores[name]
    return EnclaveCore.restore(
        blob,
        config=net.config,
        platform=net.platforms[name],
        engine=core.engine,
        verifier=core.verifier,
    )


def _replay(core: EnclaveCore, blocks: list[ChainBlock]) -> None:
    assert core.head is not None
    for block in blocks:
        if block.fields.number > core.head.number:
            core.apply_block(block)


def test_checkpoint_round_trip(network: Network, counter: bytes) -> None:
    network.command(ALICE, counter, {"by": 2}, nonce=1)
    network.settle()
    w1 = network.cores["w1"]
    restored = _restore(network, "w1", w1.checkpoint())
    assert restored.address == w1.address
    assert restored.state_root() == w1.state_root()
    assert restored.runtimes[counter].state.values == w1.runtimes[counter].state.values


@pytest.mark.slow
def test_a_state_of_more_entries_than_a_message_may_carry_checkpoints(
    network: Network, counter: bytes
) -> None:
    """A checkpoint is a bulk value the core makes and reads back itself: an agent's state of
    more entries than any message may carry (``MAX_ITEMS``) still checkpoints and restores, and
    the state root covers it (they were refused with ``codec_oversized`` before)."""
    from veilnet.codec.constants import MAX_ITEMS

    w1 = network.cores["w1"]
    w1.runtimes[counter].state.apply({f"k{i}": b"v%d" % i for i in range(MAX_ITEMS)})
    root = w1.state_root()
    restored = _restore(network, "w1", w1.checkpoint())
    assert restored.state_root() == root
    assert len(restored.runtimes[counter].state.values) == MAX_ITEMS + 1  # and "count"


def test_checkpoint_is_bound_to_network_and_tamper_evident(
    network: Network, counter: bytes
) -> None:
    import dataclasses

    blob = network.cores["w1"].checkpoint()
    flipped = bytearray(blob)
    flipped[len(blob) // 2] ^= 1
    for bad in (bytes(flipped), blob[:-10], b"", b"\x01\xa0"):
        with pytest.raises(CheckpointInvalid) as info:
            _restore(network, "w1", bad)
        assert info.value.code == "runtime_checkpoint_invalid"
    assert network.config is not None
    other = dataclasses.replace(network.config, chain_id=1)
    with pytest.raises(CheckpointInvalid):
        EnclaveCore.restore(
            blob,
            config=other,
            platform=network.platforms["w1"],
            engine=network.cores["w1"].engine,
            verifier=network.cores["w1"].verifier,
        )
    # code with another measurement cannot unseal it (sealing is bound to the measurement)
    from veilnet.runtime.adapters import TEEPlatform
    from veilnet.tee import DevEnclave
    from veilnet.testing.network import NETWORK_SEED

    other_code = TEEPlatform(DevEnclave(NETWORK_SEED, kind="sgx", allow_insecure_dev_tee=True))
    with pytest.raises(CheckpointInvalid):
        EnclaveCore.restore(
            blob,
            config=network.config,
            platform=other_code,
            engine=network.cores["w1"].engine,
            verifier=network.cores["w1"].verifier,
        )


def test_crash_at_random_points_loses_nothing_and_applies_nothing_twice(
    engine: AgentRuntime,
) -> None:
    """50 crashes: restart from the newest checkpoint (taken every 3 blocks) and replay."""
    net = Network(engine=engine)
    net.bootstrap()
    contract = net.deploy(OWNER, "py", (EXAMPLES / "counter.py").read_bytes())
    rng = random.Random(1234)
    checkpoint = net.cores["w2"].checkpoint()
    sent = 0
    for round_ in range(50):
        for _ in range(rng.randint(1, 3)):
            sent += 1
            net.command(ALICE, contract, {"by": 1}, nonce=sent)
        net.step()
        if round_ % 3 == 0:
            checkpoint = net.cores["w2"].checkpoint()
        # crash: everything since the checkpoint is lost; restore and catch up from the chain
        net.cores["w2"] = _restore(net, "w2", checkpoint)
        _replay(net.cores["w2"], net.ledger.raw_blocks)
    net.settle()
    w1, w2 = net.cores["w1"], net.cores["w2"]
    assert int(w2.runtimes[contract].state.values["count"]) == sent
    assert w1.state_root() == w2.state_root()
    assert sorted(w2.runtimes[contract].outcomes) == sorted(w1.runtimes[contract].outcomes)


def test_replay_from_genesis_gives_the_same_commitment(network: Network, counter: bytes) -> None:
    for nonce in range(1, 8):
        network.command(ALICE, counter, {"by": nonce}, nonce=nonce)
        network.step()
    network.settle()
    live = network.cores["w1"]
    sealed = live.sealed_identity()
    fresh = EnclaveCore.boot(
        config=live.config,
        platform=network.platforms["w1"],
        engine=live.engine,
        verifier=live.verifier,
        sealed_identity=sealed,
    )
    # its host hands back the keys it stored sealed (the encryption keys its shares open with)
    fresh.import_keys(network.sealed_keys["w1"])
    for block in network.ledger.raw_blocks:
        fresh.apply_block(block)
    assert fresh.address == live.address
    assert fresh.state_root() == live.state_root()
    assert fresh.cluster_commitment(b"c1".ljust(32, b"\0")) == live.cluster_commitment(
        b"c1".ljust(32, b"\0")
    )


def test_blocks_must_extend_the_applied_chain(network: Network) -> None:
    from veilnet.runtime import BlockRejected

    core = network.cores["w1"]
    head = core.head
    assert head is not None
    root = core.state_root()
    ledger = network.ledger

    def forged(number: int, parent: bytes) -> ChainBlock:
        # properly signed by the sequencer: continuity alone must refuse these
        return build_block(
            chain_id=ledger.chain_id,
            registry=ledger.registry,
            bus=ledger.bus,
            parent_hash=parent,
            number=number,
            timestamp=head.timestamp + 2,
            signer=ledger.sequencer_key,
        )[0]

    for block in (
        forged(head.number + 2, head.hash),
        forged(head.number + 1, b"\x02" * 32),
        ledger.raw_blocks[head.number - 1],
    ):
        with pytest.raises(BlockRejected) as info:
            core.apply_block(block)
        assert info.value.code == "runtime_block_rejected"
    assert core.state_root() == root


_REPLAY = """
import sys
from pathlib import Path
from veilnet.codec import decode
from veilnet.runtime import CoreConfig, EnclaveCore
from veilnet.protocol.chain import ChainBlock
from veilnet.sandbox import AgentRuntime
from veilnet.testing import Network
log = decode(Path(sys.argv[1]).read_bytes())
with AgentRuntime() as engine:
    net = Network(engine=engine)
    platform = net._platform("w1")
    core = EnclaveCore.boot(config=net.config, platform=platform, engine=engine,
                            verifier=net.verifier(), sealed_identity=log["identity"])
    core.import_keys(log["keys"])
    for raw in log["blocks"]:
        core.apply_block(ChainBlock.from_bytes(raw))
    print(core.state_root().hex())
"""


@pytest.mark.slow
def test_one_log_replays_to_one_state_root_under_any_hash_seed(
    network: Network, counter: bytes, tmp_path: Path
) -> None:
    """Replay the same finalized log in fresh processes with different PYTHONHASHSEEDs."""
    from veilnet.codec import encode

    js = network.deploy(OWNER, "js", (EXAMPLES / "counter.js").read_bytes(), salt=b"\x02" * 32)
    for nonce in range(1, 6):
        network.command(ALICE, counter, {"by": nonce}, nonce=nonce)
        network.command(ALICE, js, {"by": nonce}, nonce=nonce)
    network.settle()
    w1 = network.cores["w1"]
    log = tmp_path / "log.cbor"
    log.write_bytes(
        encode(
            {
                "identity": w1.sealed_identity(),
                "keys": network.sealed_keys["w1"],
                "blocks": [b.to_bytes() for b in network.ledger.raw_blocks],
            }
        )
    )
    roots = {w1.state_root().hex()}
    for seed in ("0", "1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", _REPLAY, str(log)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
        roots.add(out.stdout.strip())
    assert len(roots) == 1
