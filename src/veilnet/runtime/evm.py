"""Agents' ``evm.call``: a read-only EVM call run in the core, over chain state it proves itself
from the verified block's state root; the host only fetches trie nodes, which it cannot forge.

Theory of operation
-------------------
The call runs in py-evm over a database that holds nothing but what the host handed in: trie
nodes stored under their own keccak256, and contract code under its keccak256. The state root
comes from the block header the core verified (``CoreContext.executions``), so every account,
storage slot and code the execution reads is proven by the hashes that lead to it from that
root, the way a stateless client checks a witness. A node or code the execution needs and the
database lacks stops it; the core names what was missing (an account, or an account's slot)
and asks the host for its ``eth_getProof`` nodes (and code), then runs the call again: at most
``MAX_ROUNDS`` times, and a round that brings nothing new ends it. The host can withhold state
(the agent then gets an error value), never change it.

What the block context cannot prove is fixed: ``BLOCKHASH`` knows only the parent's hash; there
is no blob context. A call runs with at most ``MAX_CALL_GAS``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Final

from veilnet.crypto import keccak
from veilnet.protocol.chain import HeaderFields
from veilnet.sandbox.interfaces import JSONValue

__all__ = ["EVM_ERRORS", "MAX_CALL_GAS", "MAX_ROUNDS", "Witness", "call"]

MAX_ROUNDS: Final = 48
"""Witness round trips one call may take (each brings one account or slot)."""
MAX_CALL_GAS: Final = 30_000_000
MAX_CALLDATA_BYTES: Final = 128 * 1024
MAX_WITNESS_ITEMS: Final = 256
"""Nodes and codes one round may bring (a proof is a few dozen nodes)."""

Witness = Callable[[int, bytes, bytes | None], tuple[list[bytes], list[bytes]]]
"""The host's fetch: ``(block number, address, slot or None) -> (trie nodes, codes)``."""

EVM_ERRORS: Final = {
    "evm_request_invalid": "the call is malformed (to, data, from or gas)",
    "evm_unavailable": "the block's header is not known here (the worker restarted since)",
    "evm_unproven": "the host did not bring the state the call needs",
}


class _Missing(Exception):
    def __init__(self, address: bytes, slot: bytes | None) -> None:
        super().__init__(address.hex())
        self.address = address
        self.slot = slot


class _Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def call(
    request: JSONValue,
    *,
    header: HeaderFields | None,
    chain_id: int,
    witness: Witness,
) -> JSONValue:
    """Run ``{to, data, from?, gas?}`` at ``header``'s state: ``{output, gas_used}``,
    ``{reverted: true, output}``, or ``{error: {code, message}}``."""
    try:
        to, data, sender, gas = _parse(request)
        if header is None or not header.state_root:
            raise _Refused("evm_unavailable", EVM_ERRORS["evm_unavailable"])
        return _run(header, chain_id, to, data, sender, min(gas, header.gas_limit or gas), witness)
    except _Refused as refused:
        return {"error": {"code": refused.code, "message": refused.message}}


def _parse(request: JSONValue) -> tuple[bytes, bytes, bytes, int]:
    if not isinstance(request, dict) or set(request) - {"to", "data", "from", "gas"}:
        raise _Refused("evm_request_invalid", "a call is {to, data, from?, gas?}")
    to = _hex(request.get("to"), "to", 20)
    data = _hex(request.get("data", "0x"), "data", None)
    sender = _hex(request.get("from", "0x" + "00" * 20), "from", 20)
    gas = request.get("gas", MAX_CALL_GAS)
    if not isinstance(gas, int) or isinstance(gas, bool) or not 21_000 <= gas <= MAX_CALL_GAS:
        raise _Refused("evm_request_invalid", f"gas is a whole number up to {MAX_CALL_GAS}")
    if len(data) > MAX_CALLDATA_BYTES:
        raise _Refused("evm_request_invalid", "data is larger than 128 KiB")
    return to, data, sender, gas


def _hex(value: Any, name: str, size: int | None) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise _Refused("evm_request_invalid", f"{name} is a 0x-prefixed hex string")
    try:
        raw = bytes.fromhex(value[2:])
    except ValueError as exc:
        raise _Refused("evm_request_invalid", f"{name} is not hex") from exc
    if size is not None and len(raw) != size:
        raise _Refused("evm_request_invalid", f"{name} is {size} bytes")
    return raw


def _run(
    header: HeaderFields,
    chain_id: int,
    to: bytes,
    data: bytes,
    sender: bytes,
    gas: int,
    witness: Witness,
) -> JSONValue:
    known: dict[bytes, bytes] = {}
    for _ in range(MAX_ROUNDS):
        try:
            return _execute(header, chain_id, known, to, data, sender, gas)
        except _Missing as missing:
            nodes, codes = witness(header.number, missing.address, missing.slot)
            added = 0
            for item in [*nodes, *codes][:MAX_WITNESS_ITEMS]:
                if isinstance(item, bytes) and keccak(item) not in known:
                    known[keccak(item)] = item  # stored under its own hash: it proves itself
                    added += 1
            if added == 0:
                raise _Refused(
                    "evm_unproven",
                    f"the host did not prove 0x{missing.address.hex()}"
                    + ("" if missing.slot is None else f" slot 0x{missing.slot.hex()}"),
                ) from None
    raise _Refused("evm_unproven", f"the call needed more than {MAX_ROUNDS} proofs")


def _execute(
    header: HeaderFields,
    chain_id: int,
    known: dict[bytes, bytes],
    to: bytes,
    data: bytes,
    sender: bytes,
    gas: int,
) -> JSONValue:
    from eth.db.atomic import AtomicDB
    from eth.db.backends.memory import MemoryDB
    from eth.vm.execution_context import ExecutionContext
    from eth.vm.interrupt import EVMMissingData, MissingStorageTrieNode
    from eth.vm.message import Message
    from eth_typing import Address, BlockNumber, Hash32

    state_class = _state_class()
    context = ExecutionContext(
        coinbase=Address(header.coinbase),
        timestamp=header.timestamp,
        block_number=BlockNumber(header.number),
        difficulty=0,
        mix_hash=Hash32(header.mix_hash),
        gas_limit=header.gas_limit,
        prev_hashes=[Hash32(header.parent_hash)],
        chain_id=chain_id,
        base_fee_per_gas=header.base_fee or 0,
        excess_blob_gas=0,
    )
    state = state_class(AtomicDB(MemoryDB(dict(known))), context, header.state_root)
    accounts = state._account_db
    try:
        code = state.get_code(to)
        message = Message(
            gas=gas, to=Address(to), sender=Address(sender), value=0, data=data, code=code
        )
        tx_context = state.get_transaction_context_class()(gas_price=0, origin=sender)
        computation = state.computation_class.apply_computation(state, message, tx_context)
    except MissingStorageTrieNode:
        raise _Missing(*accounts.asking_slot) from None
    except EVMMissingData:  # an account's node, or its code
        raise _Missing(accounts.asking_account, None) from None
    output = "0x" + bytes(computation.output or b"").hex()
    if computation.is_error:
        return {"reverted": True, "output": output}
    return {"output": output, "gas_used": gas - computation.get_gas_remaining()}


@functools.cache
def _state_class() -> Any:
    """py-evm's Cancun state over an account database that says what it was reading when a
    node or code was missing (py-evm names only the node's hash)."""
    from eth.db.account import AccountDB
    from eth.vm.forks.cancun.state import CancunState

    class _WitnessAccountDB(AccountDB):
        asking_account: bytes = b""
        asking_slot: tuple[bytes, bytes] = (b"", b"")

        def _get_account(self, address: Any, from_journal: bool = True) -> Any:
            self.asking_account = bytes(address)
            return super()._get_account(address, from_journal)

        def get_code(self, address: Any) -> bytes:
            self.asking_account = bytes(address)
            code: bytes = super().get_code(address)
            return code

        def get_storage(self, address: Any, slot: int, from_journal: bool = True) -> int:
            self.asking_slot = (bytes(address), slot.to_bytes(32, "big"))
            value: int = super().get_storage(address, slot, from_journal)
            return value

    class _WitnessState(CancunState):
        account_db_class = _WitnessAccountDB

        def set_system_contracts(self) -> None:
            pass  # block-processing duty (the beacon roots of EIP-4788); a call makes none

    return _WitnessState
