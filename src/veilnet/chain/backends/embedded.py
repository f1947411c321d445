"""The embedded chain: py-evm (set up through eth-tester) in this process, with our own log index.
Served as JSON-RPC in process or on 127.0.0.1, so web3, cast and the follower work unchanged.

Theory of operation: eth-tester only builds the genesis (funded dev accounts from the anvil
mnemonic); we then drive ``py-evm``'s ``MiningChain`` directly. Each mined block is indexed once
(header JSON, transactions, receipts with logs) into plain lists, so ``eth_getLogs`` and
``eth_getBlockReceipts`` are dictionary look-ups instead of eth-tester's per-call filter scans.
Mining is automatic (one block per request that sent transactions: a JSON-RPC batch of N
transactions lands in one block) or on a timer (``block_time``); ``mine()`` always works.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from veilnet.chain.constants import DEFAULT_CHAIN_ID_EMBEDDED, DEV_ACCOUNTS, DEV_MNEMONIC
from veilnet.chain.errors import ChainNotReady
from veilnet.chain.rpc import InProcessTransport, JSONRPCClient, from_hex, to_hex, to_quantity
from veilnet.crypto import keccak

__all__ = ["EmbeddedChain"]

_CLIENT_VERSION = "veilnet-embedded/py-evm"
_ZERO_ADDRESS = b"\x00" * 20


class _RPCFailure(Exception):
    def __init__(self, code: int, message: str, data: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def _q(value: int) -> str:
    return to_quantity(int(value))


def _block_arg(value: Any) -> Any:
    return value if value is not None else "latest"


class EmbeddedChain:
    """A py-evm chain in this process, spoken to through JSON-RPC.

    Args:
        chain_id: EIP-155 chain id (default 1337).
        block_time: seconds between blocks mined by a timer; ``None`` mines a block for each
            request that sent transactions (instant mining).
        accounts: number of funded dev accounts (same keys as anvil's defaults).

    Use ``client()`` for an in-process JSON-RPC client, ``serve()`` for an HTTP URL.
    """

    def __init__(
        self,
        *,
        chain_id: int = DEFAULT_CHAIN_ID_EMBEDDED,
        block_time: float | None = None,
        accounts: int = DEV_ACCOUNTS,
    ) -> None:
        try:
            from eth_tester import PyEVMBackend
        except ImportError as exc:  # pragma: no cover - dev dependency missing
            raise ChainNotReady("py-evm / eth-tester are not installed") from exc
        self.chain_id = chain_id
        self.block_time = block_time
        self._lock = threading.RLock()
        # hd_path "m/44'/60'/0'/0" + "/i": the same funded accounts as anvil's defaults.
        genesis = PyEVMBackend.generate_genesis_state(
            mnemonic=DEV_MNEMONIC,
            overrides={"balance": 10**24},
            num_accounts=accounts,
            hd_path="m/44'/60'/0'/0",
        )
        backend = PyEVMBackend(
            genesis_state=genesis, mnemonic=DEV_MNEMONIC, hd_path="m/44'/60'/0'/0"
        )
        self._chain = backend.chain
        type(self._chain).chain_id = chain_id  # the class is private to this backend
        self._keys = list(backend.account_keys)
        self._blocks: list[dict[str, Any]] = []
        self._tx_index: dict[bytes, tuple[int, int]] = {}
        self._pending: list[Any] = []
        self._pvm: Any = None
        self._pheader: Any = None
        self._ptxs: list[Any] = []
        self._preceipts: list[Any] = []
        self._snapshots: dict[int, bytes] = {}
        self._next_snapshot = 1
        self._index_block(self._chain.get_canonical_block_by_number(0), ())
        self._server: http.server.ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        if block_time:
            miner = threading.Thread(
                target=self._mine_loop, name="veil-embedded-miner", daemon=True
            )
            miner.start()
            self._threads.append(miner)

    # --- public Python API -----------------------------------------------------------------

    @property
    def dev_accounts(self) -> list[tuple[str, bytes]]:
        """(checksummed address, private key) of each funded dev account."""
        return [(k.public_key.to_checksum_address(), k.to_bytes()) for k in self._keys]

    def client(self) -> JSONRPCClient:
        """A JSON-RPC client calling this chain directly (no HTTP)."""
        return JSONRPCClient(InProcessTransport(self.handle))

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve JSON-RPC over HTTP in a daemon thread; returns the URL."""
        if self._server is not None:
            return self.url
        handle = self.handle

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length))
                    reply: Any = handle(body)
                except ValueError:
                    reply = {
                        "jsonrpc": "2.0",
                        "id": None,
                        "error": {"code": -32700, "message": "parse error"},
                    }
                raw = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        try:
            server = http.server.ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:
            raise ChainNotReady(f"cannot listen on {host}:{port}: {exc}") from exc
        server.daemon_threads = True
        self._server = server
        thread = threading.Thread(
            target=server.serve_forever, name="veil-embedded-rpc", daemon=True
        )
        thread.start()
        self._threads.append(thread)
        return self.url

    @property
    def url(self) -> str:
        if self._server is None:
            raise ChainNotReady("the embedded chain is not served over HTTP; call serve()")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def mine(self, blocks: int = 1) -> int:
        """Mine ``blocks`` blocks (pending transactions go into the first); returns the head."""
        with self._lock:
            for _ in range(blocks):
                self._mine_one()
            return len(self._blocks) - 1

    def snapshot(self) -> int:
        with self._lock:
            sid = self._next_snapshot
            self._next_snapshot += 1
            self._snapshots[sid] = self._chain.get_canonical_head().hash
            return sid

    def revert(self, snapshot_id: int) -> bool:
        """Return to a snapshot (dropping later blocks and pending transactions)."""
        with self._lock:
            target = self._snapshots.get(snapshot_id)
            if target is None:
                return False
            for sid in [s for s in self._snapshots if s >= snapshot_id]:
                del self._snapshots[sid]
            from eth_tester.backends.pyevm.main import GENESIS_PARENT_HASH

            chaindb = self._chain.chaindb
            header = chaindb.get_block_header_by_hash(target)
            chaindb._set_as_canonical_chain_head(chaindb.db, header, GENESIS_PARENT_HASH)
            self._chain.header = self._chain.create_header_from_parent(header)
            self._pending = []
            self._pvm = None
            for record in self._blocks[header.block_number + 1 :]:
                for tx_hash in record["tx_hashes"]:
                    self._tx_index.pop(tx_hash, None)
            del self._blocks[header.block_number + 1 :]
            return True

    def close(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []

    def __enter__(self) -> EmbeddedChain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- mining and indexing ---------------------------------------------------------------

    def _mine_loop(self) -> None:
        assert self.block_time is not None
        while not self._stop.wait(self.block_time):
            with self._lock:
                self._mine_one()

    def _pending_vm(self) -> Any:
        """The VM building the next block; transactions are applied to it as they arrive."""
        if self._pvm is None:
            self._pvm = self._chain.get_vm(self._chain.header)
            self._pheader = self._chain.header
            self._ptxs = []
            self._preceipts = []
        return self._pvm

    def _apply(self, tx: Any) -> None:
        vm = self._pending_vm()
        snapshot = vm.state.snapshot()
        try:
            receipt, _ = vm.apply_transaction(self._pheader, tx)
        except Exception:
            vm.state.revert(snapshot)
            raise
        header = vm.add_receipt_to_header(self._pheader, receipt)
        self._pheader = vm.increment_blob_gas_used(header, tx)
        self._ptxs.append(tx)
        self._preceipts.append(receipt)

    def _mine_one(self) -> None:
        # Same steps as py-evm's MiningChain.mine_all, but over transactions applied one by
        # one as they arrived (linear; MiningChain.apply_transaction re-packs the block each time).
        vm = self._pending_vm()
        parent = self._chain.get_canonical_head()
        filled = vm.set_block_transactions_and_withdrawals(
            vm.get_block(), self._pheader, tuple(self._ptxs), tuple(self._preceipts)
        )
        result = vm.mine_block(filled, mix_hash=keccak(b"veil-prevrandao" + parent.hash))
        block = result.block
        self._chain.persist_block(block)
        self._chain.header = self._chain.create_header_from_parent(block.header)
        self._pvm = None
        self._index_block(block, ())
        self._pending = []

    def _index_block(self, block: Any, senders: tuple[Any, ...]) -> None:
        header = block.header
        vm = self._chain.get_vm(header)
        receipts = self._chain.chaindb.get_receipts(header, vm.get_receipt_builder())
        block_hash = header.hash
        number = header.block_number
        tx_hashes = [tx.hash for tx in block.transactions]
        receipt_docs = []
        log_index = 0
        previous_cumulative = 0
        for index, (tx, receipt) in enumerate(zip(block.transactions, receipts, strict=True)):
            logs = []
            for log in receipt.logs:
                logs.append(
                    {
                        "address": to_hex(log.address),
                        "topics": [to_hex(t.to_bytes(32, "big")) for t in log.topics],
                        "data": to_hex(log.data),
                        "blockNumber": _q(number),
                        "blockHash": to_hex(block_hash),
                        "transactionHash": to_hex(tx.hash),
                        "transactionIndex": _q(index),
                        "logIndex": _q(log_index),
                        "removed": False,
                    }
                )
                log_index += 1
            contract = None
            if not tx.to:
                from eth._utils.address import generate_contract_address

                contract = to_hex(generate_contract_address(tx.sender, tx.nonce))
            gas_used = receipt.gas_used - previous_cumulative
            previous_cumulative = receipt.gas_used
            receipt_docs.append(
                {
                    "transactionHash": to_hex(tx.hash),
                    "transactionIndex": _q(index),
                    "blockHash": to_hex(block_hash),
                    "blockNumber": _q(number),
                    "from": to_hex(tx.sender),
                    "to": to_hex(tx.to) if tx.to else None,
                    "cumulativeGasUsed": _q(receipt.gas_used),
                    "gasUsed": _q(gas_used),
                    "effectiveGasPrice": _q(_effective_gas_price(tx, header)),
                    "contractAddress": contract,
                    "logs": logs,
                    "logsBloom": to_hex(receipt.bloom.to_bytes(256, "big")),
                    "status": _q(1 if receipt.state_root == b"\x01" else 0),
                    "type": _q(getattr(tx, "type_id", None) or 0),
                }
            )
            self._tx_index[tx.hash] = (number, index)
        record = {
            "header": _header_json(header, tx_hashes),
            "tx_hashes": tx_hashes,
            "transactions": list(block.transactions),
            "receipts": receipt_docs,
        }
        if number != len(self._blocks):
            raise RuntimeError("embedded chain index out of step")  # pragma: no cover
        self._blocks.append(record)

    # --- JSON-RPC ------------------------------------------------------------------------------

    def handle(self, body: Any) -> Any:
        """Answer one JSON-RPC request or batch (the HTTP server and in-process clients use it)."""
        with self._lock:
            before = len(self._pending)
            if isinstance(body, list):
                reply: Any = [self._handle_one(item) for item in body]
            else:
                reply = self._handle_one(body)
            if self.block_time is None and len(self._pending) > before:
                self._mine_one()
            return reply

    def _handle_one(self, request: Any) -> dict[str, Any]:
        rid = request.get("id") if isinstance(request, dict) else None
        try:
            if not isinstance(request, dict) or not isinstance(request.get("method"), str):
                raise _RPCFailure(-32600, "invalid request")
            method = request["method"]
            params = request.get("params") or []
            fn: Callable[..., Any] | None = self._methods().get(method)
            if fn is None:
                raise _RPCFailure(-32601, f"method {method} not supported")
            result = fn(*params)
            return {"jsonrpc": "2.0", "id": rid, "result": result}
        except _RPCFailure as exc:
            error: dict[str, Any] = {"code": exc.code, "message": exc.message}
            if exc.data is not None:
                error["data"] = exc.data
            return {"jsonrpc": "2.0", "id": rid, "error": error}
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            return {
                "jsonrpc": "2.0",
                "id": rid,
                "error": {"code": -32602, "message": f"invalid params: {exc}"[:200]},
            }

    def _methods(self) -> dict[str, Callable[..., Any]]:
        return {
            "web3_clientVersion": lambda: _CLIENT_VERSION,
            "net_version": lambda: str(self.chain_id),
            "eth_chainId": lambda: _q(self.chain_id),
            "eth_syncing": lambda: False,
            "eth_accounts": lambda: [a for a, _ in self.dev_accounts],
            "eth_blockNumber": lambda: _q(len(self._blocks) - 1),
            "eth_gasPrice": self._gas_price,
            "eth_maxPriorityFeePerGas": lambda: _q(10**9),
            "eth_getBlockByNumber": self._get_block_by_number,
            "eth_getBlockByHash": self._get_block_by_hash,
            "eth_getBlockReceipts": self._get_block_receipts,
            "eth_getTransactionReceipt": self._get_receipt,
            "eth_getTransactionByHash": self._get_transaction,
            "eth_getTransactionCount": self._get_nonce,
            "eth_getBalance": self._get_balance,
            "eth_getCode": self._get_code,
            "eth_getProof": self._get_proof,
            "eth_getStorageAt": self._get_storage,
            "eth_getLogs": self._get_logs,
            "eth_call": self._call,
            "eth_estimateGas": self._estimate_gas,
            "eth_sendRawTransaction": self._send_raw,
            "eth_sendTransaction": self._send_unsigned,
            "evm_mine": lambda *_: self._rpc_mine("0x1"),
            "anvil_mine": lambda n="0x1", *_: self._rpc_mine(n),
            "evm_snapshot": lambda: _q(self.snapshot()),
            "evm_revert": lambda sid: self.revert(int(sid, 16)),
        }

    def _rpc_mine(self, count: Any) -> str:
        for _ in range(int(count, 16) if isinstance(count, str) else int(count)):
            self._mine_one()
        return "0x0"

    def _resolve(self, tag: Any) -> int:
        head = len(self._blocks) - 1
        if tag in ("latest", "safe", "finalized", "pending", None):
            return head
        if tag == "earliest":
            return 0
        number = int(tag, 16) if isinstance(tag, str) else int(tag)
        if number < 0:
            raise _RPCFailure(-32602, "negative block number")
        return number

    def _gas_price(self) -> str:
        base = getattr(self._chain.header, "base_fee_per_gas", 0)
        return _q(base + 10**9)

    def _get_block_by_number(self, tag: Any, full: bool = False) -> Any:
        number = self._resolve(tag)
        if number >= len(self._blocks):
            return None
        return self._block_doc(number, full)

    def _get_block_by_hash(self, block_hash: str, full: bool = False) -> Any:
        raw = from_hex(block_hash)
        try:
            header = self._chain.chaindb.get_block_header_by_hash(raw)
        except Exception:
            return None
        number = header.block_number
        if number >= len(self._blocks) or self._blocks[number]["header"]["hash"] != block_hash:
            return None
        return self._block_doc(number, full)

    def _block_doc(self, number: int, full: bool) -> dict[str, Any]:
        record = self._blocks[number]
        doc = dict(record["header"])
        if full:
            doc["transactions"] = [
                self._tx_doc(tx, number, index) for index, tx in enumerate(record["transactions"])
            ]
        return doc

    def _tx_doc(self, tx: Any, number: int, index: int) -> dict[str, Any]:
        record = self._blocks[number]
        return {
            "hash": to_hex(tx.hash),
            "blockHash": record["header"]["hash"],
            "blockNumber": _q(number),
            "transactionIndex": _q(index),
            "from": to_hex(tx.sender),
            "to": to_hex(tx.to) if tx.to else None,
            "nonce": _q(tx.nonce),
            "gas": _q(tx.gas),
            "value": _q(tx.value),
            "input": to_hex(tx.data),
            "type": _q(getattr(tx, "type_id", None) or 0),
            "chainId": _q(self.chain_id),
        }

    def _get_block_receipts(self, tag: Any) -> Any:
        number = self._resolve(tag)
        if number >= len(self._blocks):
            return None
        return self._blocks[number]["receipts"]

    def _get_receipt(self, tx_hash: str) -> Any:
        where = self._tx_index.get(from_hex(tx_hash))
        if where is None:
            return None
        return self._blocks[where[0]]["receipts"][where[1]]

    def _get_transaction(self, tx_hash: str) -> Any:
        where = self._tx_index.get(from_hex(tx_hash))
        if where is None:
            return None
        return self._tx_doc(self._blocks[where[0]]["transactions"][where[1]], *where)

    def _state(self, tag: Any) -> Any:
        if tag == "pending":
            return self._pending_vm().state
        number = self._resolve(tag)
        header = self._chain.get_canonical_block_header_by_number(number)
        return self._chain.get_vm(header).state

    def _get_nonce(self, address: str, tag: Any = "latest") -> str:
        return _q(self._state(_block_arg(tag)).get_nonce(from_hex(address)))

    def _get_balance(self, address: str, tag: Any = "latest") -> str:
        return _q(self._state(_block_arg(tag)).get_balance(from_hex(address)))

    def _get_code(self, address: str, tag: Any = "latest") -> str:
        return to_hex(self._state(_block_arg(tag)).get_code(from_hex(address)))

    def _get_proof(self, address: str, slots: list[str], tag: Any = "latest") -> dict[str, Any]:
        """EIP-1186: the account's and the slots' Merkle-Patricia proofs at the block."""
        import rlp
        from eth.rlp.accounts import Account
        from trie.hexary import HexaryTrie

        number = self._resolve(_block_arg(tag))
        header = self._chain.get_canonical_block_header_by_number(number)
        db = self._chain.chaindb.db
        raw = from_hex(address)
        accounts = HexaryTrie(db, header.state_root)
        encoded = accounts.get(keccak(raw))
        account = rlp.decode(encoded, sedes=Account) if encoded else Account()
        storage = HexaryTrie(db, account.storage_root)

        def nodes(trie: Any, key: bytes) -> list[str]:
            return [to_hex(rlp.encode(node)) for node in trie.get_proof(key)]

        proofs = []
        for slot in slots:
            key = int(slot, 16).to_bytes(32, "big")
            value = storage.get(keccak(key))
            proofs.append(
                {
                    "key": slot,
                    "value": _q(rlp.decode(value, sedes=rlp.sedes.big_endian_int) if value else 0),
                    "proof": nodes(storage, keccak(key)),
                }
            )
        return {
            "address": address,
            "accountProof": nodes(accounts, keccak(raw)),
            "balance": _q(account.balance),
            "nonce": _q(account.nonce),
            "codeHash": to_hex(account.code_hash),
            "storageHash": to_hex(account.storage_root),
            "storageProof": proofs,
        }

    def _get_storage(self, address: str, slot: str, tag: Any = "latest") -> str:
        value = self._state(_block_arg(tag)).get_storage(from_hex(address), int(slot, 16))
        return to_hex(int(value).to_bytes(32, "big"))

    def _get_logs(self, criteria: dict[str, Any]) -> list[dict[str, Any]]:
        if "blockHash" in criteria:
            doc = self._get_block_by_hash(criteria["blockHash"])
            if doc is None:
                raise _RPCFailure(-32000, "unknown block")
            start = end = int(doc["number"], 16)
        else:
            start = self._resolve(criteria.get("fromBlock", "latest"))
            end = min(self._resolve(criteria.get("toBlock", "latest")), len(self._blocks) - 1)
        addresses = criteria.get("address")
        if isinstance(addresses, str):
            addresses = [addresses]
        wanted = {a.lower() for a in addresses} if addresses else None
        topic_filter = criteria.get("topics") or []
        out = []
        for number in range(start, end + 1):
            for receipt in self._blocks[number]["receipts"]:
                for log in receipt["logs"]:
                    if wanted is not None and log["address"] not in wanted:
                        continue
                    if not _topics_match(log["topics"], topic_filter):
                        continue
                    out.append(log)
        return out

    def _call_computation(self, tx: dict[str, Any], tag: Any) -> Any:
        from eth.vm.spoof import SpoofTransaction

        number = self._resolve(_block_arg(tag)) if tag != "pending" else None
        header = (
            self._chain.header
            if number is None
            else self._chain.get_canonical_block_header_by_number(number)
        )
        vm = self._chain.get_vm(header)
        sender = from_hex(tx["from"]) if tx.get("from") else _ZERO_ADDRESS
        data = tx.get("data") or tx.get("input") or "0x"
        unsigned = vm.create_unsigned_transaction(
            nonce=vm.state.get_nonce(sender),
            gas_price=0,
            gas=int(tx["gas"], 16) if tx.get("gas") else header.gas_limit,
            to=from_hex(tx["to"]) if tx.get("to") else b"",
            value=int(tx.get("value") or "0x0", 16),
            data=from_hex(data),
        )
        spoof = SpoofTransaction(unsigned, from_=sender)
        with vm.in_costless_state() as state:
            computation = state.costless_execute_transaction(spoof)
        return vm, header, spoof, computation

    def _raise_if_reverted(self, computation: Any) -> None:
        if computation.is_error:
            output = bytes(computation.output or b"")
            message = "execution reverted"
            from veilnet.chain.rpc import revert_reason

            if output:
                message += f": {revert_reason(output)}"
            raise _RPCFailure(3, message, to_hex(output))

    def _call(self, tx: dict[str, Any], tag: Any = "latest") -> str:
        _, _, _, computation = self._call_computation(tx, tag)
        self._raise_if_reverted(computation)
        return to_hex(bytes(computation.output))

    def _estimate_gas(self, tx: dict[str, Any], tag: Any = "pending") -> str:
        _, header, spoof, computation = self._call_computation(tx, tag)
        self._raise_if_reverted(computation)
        return _q(self._chain.estimate_gas(spoof, header))

    def _send_raw(self, raw_hex: str) -> str:
        from eth_utils.exceptions import ValidationError

        raw = from_hex(raw_hex)
        vm = self._chain.get_vm()
        try:
            tx = vm.get_transaction_builder().decode(raw)
            if getattr(tx, "chain_id", self.chain_id) not in (None, self.chain_id):
                raise _RPCFailure(-32000, "wrong chain id")
            if tx.hash in self._tx_index or any(p == tx.hash for p in self._pending):
                raise _RPCFailure(-32000, "already known")
            self._apply(tx)
        except ValidationError as exc:
            raise _RPCFailure(-32000, f"invalid transaction: {exc}"[:300]) from exc
        except _RPCFailure:
            raise
        except Exception as exc:
            raise _RPCFailure(-32602, f"undecodable transaction: {type(exc).__name__}") from exc
        self._pending.append(tx.hash)
        return to_hex(tx.hash)

    def _send_unsigned(self, tx: dict[str, Any]) -> str:
        from eth_account import Account

        keys = {a.lower(): k for a, k in self.dev_accounts}
        key = keys.get(str(tx.get("from", "")).lower())
        if key is None:
            raise _RPCFailure(-32000, "unknown account")
        sender = tx["from"]
        gas = int(tx["gas"], 16) if tx.get("gas") else int(self._estimate_gas(tx), 16) * 2
        fee = int(self._gas_price(), 16) * 2
        signed = Account.sign_transaction(
            {
                "chainId": self.chain_id,
                "nonce": int(self._get_nonce(sender, "pending"), 16),
                "to": tx.get("to") or b"",
                "value": int(tx.get("value") or "0x0", 16),
                "data": tx.get("data") or tx.get("input") or "0x",
                "gas": gas,
                "maxFeePerGas": fee,
                "maxPriorityFeePerGas": 10**9,
            },
            key,
        )
        return self._send_raw(to_hex(signed.raw_transaction))


def _topics_match(topics: list[str], wanted: list[Any]) -> bool:
    for position, option in enumerate(wanted):
        if option is None:
            continue
        if position >= len(topics):
            return False
        options = option if isinstance(option, list) else [option]
        if topics[position].lower() not in {o.lower() for o in options}:
            return False
    return True


def _effective_gas_price(tx: Any, header: Any) -> int:
    base = getattr(header, "base_fee_per_gas", 0)
    if hasattr(tx, "max_fee_per_gas"):
        return int(min(tx.max_fee_per_gas, base + tx.max_priority_fee_per_gas))
    return int(tx.gas_price)


def _header_json(header: Any, tx_hashes: list[bytes]) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "number": _q(header.block_number),
        "hash": to_hex(header.hash),
        "parentHash": to_hex(header.parent_hash),
        "sha3Uncles": to_hex(header.uncles_hash),
        "miner": to_hex(header.coinbase),
        "stateRoot": to_hex(header.state_root),
        "transactionsRoot": to_hex(header.transaction_root),
        "receiptsRoot": to_hex(header.receipt_root),
        "logsBloom": to_hex(int(header.bloom).to_bytes(256, "big")),
        "difficulty": _q(header.difficulty),
        "gasLimit": _q(header.gas_limit),
        "gasUsed": _q(header.gas_used),
        "timestamp": _q(header.timestamp),
        "extraData": to_hex(header.extra_data),
        "mixHash": to_hex(header.mix_hash),
        "nonce": to_hex(header.nonce),
        "size": _q(0),
        "uncles": [],
        "transactions": [to_hex(h) for h in tx_hashes],
    }
    optional = (
        ("baseFeePerGas", "base_fee_per_gas", _q),
        ("withdrawalsRoot", "withdrawals_root", to_hex),
        ("blobGasUsed", "blob_gas_used", _q),
        ("excessBlobGas", "excess_blob_gas", _q),
        ("parentBeaconBlockRoot", "parent_beacon_block_root", to_hex),
        ("requestsHash", "requests_hash", to_hex),
    )
    for key, attr, fmt in optional:
        if hasattr(header, attr):
            doc[key] = fmt(getattr(header, attr))
    if "withdrawalsRoot" in doc:
        doc["withdrawals"] = []
    return doc


def _now() -> float:
    return time.time()
