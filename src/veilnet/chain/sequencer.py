"""The ``sequencer`` chain-trust policy's block producer side: it signs every final block once.
A JSON-RPC service beside the chain (as an OP-stack sequencer gossips signed blocks); hosts fetch.

Theory of operation
-------------------
The sequencer reads blocks from the node it runs (the devnet's anvil or embedded chain), and
signs block ``n`` once ``finality_depth`` blocks are built on it: an EIP-712 ``SequencedBlock``
(number, hash) under the network's Registry domain, so the chain id and the network are bound.
It never signs two hashes at one height (a second hash is refused; the pair would be evidence
of equivocation a contract can check with ``ecrecover``). Worker hosts fetch the signatures
with ``veil_sequencedBlocks(first, last)`` and hand each to their core with the raw block; the
core checks the signature against the sequencer address in its measured configuration.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

from veilnet.chain.constants import DEFAULT_FINALITY_DEPTH
from veilnet.chain.errors import RPCError, RPCUnavailable
from veilnet.chain.proofs import verify_header
from veilnet.chain.rpc import JSONRPCClient, from_hex, from_quantity, to_hex, to_quantity
from veilnet.crypto import Address, Domain, SecretKey, sign_typed
from veilnet.protocol.chain import POLICY_SEQUENCER, SEQUENCED_BLOCK_TYPE, ChainTrust

__all__ = [
    "MAX_SEQUENCED_RANGE",
    "Sequencer",
    "SequencerClient",
    "SequencerServer",
    "sequencer_trust",
    "sign_block",
    "trust_anchor",
]

MAX_SEQUENCED_RANGE: Final = 256
"""Most blocks one ``veil_sequencedBlocks`` call returns."""
_MAX_REQUEST_BYTES: Final = 64 * 1024


def sign_block(
    key: SecretKey, *, chain_id: int, registry: bytes, number: int, block_hash: bytes
) -> bytes:
    """The sequencer's 65-byte signature over one block (what the core's light client checks)."""
    domain = Domain(chain_id=chain_id, verifying_contract=Address(registry))
    return sign_typed(
        key, domain, SEQUENCED_BLOCK_TYPE, {"number": number, "blockHash": block_hash}
    )


class Sequencer:
    """Signs final blocks of the node behind ``client``, each height at most once.

    Args:
        client: the node the sequencer trusts (it produces or follows the blocks).
        key: the sequencer key; its address is in every core's ``ChainTrust``.
        registry: the network's Registry (the signing domain's verifying contract).
        finality_depth: blocks built on a block before it is signed.
    """

    def __init__(
        self,
        client: JSONRPCClient,
        key: SecretKey,
        *,
        registry: bytes,
        finality_depth: int = DEFAULT_FINALITY_DEPTH,
    ) -> None:
        self._client = client
        self._key = key
        self._registry = registry
        self._depth = finality_depth
        self._chain_id = from_quantity(client.call("eth_chainId"))
        self._signed: dict[int, tuple[bytes, bytes]] = {}
        self._lock = threading.Lock()

    @property
    def address(self) -> bytes:
        return self._key.address.raw

    def signed(self, first: int, last: int) -> list[dict[str, Any]]:
        """Signatures of the final blocks in ``first..last`` (a prefix: stops at the first
        block that is not final yet).

        Raises:
            ValueError: an empty or too long range.
            RPCUnavailable / RPCError: the node failed.
        """
        if first < 0 or last < first or last - first >= MAX_SEQUENCED_RANGE:
            raise ValueError(f"ask for 1..{MAX_SEQUENCED_RANGE} blocks from 0 on")
        with self._lock:
            head = from_quantity(self._client.call("eth_blockNumber"))
            last = min(last, head - self._depth)
            missing = [n for n in range(first, last + 1) if n not in self._signed]
            if missing:
                docs = self._client.batch(
                    [("eth_getBlockByNumber", [to_quantity(n), False]) for n in missing]
                )
                for number, doc in zip(missing, docs, strict=True):
                    if not isinstance(doc, dict):
                        raise RPCError("the node does not have a final block", block=number)
                    block_hash = verify_header(doc)
                    self._sign(number, block_hash)
            return [
                {
                    "number": n,
                    "hash": to_hex(self._signed[n][0]),
                    "signature": to_hex(self._signed[n][1]),
                }
                for n in range(first, last + 1)
            ]

    def _sign(self, number: int, block_hash: bytes) -> None:
        known = self._signed.get(number)
        if known is not None:
            if known[0] != block_hash:
                raise RPCError("refusing to sign a second hash at one height", block=number)
            return
        signature = sign_block(
            self._key,
            chain_id=self._chain_id,
            registry=self._registry,
            number=number,
            block_hash=block_hash,
        )
        self._signed[number] = (block_hash, signature)


class SequencerServer:
    """Serves ``veil_sequencedBlocks(first, last)`` and ``veil_sequencer()`` over HTTP JSON-RPC
    on ``host:port`` (loopback by default; port 0 picks a free one)."""

    def __init__(self, sequencer: Sequencer, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sequencer = sequencer
        handler = _handler_for(sequencer)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="sequencer", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> SequencerServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread.is_alive():
            self._thread.join()


def _handler_for(sequencer: Sequencer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            size = int(self.headers.get("Content-Length") or 0)
            if not 0 < size <= _MAX_REQUEST_BYTES:
                self._reply(413, {"error": "request too large"})
                return
            try:
                request = json.loads(self.rfile.read(size))
                method, params, ident = request["method"], request.get("params", []), request["id"]
            except (ValueError, KeyError, TypeError):
                self._reply(400, {"error": "not a JSON-RPC request"})
                return
            try:
                result = self._dispatch(method, params)
                body: dict[str, Any] = {"jsonrpc": "2.0", "id": ident, "result": result}
            except (ValueError, TypeError, RPCError, RPCUnavailable) as exc:
                body = {
                    "jsonrpc": "2.0",
                    "id": ident,
                    "error": {"code": -32000, "message": str(exc)},
                }
            self._reply(200, body)

        def _dispatch(self, method: str, params: Any) -> Any:
            if method == "veil_sequencer":
                return {"address": Address(sequencer.address).hex}
            if method == "veil_sequencedBlocks" and isinstance(params, list) and len(params) == 2:
                return sequencer.signed(int(params[0]), int(params[1]))
            raise ValueError(f"unknown method {method!r}")

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


class SequencerClient:
    """The host's side: fetches signatures; the core, not this, decides whether they count."""

    def __init__(self, url: str) -> None:
        self._client = JSONRPCClient(url)

    def signatures(self, first: int, last: int) -> dict[int, tuple[bytes, bytes]]:
        """{number: (hash, signature)} for the signed blocks in ``first..last``.

        Raises RPCUnavailable / RPCError when the sequencer cannot be reached or refuses.
        """
        out: dict[int, tuple[bytes, bytes]] = {}
        for start in range(first, last + 1, MAX_SEQUENCED_RANGE):
            end = min(last, start + MAX_SEQUENCED_RANGE - 1)
            found = self._client.call("veil_sequencedBlocks", start, end)
            if not isinstance(found, list):
                raise RPCError("the sequencer answered with something that is not a list")
            try:
                for item in found:
                    out[int(item["number"])] = (from_hex(item["hash"]), from_hex(item["signature"]))
            except (KeyError, TypeError, ValueError) as exc:
                raise RPCError("the sequencer answered with malformed entries") from exc
        return out

    def close(self) -> None:
        self._client.close()


def trust_anchor(client: JSONRPCClient, genesis_block: int) -> tuple[int, bytes, int]:
    """(number, hash, timestamp) of the block before a network's first block, read once when
    the network is set up (it then travels in the measured configuration, never from a worker's
    node)."""
    number = max(genesis_block - 1, 0)
    doc = client.call("eth_getBlockByNumber", to_quantity(number), False)
    if not isinstance(doc, dict):
        raise RPCError("the node does not have the anchor block", block=number)
    return number, verify_header(doc), from_quantity(doc["timestamp"])


def sequencer_trust(client: JSONRPCClient, genesis_block: int, sequencer: bytes) -> ChainTrust:
    """The ``sequencer`` chain-trust policy of a network deployed from ``genesis_block``."""
    number, block_hash, timestamp = trust_anchor(client, genesis_block)
    return ChainTrust(
        anchor_number=number,
        anchor_hash=block_hash,
        anchor_timestamp=timestamp,
        policy=POLICY_SEQUENCER,
        sequencer=sequencer,
    )
