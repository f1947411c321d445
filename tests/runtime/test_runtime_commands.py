"""Hostile commands and contract control: typed failure outcomes, contract state untouched."""

from __future__ import annotations

import json

import pytest

from veilnet.protocol import envelopes as proto
from veilnet.testing import Network

from .conftest import ALICE, EXAMPLES, MALLORY, OWNER, outcomes


def _digest(network: Network, contract: bytes) -> tuple[bytes, bytes]:
    return tuple(network.cores[n].runtimes[contract].state.digest for n in ("w1", "w2"))  # type: ignore[return-value]


def _push(network: Network, contract: bytes, payload: bytes, sender: bytes) -> dict:
    seq = network.ledger.push_command(contract, payload, sender=sender)
    network.settle()
    return outcomes(network, contract)[seq]


def _sealed(
    network: Network, contract: bytes, plaintext: proto.CommandPlaintext, **kw: object
) -> bytes:
    public, epoch = network.contract_key_info(contract)
    return proto.seal_command(
        kw.get("public", public),  # type: ignore[arg-type]
        plaintext,
        chain_id=int(kw.get("chain_id", network.ledger.chain_id)),  # type: ignore[arg-type]
        contract_id=contract,
        epoch=int(kw.get("epoch", epoch)),  # type: ignore[arg-type]
    )


def _call(sender: bytes, nonce: int, msg: object) -> proto.CommandPlaintext:
    return proto.CommandPlaintext(
        sender=sender, nonce=nonce, kind="call", body=json.dumps(msg).encode()
    )


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("garbage", "envelope_invalid"),
        ("truncated", "envelope_invalid"),
        ("flipped", "envelope_invalid"),
        ("wrong_chain", "envelope_invalid"),
        ("wrong_key", "envelope_invalid"),
        ("future_epoch", "runtime_key_epoch_expired"),
        ("copied_by_other_sender", "runtime_command_rejected"),
        ("not_json", "runtime_command_rejected"),
        ("unknown_kind", "runtime_command_rejected"),
        ("bad_version", "unsupported_version"),
    ],
)
def test_bad_commands_fail_typed_and_change_nothing(
    network: Network, counter: bytes, case: str, code: str
) -> None:
    good = _sealed(network, counter, _call(ALICE.address.raw, 1, {"by": 1}))
    sender = ALICE.address.raw
    payload = {
        "garbage": good[:6] + b"\x00" * 70,
        "truncated": good[:40],
        "flipped": good[:-1] + bytes([good[-1] ^ 1]),
        "wrong_chain": _sealed(network, counter, _call(sender, 1, {}), chain_id=1),
        "wrong_key": _sealed(network, counter, _call(sender, 1, {}), public=OWNER.public.x25519),
        "future_epoch": _sealed(network, counter, _call(sender, 1, {}), epoch=9),
        "copied_by_other_sender": good,
        "not_json": _sealed(
            network,
            counter,
            proto.CommandPlaintext(sender=sender, nonce=1, kind="call", body=b"{nope"),
        ),
        "unknown_kind": _sealed(
            network,
            counter,
            proto.CommandPlaintext(sender=sender, nonce=1, kind="upgrade", body=b"{}"),
        ),
        "bad_version": b"\x07" + good[1:],
    }[case]
    before = _digest(network, counter)
    outcome = _push(
        network,
        counter,
        payload,
        MALLORY.address.raw if case == "copied_by_other_sender" else sender,
    )
    assert not outcome.ok
    assert outcome.error.code == code
    assert _digest(network, counter) == before


def test_replayed_nonce_is_rejected(network: Network, counter: bytes) -> None:
    payload = _sealed(network, counter, _call(ALICE.address.raw, 5, {"by": 1}))
    assert _push(network, counter, payload, ALICE.address.raw).ok
    before = _digest(network, counter)
    replay = _push(network, counter, payload, ALICE.address.raw)
    assert replay.error.code == "runtime_command_replayed"
    assert _digest(network, counter) == before
    # a lower nonce inside the window is another command (landing late): it applies, once
    older = _sealed(network, counter, _call(ALICE.address.raw, 4, {"by": 1}))
    assert _push(network, counter, older, ALICE.address.raw).ok
    again = _push(network, counter, older, ALICE.address.raw)
    assert again.error.code == "runtime_command_replayed"


def test_two_clients_of_one_wallet_and_commands_out_of_order_all_apply_once(
    network: Network, counter: bytes
) -> None:
    """The SDK's nonces are nanosecond clock readings: two clients of one wallet never pick the
    same one, and whichever lands first, both apply; outside the window a nonce is refused."""
    from veilnet.runtime.constants import COMMAND_NONCE_WINDOW

    base = 1_765_000_000 * 10**9
    client_b = _sealed(network, counter, _call(ALICE.address.raw, base + 7_000, {"by": 2}))
    client_a = _sealed(network, counter, _call(ALICE.address.raw, base + 3_000, {"by": 1}))
    assert _push(network, counter, client_b, ALICE.address.raw).ok  # the later one lands first
    assert _push(network, counter, client_a, ALICE.address.raw).ok
    for payload in (client_a, client_b):
        assert _push(network, counter, payload, ALICE.address.raw).error.code == (
            "runtime_command_replayed"
        )
    stale = _sealed(
        network, counter, _call(ALICE.address.raw, base - COMMAND_NONCE_WINDOW, {"by": 1})
    )
    assert _push(network, counter, stale, ALICE.address.raw).error.code == (
        "runtime_command_replayed"
    )


def test_agent_failure_charges_nothing_but_records_error(network: Network, counter: bytes) -> None:
    before = _digest(network, counter)
    seq = network.command(ALICE, counter, {"by": "not a number"}, nonce=1)
    network.settle()
    outcome = outcomes(network, counter)[seq]
    assert outcome.error.code == "sandbox_agent_error"
    assert _digest(network, counter) == before
    # the nonce is spent even though the command failed: it cannot be replayed later
    assert network.cores["w1"].runtimes[counter].nonce_used(ALICE.address.raw, 1)


def test_pause_resume_upgrade_transfer(network: Network, counter: bytes) -> None:
    from veilnet.testing import Revert

    with pytest.raises(Revert, match="not owner or controller"):
        network.ledger.set_paused(counter, True, sender=MALLORY.address.raw)
    network.ledger.set_paused(counter, True, sender=OWNER.address.raw)
    network.settle()
    with pytest.raises(Revert, match="contract paused"):
        network.command(ALICE, counter, {"by": 1}, nonce=1)
    network.ledger.set_paused(counter, False, sender=OWNER.address.raw)
    network.command(ALICE, counter, {"by": 2}, nonce=2)
    network.settle()
    # upgrade keeps state, new code runs
    upgraded = (
        (EXAMPLES / "counter.py")
        .read_text()
        .replace(
            'count = (state.get("count") or 0) + by', 'count = (state.get("count") or 0) + 10 * by'
        )
    )
    network.ledger.upgrade_contract(
        counter, proto.pack_code("py", upgraded.encode()), sender=OWNER.address.raw
    )
    network.command(ALICE, counter, {"by": 1}, nonce=3)
    network.settle()
    assert network.cores["w2"].runtimes[counter].state.values["count"] == b"12"
    # transfer: only the new owner may set secrets
    network.ledger.transfer_contract(counter, ALICE.address.raw, sender=OWNER.address.raw)
    network.ledger.accept_contract(counter, sender=ALICE.address.raw)
    network.settle()
    secret = proto.CommandPlaintext(
        sender=OWNER.address.raw, nonce=9, kind="secret", body=_secret("api", "x")
    )
    assert (
        _push(network, counter, _sealed(network, counter, secret), OWNER.address.raw).error.code
        == "runtime_not_authorized"
    )
    secret = proto.CommandPlaintext(
        sender=ALICE.address.raw, nonce=10, kind="secret", body=_secret("api", "k")
    )
    assert _push(network, counter, _sealed(network, counter, secret), ALICE.address.raw).ok
    assert network.cores["w1"].runtimes[counter].secrets == {"api": "k"}


def _secret(name: str, value: str) -> bytes:
    from veilnet.codec import encode

    return encode([name, value])
