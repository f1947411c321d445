"""The Bus's money and signature paths on real chains: one fee rule, state before any external
call, the excess refunded, withdrawals a multisig can take, and a domain that follows chain.id."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_hash.auto import keccak

from veilnet.chain import AnvilChain, ContractReverted, egress_domain, sign_egress
from veilnet.chain.constants import DEFAULT_MAX_PAYLOAD
from veilnet.chain.contracts import TxSender
from veilnet.chain.egress import topic
from veilnet.chain.rpc import from_quantity
from veilnet.crypto import Address

from .conftest import Net, key, make_net, register

CLUSTER = b"\xc1" * 32
PLAIN = topic("veil/egress/collateral")

# A fee hook as a DApp would write one: it keeps what it is paid, and its default function
# writes storage, so `send` (2,300 gas) could not pay it. It can try to push a command back.
HOOK = """
# pragma version 0.4.3
interface IBus:
    def push_command(contract_id: bytes32, payload: Bytes[32768]) -> uint64: payable

bus: public(address)
calls: public(uint256)
received: public(uint256)
reenter: public(bool)

@deploy
def __init__(bus: address):
    self.bus = bus

@payable
@external
def on_command(sender: address, contract_id: bytes32, size: uint256):
    self.calls += 1
    self.received += msg.value
    if self.reenter:
        extcall IBus(self.bus).push_command(contract_id, b"again")

@external
def set_reenter(flag: bool):
    self.reenter = flag

@payable
@external
def __default__():
    self.received += msg.value
"""


def _hook(net: Net) -> Address:
    import vyper

    bytecode = vyper.compile_code(HOOK, output_formats=["bytecode"])["bytecode"]
    code = bytes.fromhex(bytecode.removeprefix("0x")) + abi_encode(
        ["address"], [net.deployment.addresses.bus.hex]
    )
    receipt = net.admin.transact(None, code)
    assert receipt.contract_address is not None
    return receipt.contract_address


def _call(net: Net, to: Address, signature: str, *args: Any, types: list[str] | None = None) -> Any:
    data = keccak(signature.encode())[:4] + abi_encode(types or [], list(args))
    return net.network.client.call("eth_call", {"to": to.hex, "data": "0x" + data.hex()}, "latest")


def _uint(net: Net, to: Address, name: str) -> int:
    raw = _call(net, to, f"{name}()")
    (value,) = abi_decode(["uint256"], bytes.fromhex(raw[2:]))
    return int(value)


def _balance(net: Net, address: Address) -> int:
    return from_quantity(net.network.client.call("eth_getBalance", address.hex, "latest"))


def _reverts(reason: str, fn: Any, *args: Any, **kwargs: Any) -> None:
    with pytest.raises(ContractReverted) as info:
        fn(*args, **kwargs)
    assert reason in info.value.reason


def _contract(net: Net) -> bytes:
    net.network.create_cluster(net.admin, CLUSTER, net.admin.address)
    return net.network.deploy_contract(net.user, salt=b"\x01" * 32, cluster_id=CLUSTER, code=b"x")


def _params(net: Net, *, fee: int, hook: Address | None) -> None:
    net.network.set_bus_params(
        net.admin, max_payload=DEFAULT_MAX_PAYLOAD, command_fee=fee, fee_hook=hook
    )


def test_one_fee_rule_and_the_excess_goes_back(net: Net) -> None:
    contract, bus = _contract(net), net.deployment.addresses.bus
    _params(net, fee=10, hook=None)
    _reverts("fee too low", net.network.push_command, net.user, contract, b"c", value=9)
    net.network.push_command(net.user, contract, b"c", value=25)
    assert _balance(net, bus) == 10  # 15 went back to the sender
    hook = _hook(net)
    _params(net, fee=10, hook=hook)
    _reverts("fee too low", net.network.push_command, net.user, contract, b"c", value=9)
    net.network.push_command(net.user, contract, b"c", value=40)
    # the same fee with a hook: it gets exactly the fee, the Bus keeps nothing more
    assert (_uint(net, hook, "calls"), _uint(net, hook, "received")) == (1, 10)
    assert _balance(net, bus) == 10


def test_a_batch_pays_the_fee_per_command(net: Net) -> None:
    """``push_commands``: the same fee rule once per command, the hook paid one call per
    command, the excess over their sum refunded; too little for all of them records none."""
    contract, bus = _contract(net), net.deployment.addresses.bus
    _params(net, fee=10, hook=None)
    batch = [b"a", b"b", b"c"]
    _reverts("fee too low", net.network.push_commands, net.user, contract, batch, value=29)
    net.network.push_commands(net.user, contract, batch, value=35)
    assert _balance(net, bus) == 30  # 5 went back to the sender
    hook = _hook(net)
    _params(net, fee=10, hook=hook)
    net.network.push_commands(net.user, contract, batch, value=50)
    assert (_uint(net, hook, "calls"), _uint(net, hook, "received")) == (3, 30)
    assert _balance(net, bus) == 30
    net.admin.transact(hook, keccak(b"set_reenter(bool)")[:4] + abi_encode(["bool"], [True]))
    with pytest.raises(ContractReverted):
        net.network.push_commands(net.user, contract, batch, value=30)
    assert _uint(net, hook, "calls") == 3  # nothing of the failed batch stayed


def test_a_hook_cannot_reenter_and_must_have_code(net: Net) -> None:
    contract = _contract(net)
    _reverts("fee hook has no code", _params, net, fee=1, hook=net.user.address)
    hook = _hook(net)
    _params(net, fee=1, hook=hook)
    net.admin.transact(hook, keccak(b"set_reenter(bool)")[:4] + abi_encode(["bool"], [True]))
    before = _uint(net, hook, "calls")
    with pytest.raises(ContractReverted):
        net.network.push_command(net.user, contract, b"c", value=1)
    assert _uint(net, hook, "calls") == before  # nothing of the failed command stayed


def test_fees_go_to_a_contract_recipient_with_an_event(net: Net) -> None:
    contract, bus = _contract(net), net.deployment.addresses.bus
    _params(net, fee=7, hook=None)
    net.network.push_command(net.user, contract, b"c", value=7)
    recipient = _hook(net)  # its default function needs more than `send` forwards
    data = net.network.bus.encode("withdraw_fees", "0x" + "00" * 20)
    _reverts("zero address", net.admin.transact, bus, data)
    _reverts(
        "caller is not the owner",
        net.user.transact,
        bus,
        net.network.bus.encode("withdraw_fees", recipient.hex),
    )
    net.admin.transact(bus, net.network.bus.encode("withdraw_fees", recipient.hex))
    assert _uint(net, recipient, "received") == 7 and _balance(net, bus) == 0
    withdrawn = [e for e in _events(net) if type(e).__name__ == "FeesWithdrawn"]
    assert [(e.to, e.amount) for e in withdrawn] == [(recipient, 7)]  # type: ignore[attr-defined]


def _events(net: Net) -> list[object]:
    from veilnet.chain.follower import Follower

    net.backend.mine(2)
    follower = Follower(net.network.client, net.deployment.addresses, start_block=0)
    return [e for b in follower.poll() for e in b.events]


@pytest.mark.requires_tool("anvil")
def test_signatures_do_not_replay_after_a_chain_id_fork(anvil: AnvilChain) -> None:
    """After a fork changes chain.id, a signature under the old domain no longer verifies and
    one under the new domain does (the Bus computes its domain afresh)."""
    net = make_net(anvil)
    worker = key("fork")
    register(net, worker, poster=True)
    bus = net.deployment.addresses.bus
    old = egress_domain(net.deployment.addresses.chain_id, bus)
    net.network.post(net.relayer, sign_egress(worker, old, seq=0, topic=PLAIN, payload=b"a"))
    net.network.client.call("anvil_setChainId", 4242)
    relayer = TxSender(net.network.client, anvil.dev_accounts[2][1], chain_id=4242)
    new = egress_domain(4242, bus)
    assert net.network.view("Bus", "DOMAIN_SEPARATOR") == new.separator != old.separator
    replayed = sign_egress(worker, old, seq=1, topic=PLAIN, payload=b"b")
    with pytest.raises(ContractReverted) as info:
        net.network.post(relayer, replayed)
    assert "wrong signer" in info.value.reason
    net.network.post(relayer, sign_egress(worker, new, seq=1, topic=PLAIN, payload=b"b"))
    assert net.network.view("Bus", "next_seq", worker.address) == 2
