"""The asynchronous SDK client: chain reads and transactions over JSON-RPC, queries to workers.
Written async first; ``scripts/unasync.py`` generates the synchronous twin in ``sdk/_sync``."""

from __future__ import annotations

import asyncio
import json
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx

from veilnet.chain.artifacts import load_artifact
from veilnet.chain.contracts import ContractHandle
from veilnet.chain.model import (
    ClusterCreated,
    ClusterKeySet,
    ClusterWorkerAdded,
    ContractDeployed,
    ContractInitFailed,
    ContractKeySet,
    Egress,
    EgressHostSet,
    GatekeeperAdded,
    GatekeeperRemoved,
    JobRequested,
    JobScheduled,
    ReplicaDiverged,
    WorkerReattested,
    WorkerRegistered,
)
from veilnet.codec import CodecError, abi_encode, encode
from veilnet.crypto import Address, keccak
from veilnet.errors import VeilnetError
from veilnet.protocol import envelopes as proto
from veilnet.protocol import limits
from veilnet.protocol.hosts import normalize_host
from veilnet.protocol.registration import check_api_url
from veilnet.sdk import constants as C  # noqa: N812
from veilnet.sdk._base import (
    TOPIC_COLLATERAL,
    AgentCheck,
    BaseClient,
    ChainView,
    Hook,
    OpenedResponse,
    PendingQuery,
    _unhex,
    agent_failure,
    language_of,
)
from veilnet.sdk._models import (
    ZERO_ADDRESS,
    AuditEntry,
    ClusterRecord,
    CommandResult,
    ContractKey,
    ContractRecord,
    NetworkConfig,
    QueryResult,
    Wallet,
    WorkerRecord,
    WorkerVerification,
)
from veilnet.sdk.errors import (
    WORKER_CONTRACT_PAUSED,
    WORKER_KEY_EPOCH_EXPIRED,
    WORKER_QUERY_STALE,
    AgentInvalid,
    ChainUnavailable,
    ContractNotFound,
    NetworkConfigInvalid,
    RateLimited,
    RequestTooLarge,
    Timeout,
    TransactionReverted,
    WorkerRefused,
    WorkerUnavailable,
    WorkerUnverified,
)

__all__ = ["AsyncAgent", "AsyncClient"]

Record = TypeVar("Record", WorkerRecord, ClusterRecord, ContractRecord)


class AsyncClient(BaseClient):
    """A client of one Veilnet network.

    Build with ``AsyncClient.connect(network)`` (a path to ``network.json``, a parsed document,
    or nothing: ``$VEIL_NETWORK``, then ``.devnet/network.json``). Every query answer is
    verified (worker signature and attestation, block on our own chain view and fresh) before
    it is returned; every failure is a typed error from ``veilnet.sdk.errors``.
    """

    def __init__(
        self,
        config: NetworkConfig,
        *,
        wallet: Wallet | bytes | str | None = None,
        http: httpx.AsyncClient | None = None,
        timeout: float = C.HTTP_TIMEOUT_S,
        freshness_blocks: int = C.DEFAULT_FRESHNESS_BLOCKS,
        max_confidence: int = C.MAX_CONFIDENCE_LEVEL,
        allow_insecure_dev_tee: bool = False,
        head_cache_s: float = C.HEAD_CACHE_S,
        rate_limit_wait_s: float = C.RATE_LIMIT_WAIT_S,
    ) -> None:
        super().__init__(
            config,
            wallet=wallet,
            freshness_blocks=freshness_blocks,
            max_confidence=max_confidence,
            allow_insecure_dev_tee=allow_insecure_dev_tee,
            head_cache_s=head_cache_s,
        )
        self.rate_limit_wait_s = rate_limit_wait_s
        """How long one query may wait out workers' rate limits (``Retry-After``) in all."""
        self._http = http if http is not None else httpx.AsyncClient(timeout=timeout)
        self._owns_http = http is None
        self._rpc_id = 0
        self._base_fee: int | None = None
        self._worker_clusters: dict[bytes, bytes] = {}
        self._send_locks: dict[bytes, asyncio.Lock] = {}
        self._head_lock = asyncio.Lock()

    @classmethod
    def connect(
        cls, network: str | os.PathLike[str] | Mapping[str, Any] | None = None, **kwargs: Any
    ) -> AsyncClient:
        """A client for ``network`` (see the class docstring); keyword arguments as ``__init__``.

        Raises:
            NetworkConfigInvalid: no usable network description or wallet.
        """
        return cls(NetworkConfig.load(network), **kwargs)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def agent(self, contract_id: bytes | str) -> AsyncAgent:
        """A handle on an existing agent contract (hex id or 32 bytes)."""
        return AsyncAgent(self, _contract_id(contract_id))

    # ---- chain ---------------------------------------------------------------------------

    async def _rpc(self, method: str, *params: Any) -> Any:
        self._rpc_id += 1
        body = self.rpc_body(method, list(params), self._rpc_id)
        try:
            reply = await self._http.post(self.config.rpc_url, json=body)
            doc = reply.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ChainUnavailable(f"{method}: {self.config.rpc_url} did not answer") from exc
        return self.rpc_result(doc, method)

    async def _rpc_batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        return [
            self.rpc_result(doc, method)
            for doc, (method, _) in zip(await self._rpc_batch_docs(calls), calls, strict=True)
        ]

    async def _rpc_batch_docs(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """The reply document of each call of one batch, in order (each one's error its own:
        a node accepts or refuses each call of a batch apart)."""
        bodies = []
        for method, params in calls:
            self._rpc_id += 1
            bodies.append(self.rpc_body(method, params, self._rpc_id))
        try:
            reply = await self._http.post(self.config.rpc_url, json=bodies)
            docs = reply.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ChainUnavailable(f"{self.config.rpc_url} did not answer a batch") from exc
        if not isinstance(docs, list) or len(docs) != len(bodies):
            raise ChainUnavailable("the node answered a batch with the wrong number of replies")
        by_id = {d.get("id"): d for d in docs if isinstance(d, dict)}
        return [by_id.get(body["id"]) for body in bodies]

    async def head(self) -> int:
        """The chain head's block number, as this client's node reports it."""
        head = int(await self._rpc("eth_blockNumber"), 16)
        self.remember_head(head, time.monotonic())
        return head

    async def fresh_head(self) -> int:
        """The head from a read at most ``SHARED_HEAD_S`` old: the waits that poll the head
        share reads instead of each asking the node."""
        shared = self.shared_head(time.monotonic())
        if shared is not None:
            return shared
        async with self._head_lock:  # waits woken together: one reads, the rest reuse it
            shared = self.shared_head(time.monotonic())
            return shared if shared is not None else await self.head()

    async def is_final(self, number: int) -> bool:
        """Whether block ``number`` has ``finality`` blocks on top: no worker applies a block
        before, so an outcome query sooner only costs the workers an answer."""
        if self.known_final(number):
            return True
        return await self.fresh_head() >= number + self.config.finality

    async def _next_block(self, after: int, deadline: float) -> int:
        """The head once it passes ``after`` (or at ``deadline``): receipts wait for a block."""
        while (head := await self.fresh_head()) <= after and time.monotonic() < deadline:
            await asyncio.sleep(C.POLL_INTERVAL_S)
        return head

    async def recent_head(self) -> int:
        """The head, reused for ``head_cache_s`` (queries call this instead of ``head``)."""
        cached = self.cached_head(time.monotonic())
        return cached if cached is not None else await self.head()

    async def block_hash(self, number: int) -> bytes | None:
        """The hash of block ``number`` on this client's chain, or None if there is none."""
        block = await self._rpc("eth_getBlockByNumber", hex(number), False)
        return None if not block else bytes.fromhex(str(block["hash"])[2:])

    async def chain_view(self, number: int) -> ChainView:
        """Our head and our hash for block ``number`` (final hashes and the head are cached)."""
        now = time.monotonic()
        cached = self.cached_view(number, now)
        if cached is not None:
            return cached
        head, block = await self._rpc_batch(
            [("eth_blockNumber", []), ("eth_getBlockByNumber", [hex(number), False])]
        )
        view = ChainView(
            head=int(head, 16),
            block_hash=None if not block else bytes.fromhex(str(block["hash"])[2:]),
        )
        self.remember_view(view, number, now)
        return view

    async def registry_view(self, fn: str, *args: Any) -> Any:
        """Call a view function of the Registry (e.g. ``workers``, ``clusters``)."""
        result = await self._rpc("eth_call", self.registry_call(fn, *args), "latest")
        return self.registry_decode(fn, result)

    async def bus_views(self, calls: list[tuple[str, tuple[Any, ...]]]) -> list[Any]:
        """Several Bus view calls in one JSON-RPC batch (one round trip)."""
        if not calls:
            return []
        results = await self._rpc_batch(
            [
                ("eth_call", [self.registry_call(fn, *args, contract="Bus"), "latest"])
                for fn, args in calls
            ]
        )
        return [
            self.registry_decode(fn, r, contract="Bus")
            for (fn, _), r in zip(calls, results, strict=True)
        ]

    async def bus_view(self, fn: str, *args: Any) -> Any:
        """Call a view function of the Bus (e.g. ``contracts``, ``deploy_closed``)."""
        call = self.registry_call(fn, *args, contract="Bus")
        return self.registry_decode(fn, await self._rpc("eth_call", call, "latest"), contract="Bus")

    async def registry_views(self, calls: list[tuple[str, tuple[Any, ...]]]) -> list[Any]:
        """Several Registry view calls in one JSON-RPC batch (one round trip)."""
        results = await self._rpc_batch(
            [("eth_call", [self.registry_call(fn, *args), "latest"]) for fn, args in calls]
        )
        return [self.registry_decode(fn, r) for (fn, _), r in zip(calls, results, strict=True)]

    async def registry_record(self, kind: type[Record], key: Any) -> Record:
        """One Registry struct, typed: ``registry_record(WorkerRecord, address)``.

        Raises:
            ChainUnavailable: the node failed or answered something that is not the struct.
        """
        if kind.contract == "Bus":
            return kind.from_getter(await self.bus_view(kind.getter, key))
        return kind.from_getter(await self.registry_view(kind.getter, key))

    async def logs(
        self,
        contract: str,
        event: type[Any],
        from_block: int | None = None,
        *,
        where: Sequence[bytes | Sequence[bytes]] = (),
    ) -> list[Any]:
        """Decoded events of one kind since genesis (or ``from_block``), in block order.
        ``where``: values of the event's indexed fields, in order (a list matches any of
        its values), filtered by the node rather than read and dropped here."""
        address = self.config.registry if contract == "Registry" else self.config.bus
        docs = await self._rpc(
            "eth_getLogs",
            {
                "address": address.hex,
                "fromBlock": hex(self.config.genesis_block if from_block is None else from_block),
                "toBlock": "latest",
                "topics": [self.topic_of(event), *(_topic(value) for value in where)],
            },
        )
        return [e for e in self.decode_logs(list(docs or [])) if isinstance(e, event)]

    async def contract_key(self, contract_id: bytes, *, refresh: bool = False) -> ContractKey:
        """The contract's current public key and epoch, from the Registry.

        Raises:
            ContractNotFound: unknown id. WorkerUnavailable: the contract has no key yet.
        """
        if not refresh:
            cached = self.cached_key(contract_id)
            if cached is not None:
                return cached
        return await self._key_of(
            contract_id, await self.registry_record(ContractRecord, contract_id)
        )

    async def _key_of(self, contract_id: bytes, record: ContractRecord) -> ContractKey:
        """``contract_key`` from its ``Bus.contracts`` record, read just now."""
        if not record.exists:
            return self.parse_contract_key(contract_id, record, b"")  # raises ContractNotFound
        if record.key_epoch == 0:
            raise WorkerUnavailable("the contract has no key yet (its cluster is still keying it)")
        public_key = self.known_public_key(contract_id, record)
        if public_key is None:
            public_key = await self.published_key_of(
                ContractKeySet, contract_id, record.key_block, record.key_epoch, record.key_hash
            )
        return self.parse_contract_key(contract_id, record, public_key)

    async def published_key_of(
        self,
        event: type[ClusterKeySet | ContractKeySet],
        subject: bytes,
        block: int,
        epoch: int,
        key_hash: bytes,
    ) -> bytes:
        """A cluster or contract public key: the Registry stores its hash and the block of
        its key event; the key comes from that event's log, checked against the hash."""
        docs = await self._rpc("eth_getLogs", self.key_filter(event, subject, block))
        return self.published_key(list(docs or []), epoch, key_hash)

    async def _fees(self) -> int:
        if self._base_fee is None:
            block = await self._rpc("eth_getBlockByNumber", "latest", False)
            self._base_fee = int(block.get("baseFeePerGas") or "0x0", 16)
        return self._base_fee

    def _send_lock(self, wallet: Wallet) -> asyncio.Lock:
        """One send at a time per wallet: nonces must reach the node in order."""
        return self._send_locks.setdefault(wallet.address.raw, asyncio.Lock())

    async def _take_nonces(self, wallet: Wallet, count: int) -> int:
        """The first of ``count`` consecutive nonces of ``wallet``, all taken (under its send
        lock): the cached next one, else the node's pending count."""
        first = self.tx_nonce(wallet, None, count)
        if first is None:
            pending = await self._rpc("eth_getTransactionCount", wallet.address.hex, "pending")
            first = self.tx_nonce(wallet, int(pending, 16), count)
        assert first is not None
        return first

    async def transact(
        self,
        wallet: Wallet,
        to: Address | None,
        data: bytes,
        *,
        value: int = 0,
        timeout: float = C.DEFAULT_WAIT_S,
    ) -> dict[str, Any]:
        """Sign, send and wait for one transaction (``to`` None: a contract creation); returns
        the receipt document.

        Raises:
            TransactionReverted: the estimate or the mined transaction reverted.
            ChainUnavailable / Timeout: the node failed or did not mine it in time.
        """
        call: dict[str, Any] = {
            "from": wallet.address.hex,
            "data": "0x" + data.hex(),
            "value": hex(value),
        }
        if to is not None:
            call["to"] = to.hex
        gas = int(await self._rpc("eth_estimateGas", call), 16)
        base_fee = await self._fees()
        async with self._send_lock(wallet):
            nonce = await self._take_nonces(wallet, 1)
            raw, tx_hash = self.sign_transaction(
                wallet, to=to, data=data, nonce=nonce, gas=gas, base_fee=base_fee, value=value
            )
            try:
                await self._rpc("eth_sendRawTransaction", "0x" + raw.hex())
            except (ChainUnavailable, TransactionReverted):
                self.reset_tx_nonce(wallet)
                raise
        deadline = time.monotonic() + timeout
        while True:
            receipt = await self._rpc("eth_getTransactionReceipt", "0x" + tx_hash.hex())
            if receipt:
                break
            if time.monotonic() > deadline:
                self.reset_tx_nonce(wallet)
                raise Timeout(f"transaction 0x{tx_hash.hex()} was not mined in {timeout:.0f} s")
            await asyncio.sleep(C.POLL_INTERVAL_S)
        if int(receipt["status"], 16) != 1:
            raise TransactionReverted("the transaction reverted on chain", reason="reverted")
        return dict(receipt)

    async def transact_many(
        self,
        wallet: Wallet,
        to: Address,
        calls: Sequence[bytes],
        *,
        timeout: float = C.DEFAULT_WAIT_S,
        estimate: bytes | None = None,
        values: Sequence[int] | None = None,
    ) -> list[dict[str, Any]]:
        """Sign and send one transaction per call in ``calls``, with consecutive nonces, in
        JSON-RPC batches of ``MAX_RPC_BATCH``, and wait for every receipt (polled in batches);
        the receipts in order. The gas is estimated once, for ``estimate`` (call data that
        costs at least what each call costs) or else for the longest call: the calls are of
        one kind (``push_command``s) and differ in their data only. ``values``: the wei each
        call sends (none by default); the estimate sends the largest.

        Raises:
            TransactionReverted / ChainUnavailable: the estimate failed, or the node refused a
                transaction (``details["sent_tx_hashes"]``: those it took, which stay sent), or
                a mined one reverted (``details["tx_hash"]``).
            Timeout: the node did not mine them all in time.
        """
        if not calls:
            return []
        paid = list(values) if values is not None else [0] * len(calls)
        if len(paid) != len(calls):
            raise ValueError("values must name the wei of each call")
        probe: dict[str, Any] = {
            "from": wallet.address.hex,
            "to": to.hex,
            "data": "0x" + (estimate if estimate is not None else max(calls, key=len)).hex(),
            "value": hex(max(paid)),
        }
        gas = int(await self._rpc("eth_estimateGas", probe), 16)
        base_fee = await self._fees()
        async with self._send_lock(wallet):
            first = await self._take_nonces(wallet, len(calls))
            signed = [
                self.sign_transaction(
                    wallet,
                    to=to,
                    data=data,
                    nonce=first + i,
                    gas=gas,
                    base_fee=base_fee,
                    value=paid[i],
                )
                for i, data in enumerate(calls)
            ]
            refused: VeilnetError | None = None
            accepted: list[str] = []
            try:
                for start in range(0, len(signed), C.MAX_RPC_BATCH):
                    chunk = signed[start : start + C.MAX_RPC_BATCH]
                    docs = await self._rpc_batch_docs(
                        [("eth_sendRawTransaction", ["0x" + raw.hex()]) for raw, _ in chunk]
                    )
                    for doc, (_, tx_hash) in zip(docs, chunk, strict=True):
                        try:
                            self.rpc_result(doc, "eth_sendRawTransaction")
                            accepted.append("0x" + tx_hash.hex())
                        except (ChainUnavailable, TransactionReverted) as exc:
                            refused = refused or exc
                    if refused is not None:
                        break
            except ChainUnavailable as exc:
                refused = exc
            if refused is not None:
                # The node takes or refuses each transaction apart: those it took stay sent
                # (a refused one leaves a nonce gap that holds back the later ones).
                self.reset_tx_nonce(wallet)
                raise type(refused)(
                    f"{refused.message} ({len(accepted)} of {len(signed)} transactions were "
                    "sent; their hashes are in sent_tx_hashes)",
                    **refused.details,
                    sent_tx_hashes=accepted,
                )
        hashes = ["0x" + tx_hash.hex() for _, tx_hash in signed]
        receipts: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout
        whole = False
        seen = await self.fresh_head()
        while True:
            waiting = [h for h in hashes if h not in receipts]
            # One wallet's transactions are mined in nonce order: once the last one waiting is
            # mined, so are all before it. So a round asks the node for that one receipt, and
            # once it is mined the next round asks for the rest at once: no empty answers for
            # the hundreds still in the pool.
            waiting = waiting[: C.MAX_RPC_BATCH] if whole else waiting[-1:]
            found = await self._rpc_batch([("eth_getTransactionReceipt", [h]) for h in waiting])
            progressed = any(found)
            whole = progressed  # else one was replaced (never mined): poll the last again
            for sent_hash, receipt in zip(waiting, found, strict=True):
                if receipt:
                    if int(receipt["status"], 16) != 1:
                        raise TransactionReverted(
                            "a transaction of the batch reverted on chain",
                            reason="reverted",
                            tx_hash=sent_hash,
                        )
                    receipts[sent_hash] = dict(receipt)
            if len(receipts) == len(hashes):
                return [receipts[h] for h in hashes]
            if time.monotonic() > deadline:
                self.reset_tx_nonce(wallet)
                raise Timeout(
                    f"{len(hashes) - len(receipts)} transactions were not mined in {timeout:.0f} s"
                )
            if not progressed:  # else the next hashes may be mined already: no wait
                seen = await self._next_block(seen, deadline)

    # ---- agents --------------------------------------------------------------------------

    async def deploy(
        self,
        path: str | os.PathLike[str],
        *,
        init: Any = None,
        cluster: bytes | str | None = None,
        wallet: Wallet | bytes | str | None = None,
        salt: bytes | None = None,
        public_init: bool = False,
        check: AgentCheck | None = None,
        timeout: float = C.DEFAULT_WAIT_S,
    ) -> AsyncAgent:
        """Deploy an agent (``.js`` or ``.py``) and wait until its key is on chain.

        Args:
            path: the agent's source file.
            init: JSON-able arguments for the agent's ``init``.
            cluster: cluster id (hex or bytes); defaults to the network's first cluster.
            wallet: the owner (defaults to the client's wallet).
            salt: 32 bytes making the contract id unique (random by default).
            public_init: publish ``init`` in the clear in ``ContractDeployed``; by default it
                is sealed to the cluster key (only the cluster's workers read it).
            check: compiles the agent and runs its ``init`` locally, as a worker will, before
                anything is sent: pass ``veilnet.sandbox.check_agent`` (about a second; what
                ``veil agent deploy`` does). A syntax error or a failing ``init`` is then
                ``AgentInvalid``.

        Raises:
            AgentInvalid: not a .js or .py file, or (with ``check``) it does not compile or
                its ``init`` fails; nothing was sent.
            RequestTooLarge: the code or init arguments exceed the Registry's limits.
            TransactionReverted, ChainUnavailable, Timeout.
        """
        owner = self.wallet_for(wallet)
        file = Path(path)
        try:
            source = file.read_bytes()
            language = language_of(file)
        except OSError as exc:
            raise NetworkConfigInvalid(f"cannot read {file}: {exc.strerror}") from exc
        if check is not None:
            failed = check(language, source, init)
            if failed is not None:
                raise AgentInvalid(f"{file.name} {failed[1]}", sandbox_code=failed[0])
        code = proto.pack_code(language, source)
        if len(code) > C.MAX_AGENT_CODE:
            raise RequestTooLarge(
                f"{file.name} packs to {len(code)} bytes (max {C.MAX_AGENT_CODE})"
            )
        cluster_id = self._cluster(cluster)
        if not public_init and init is not None:
            target = await self.registry_record(ClusterRecord, cluster_id)
            init_args = self.seal_init(
                init,
                cluster=cluster_id,
                cluster_epoch=target.key_epoch,
                cluster_key=await self.published_key_of(
                    ClusterKeySet, cluster_id, target.key_block, target.key_epoch, target.key_hash
                ),
            )
        else:
            init_args = self.pack_init(init)
        if len(init_args) > C.MAX_INIT_ARGS:
            raise RequestTooLarge(
                f"init arguments are {len(init_args)} bytes (max {C.MAX_INIT_ARGS})"
            )
        salt = salt if salt is not None else os.urandom(32)
        data = self.bus.encode("deploy_contract", salt, cluster_id, ZERO_ADDRESS, code, init_args)
        await self.transact(owner, self.config.bus, data, timeout=timeout)
        contract_id = bytes(await self.bus_view("contract_id_for", owner.address, salt))
        agent = AsyncAgent(self, contract_id)
        await agent.wait_keyed(timeout=timeout)
        return agent

    def _cluster(self, cluster: bytes | str | None) -> bytes:
        if cluster is None:
            if not self.config.clusters:
                raise NetworkConfigInvalid("network.json names no cluster; pass cluster=")
            return self.config.clusters[0]
        if isinstance(cluster, str):
            text = cluster.removeprefix("0x")
            try:
                raw = bytes.fromhex(text)
            except ValueError:
                raw = cluster.encode()
            return raw.ljust(32, b"\x00")[:32] if len(raw) <= 32 else raw[:32]
        return bytes(cluster).ljust(32, b"\x00")

    async def _command_terms(self, contract_id: bytes) -> tuple[ContractKey, int]:
        """What a command is sent under: the contract's key, read afresh, and the Bus's
        ``command_fee``, both in one round trip (and the key's event when it is new here).

        Raises:
            WorkerRefused: the contract is paused. As ``contract_key`` otherwise.
        """
        raw, fee = await self.bus_views(
            [(ContractRecord.getter, (contract_id,)), ("command_fee", ())]
        )
        key = await self._key_of(contract_id, ContractRecord.from_getter(raw))
        if key.paused:
            raise WorkerRefused("the contract is paused", worker_code=WORKER_CONTRACT_PAUSED)
        return key, int(fee)

    async def send_command(
        self, contract_id: bytes, kind: str, body: bytes, *, wallet: Wallet, timeout: float
    ) -> CommandResult:
        key, fee = await self._command_terms(contract_id)
        payload = self.seal_command(key, wallet, kind, body)
        data = self.bus.encode("push_command", contract_id, payload)
        receipt = await self.transact(wallet, self.config.bus, data, value=fee, timeout=timeout)
        return self.sent_command(contract_id, receipt)

    async def send_commands(
        self,
        contract_id: bytes,
        kind: str,
        bodies: Sequence[bytes],
        *,
        wallet: Wallet,
        timeout: float,
    ) -> list[CommandResult]:
        """``send_command`` for many: one key and fee lookup, then ``transact_many`` of
        ``command_calls`` (``push_commands`` of up to ``MAX_COMMAND_BATCH`` where every
        sealed command fits ``MAX_BATCHED_PAYLOAD``)."""
        key, fee = await self._command_terms(contract_id)
        payloads = [self.seal_command(key, wallet, kind, body) for body in bodies]
        calls, estimate, counts = self.command_calls(contract_id, payloads)
        receipts = await self.transact_many(
            wallet,
            self.config.bus,
            calls,
            timeout=timeout,
            estimate=estimate,
            values=[fee * count for count in counts],
        )
        return [sent for receipt in receipts for sent in self.sent_commands(contract_id, receipt)]

    async def wait_outcome(
        self, sent: CommandResult, *, wallet: Wallet, timeout: float, raise_on_error: bool = True
    ) -> CommandResult:
        """Poll verified ``outcome`` queries until the command is applied."""
        deadline = time.monotonic() + timeout
        body = encode(sent.seq)
        while True:
            if not await self.is_final(sent.block_number):
                if time.monotonic() > deadline:
                    raise Timeout(f"command {sent.seq} was not applied within {timeout:.0f} s")
                await asyncio.sleep(C.OUTCOME_POLL_S)
                continue
            opened = await self.ask(sent.contract_id, "outcome", body, wallet=wallet)
            outcome = self.outcome(opened)
            if outcome.is_applied:
                if raise_on_error and not outcome.ok:
                    raise agent_failure(outcome.error)
                return self.command_result(
                    sent, outcome, self.query_result(opened, raise_on_error=False)
                )
            if time.monotonic() > deadline:
                raise Timeout(f"command {sent.seq} was not applied within {timeout:.0f} s")
            await asyncio.sleep(C.OUTCOME_POLL_S)

    async def wait_outcomes(
        self, sent: Sequence[CommandResult], *, wallet: Wallet, timeout: float
    ) -> list[CommandResult]:
        """``wait_outcome`` for many commands of one wallet: each verified query asks for up
        to ``MAX_OUTCOMES_PER_QUERY`` of them (per contract), until all are applied. Never
        raises for an agent's refusal: each result's ``ok`` and ``error`` say how it went.
        Workers that fall behind under the load (``WorkerUnavailable``: catching up) are
        asked again until ``timeout``; a command on chain is applied once they catch up."""
        done: dict[int, CommandResult] = {}
        deadline = time.monotonic() + timeout
        unavailable: WorkerUnavailable | None = None
        while True:
            waiting: dict[bytes, list[int]] = {}
            for index, command in enumerate(sent):
                if index not in done:
                    waiting.setdefault(command.contract_id, []).append(index)
            first = min((c.block_number for i, c in enumerate(sent) if i not in done), default=0)
            final = not waiting or await self.is_final(first)  # the first block waited on
            for contract_id, indexes in waiting.items() if final else ():
                for start in range(0, len(indexes), limits.MAX_OUTCOMES_PER_QUERY):
                    chunk = indexes[start : start + limits.MAX_OUTCOMES_PER_QUERY]
                    body = encode([sent[i].seq for i in chunk])
                    try:
                        opened = await self.ask(contract_id, "outcome", body, wallet=wallet)
                    except WorkerUnavailable as exc:
                        unavailable = exc
                        continue
                    for index, outcome in zip(
                        chunk, self.outcomes(opened, len(chunk)), strict=True
                    ):
                        if outcome.is_applied:
                            proof = self.outcome_proof(opened, outcome)
                            done[index] = self.command_result(sent[index], outcome, proof)
            if len(done) == len(sent):
                return [done[i] for i in range(len(sent))]
            if time.monotonic() > deadline:
                last = "" if unavailable is None else f" (last: {unavailable.message})"
                raise Timeout(
                    f"{len(sent) - len(done)} commands were not applied within {timeout:.0f} s"
                    + last
                )
            await asyncio.sleep(C.OUTCOME_POLL_S)

    # ---- queries -------------------------------------------------------------------------

    async def _workers_for(self, cluster: bytes) -> list[tuple[Address, str]]:
        """The cluster's workers with an API URL: those network.json lists first, then the
        other members, at the URL their registration published on chain."""
        found = []
        for address, url in self.config.workers.items():
            known = self._worker_clusters.get(address.raw)
            if known is None:
                record = await self.registry_record(WorkerRecord, address)
                known = record.cluster
                if record.in_cluster:
                    self._worker_clusters[address.raw] = known
            if known == cluster:
                found.append((address, url))
        listed = {address.raw for address, _ in found}
        for raw, url in (await self.discover_workers(cluster)).items():
            if raw not in listed:
                found.append((Address(raw), url))
        if not found:
            raise WorkerUnavailable(
                f"no worker of cluster 0x{cluster.hex()} has an API address: network.json "
                "lists none and no member registered one on chain",
                cluster=cluster.hex(),
            )
        return found

    async def discover_workers(
        self, cluster: bytes | str | None = None, *, refresh: bool = False
    ) -> dict[bytes, str]:
        """The cluster's members (address → API URL) as the chain names them: each member's
        newest ``WorkerRegistered`` carries the URL it serves at (members that published
        none are left out). Cached for ``DISCOVERY_TTL_S``. A URL is only where to ask:
        every answer is still checked against the worker's registration and signature."""
        cluster_id = self._cluster(cluster)
        now = time.monotonic()
        cached = None if refresh else self.fresh_discovery(cluster_id, now)
        if cached is not None:
            return cached
        members = await self.cluster_members(cluster_id)
        urls = await self.registered_urls(members)
        for member in members:
            self._worker_clusters[Address.parse(member).raw] = cluster_id
        self._discovered[cluster_id] = (now, urls)
        return urls

    async def registered_urls(self, workers: Sequence[str | Address]) -> dict[bytes, str]:
        """Worker address → the API URL its newest registration published (``WorkerRegistered``;
        workers that published none, or one no client could dial, are left out)."""
        if not workers:
            return {}
        addresses = [w if isinstance(w, Address) else Address.parse(w) for w in workers]
        registered = await self.logs(
            "Registry", WorkerRegistered, where=[[a.raw for a in addresses]]
        )
        newest = {e.worker.raw: e.api_url for e in registered}  # block order: newest last
        return {raw: url for raw, url in newest.items() if _dialable(url)}

    async def _post_query(self, url: str, request: bytes) -> bytes:
        """POST a sealed query; a 429 is waited out (as the worker asks) while the client's
        ``rate_limit_wait_s`` lasts, then raised as RateLimited."""
        waited = 0.0
        while True:
            try:
                reply = await self._http.post(
                    url.rstrip("/") + "/v1/query",
                    content=request,
                    headers={"content-type": "application/octet-stream"},
                )
            except httpx.HTTPError as exc:
                raise WorkerUnavailable(f"{url} did not answer") from exc
            if reply.status_code == 200:
                return reply.content
            error = self.worker_error(reply.status_code, reply.content, url)
            wait = error.details.get("retry_after_s") if isinstance(error, RateLimited) else None
            if wait is None or waited + wait > self.rate_limit_wait_s:
                raise error
            await asyncio.sleep(wait)
            waited += wait

    async def ask(
        self,
        contract_id: bytes,
        kind: str,
        body: bytes,
        *,
        wallet: Wallet | None = None,
        worker: Address | str | None = None,
    ) -> OpenedResponse:
        """Send one query and run every check on the answer (see ``veilnet.sdk._base``).

        Tries the cluster's workers in turn while they are unavailable; a key epoch the workers
        no longer accept makes it re-read the contract key once.
        """
        if isinstance(worker, str):
            worker = Address.parse(worker)  # KeyInvalid (a typed error) for a malformed one
        retried_key = False
        floor = self.seen_at(contract_id)
        deadline = time.monotonic() + C.CONSISTENCY_WAIT_S
        while True:
            key = await self.contract_key(contract_id)
            head = await self.recent_head()
            request_id = os.urandom(C.REQUEST_ID_BYTES)
            workers = await self._workers_for(key.cluster)
            if worker is not None:
                workers = [w for w in workers if w[0] == worker] or [
                    (worker, self.worker_url(worker) or "")
                ]
            start = request_id[0] % len(workers)
            failures: list[str] = []
            lagging = False
            for address, url in workers[start:] + workers[:start]:
                try:
                    pending, raw = await self._send_query(
                        key,
                        kind=kind,
                        body=body,
                        head=head,
                        wallet=wallet,
                        request_id=request_id,
                        worker=address,
                        url=url,
                    )
                except WorkerUnavailable as exc:
                    failures.append(exc.message)
                    continue
                except WorkerRefused as exc:
                    if exc.worker_code == WORKER_KEY_EPOCH_EXPIRED and not retried_key:
                        break
                    raise
                opened = await self.check(pending, raw, url=url, asked=address)
                if opened.response.block_number < floor:
                    # A replica behind what this client already saw: ask another, or wait.
                    lagging = True
                    failures.append(f"{opened.worker.hex} is behind block {floor}")
                    continue
                if kind == "call" or self.outcome(opened).is_applied:
                    self.note_seen(contract_id, opened.response.block_number)
                return opened
            else:
                if lagging and time.monotonic() < deadline:
                    await asyncio.sleep(C.POLL_INTERVAL_S)
                    continue
                raise WorkerUnavailable(
                    "no worker of the cluster answered: " + "; ".join(failures[:3])
                )
            retried_key = True
            self.forget_key(contract_id)

    async def worker_boot(self, worker: Address, url: str) -> bytes:
        """The boot id queries to ``worker`` must name: read once from its ``/v1/health``, then
        kept until a refusal says the worker restarted."""
        known = self.known_boot(worker)
        if known is not None:
            return known
        try:
            reply = await self._http.get(url.rstrip("/") + "/v1/health")
            doc = reply.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise WorkerUnavailable(f"{url} did not answer") from exc
        boot = self.parse_boot_id(doc.get("boot_id") if isinstance(doc, dict) else None)
        if boot is None:
            raise WorkerUnavailable(f"{url} has not booted its core yet")
        self.note_boot(worker, boot)
        return boot

    async def _send_query(
        self,
        key: ContractKey,
        *,
        kind: str,
        body: bytes,
        head: int,
        wallet: Wallet | None,
        request_id: bytes,
        worker: Address,
        url: str,
    ) -> tuple[PendingQuery, bytes]:
        """Seal a query for the worker's current boot and send it; when the worker answers that
        it restarted (``runtime_query_stale``), seal it once more for the boot id it names."""
        boot = await self.worker_boot(worker, url)
        resealed = False
        while True:
            pending = self.build_query(
                key,
                kind=kind,
                body=body,
                head=head,
                worker=worker,
                boot_id=boot,
                wallet=wallet,
                request_id=request_id,
            )
            try:
                return pending, await self._post_query(url, pending.request)
            except WorkerRefused as exc:
                fresh = self.parse_boot_id(exc.details.get("boot_id"))
                if exc.worker_code != WORKER_QUERY_STALE or fresh is None or resealed:
                    raise
                self.note_boot(worker, fresh)
                boot, resealed = fresh, True

    async def check(
        self, pending: Any, raw: bytes, *, url: str | None, asked: Address | None
    ) -> OpenedResponse:
        """Verify a worker's raw answer to ``pending``; returns it opened (plaintext released)."""
        opened = self.open(pending, raw)
        known = self.worker_url(opened.worker)
        await self.verify_worker(
            opened.worker,
            url=known or (url if asked is None or asked == opened.worker else None),
            cluster=pending.cluster,
        )
        view = await self.chain_view(opened.response.block_number)
        self.check_block(opened.response, view)
        height = opened.response.block_number
        if self.verdict_due(pending.cluster, height, view.head):
            verdict = await self.registry_view("commitment_verdict", pending.cluster, height)
            self.note_verdict(pending.cluster, height, bytes(verdict), view.head)
        self.check_commitment(opened.response, pending.cluster)
        return opened

    async def query(
        self,
        contract_id: bytes,
        msg: Any,
        *,
        wallet: Wallet | None = None,
        worker: Address | str | None = None,
    ) -> QueryResult:
        """Call the agent's ``query`` and return its verified answer.

        Raises:
            AgentFailed: the agent raised. ResponseInvalid, WorkerUnverified, UnknownBlock,
            StaleBlock: the answer failed a check. WorkerRefused, WorkerUnavailable, RateLimited.
        """
        opened = await self.ask(
            contract_id, "call", self.call_body(msg), wallet=wallet, worker=worker
        )
        return self.query_result(opened)

    # ---- workers -------------------------------------------------------------------------

    async def verify_worker(
        self,
        address: Address | str,
        *,
        url: str | None = None,
        cluster: bytes | None = None,
        refresh: bool = False,
    ) -> WorkerVerification:
        """Check that ``address`` is a registered, endorsed worker with an allowed measurement,
        and that it attests freshly (quote over its address and our nonce) under the network's
        root. The registration and endorsement are read again at every new head this client
        sees (a de-endorsed, removed or revoked worker is refused from the next block on); only
        the attestation of one registration is reused, for ``WORKER_VERIFICATION_TTL_S``.

        Raises:
            WorkerUnverified: any check failed. ChainUnavailable: the registry could not be read.
        """
        worker = address if isinstance(address, Address) else Address.parse(address)
        now = time.monotonic()
        head = await self.recent_head()
        known = None if refresh else self.cached_registration(worker, head)
        if known is None:
            # The measurement is asked about in the same round trip, as the one the worker had
            # at the last head (it changes only with a new registration); if it changed, the
            # new one is asked about apart: the answer is always for the record just read.
            guess = self.last_measurement(worker)
            calls: list[tuple[str, tuple[Any, ...]]] = [
                (WorkerRecord.getter, (worker,)),
                ("endorsed_until", (worker,)),
            ]
            if guess is not None:
                calls.append(("allowed_measurements", (guess,)))
            values = await self.registry_views(calls)
            record = WorkerRecord.from_getter(values[0])
            until = int(values[1])
            if guess is not None and record.measurement == guess:
                allowed = bool(values[2])
            else:
                allowed = bool(await self.registry_view("allowed_measurements", record.measurement))
            self.remember_registration(worker, head, record, allowed, until)
        else:
            record, allowed, until = known
        self.check_registration(
            worker, record, measurement_allowed=allowed, cluster=cluster, endorsed_until=until
        )
        if not refresh:
            cached = self.cached_verification(worker, now, record.quote_hash)
            if cached is not None and cached.cluster == record.cluster:
                return cached
        url = url or self.worker_url(worker)
        if not url:
            raise WorkerUnverified(
                f"no API address known for worker {worker.hex}", worker=worker.hex
            )
        nonce = os.urandom(C.ATTESTATION_NONCE_BYTES)
        try:
            reply = await self._http.get(
                url.rstrip("/") + "/v1/attestation", params={"nonce": nonce.hex()}
            )
            if reply.status_code != 200 or len(reply.content) > C.MAX_ATTESTATION_RESPONSE:
                raise WorkerUnverified(
                    f"{worker.hex} did not attest (HTTP {reply.status_code})", worker=worker.hex
                )
            document = reply.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise WorkerUnverified(f"{worker.hex} did not attest", worker=worker.hex) from exc
        verification = self.verify_attestation_at(
            worker,
            document,
            nonce=nonce,
            measurement=record.measurement,
            confidence=record.confidence,
            cluster=record.cluster,
            url=url,
            at=int(time.time()),
        )
        self.remember_verification(verification, now, record.quote_hash)
        return verification

    async def worker_health(self, url: str) -> dict[str, Any]:
        """A worker's ``/v1/health`` and ``/v1/info`` (empty dict when it does not answer)."""
        try:
            health = await self._http.get(url.rstrip("/") + "/v1/health")
            info = await self._http.get(url.rstrip("/") + "/v1/info")
            return {"health": health.json(), "info": info.json() if info.status_code == 200 else {}}
        except (httpx.HTTPError, ValueError):
            return {}

    # ---- network-wide views ----------------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        """Chain head, gatekeepers, master key rotation, clusters, workers, contracts."""
        head = await self.head()
        added = await self.logs("Registry", GatekeeperAdded)
        removed = {e.gatekeeper.raw for e in await self.logs("Registry", GatekeeperRemoved)}
        gatekeepers = [e.gatekeeper.hex for e in added if e.gatekeeper.raw not in removed]
        rotation = int(await self.registry_view("rotation_counter"))
        locked = bool(await self.registry_view("rotation_locked"))
        master = Address.parse(str(await self.registry_view("master_key_address")))
        clusters = []
        for event in await self.logs("Registry", ClusterCreated):
            cluster = await self.registry_record(ClusterRecord, event.cluster_id)
            clusters.append(
                {
                    "id": "0x" + event.cluster_id.hex(),
                    "epoch": cluster.key_epoch,
                    "workers": cluster.worker_count,
                }
            )
        workers = []
        seen: set[bytes] = set()
        registered = await self.logs("Registry", WorkerRegistered)
        newest = {e.worker.raw: e.api_url for e in registered}  # block order: newest last
        published = {raw: url for raw, url in newest.items() if _dialable(url)}
        for event in registered:
            if event.worker.raw in seen:
                continue
            seen.add(event.worker.raw)
            record = await self.registry_record(WorkerRecord, event.worker)
            url = self.worker_url(event.worker) or published.get(event.worker.raw)
            entry: dict[str, Any] = {
                "address": event.worker.hex,
                "gatekeeper": event.worker.hex in gatekeepers,
                "confidence": record.confidence,
                "endorsed_until": int(await self.registry_view("endorsed_until", event.worker)),
                "flagged": bool(await self.registry_view("flagged", event.worker)),
                "diverged_at": int(await self.registry_view("diverged_at", event.worker)) or None,
                "last_heartbeat": int(
                    (await self.registry_view("last_heartbeat", event.worker))[0]
                ),
                "cluster": "0x" + record.cluster.hex() if record.in_cluster else None,
                "url": url,
                "online": False,
                "health": None,
                "last_applied_block": None,
                "rejected": None,
                "attested": False,
                "attestation_error": None,
            }
            if url:
                live = await self.worker_health(url)
                health = live.get("health") or {}
                entry["online"] = health.get("status") == "ok"
                entry["last_applied_block"] = health.get("applied_block")
                entry["rejected"] = health.get("rejected")
                entry["health"] = health.get("status")
            try:
                await self.verify_worker(event.worker, refresh=True)
                entry["attested"] = True
            except WorkerUnverified as exc:
                entry["attestation_error"] = exc.message
            workers.append(entry)
        divergences = [
            {
                "cluster": "0x" + event.cluster_id.hex(),
                "height": event.height,
                "worker": event.worker.hex,
                "commitment": "0x" + event.commitment.hex(),
                "majority": "0x" + event.majority.hex() if any(event.majority) else None,
            }
            for event in await self.logs("Registry", ReplicaDiverged)
        ]
        contracts = []
        for event in await self.logs("Bus", ContractDeployed):
            contract = await self.registry_record(ContractRecord, event.contract_id)
            contracts.append(
                {
                    "id": "0x" + event.contract_id.hex(),
                    "cluster": "0x" + contract.cluster.hex(),
                    "owner": contract.owner.hex,
                    "epoch": contract.key_epoch,
                    "paused": contract.paused,
                    "language": _language_of_code(event.code),
                }
            )
        return {
            "chain_id": self.config.chain_id,
            "rpc_url": self.config.rpc_url,
            "head": head,
            "gatekeepers": gatekeepers,
            "master_key": {
                "address": None if master == ZERO_ADDRESS else master.hex,
                "rotation": rotation,
                "rotation_locked": locked,
            },
            "clusters": clusters,
            "workers": workers,
            "divergences": divergences,
            "contracts": contracts,
            "insecure_dev_tee": self.insecure_dev_tee,
        }

    async def audit(self, *, pccs: str | None = None) -> list[AuditEntry]:
        """Re-verify every quote recorded on chain, as of now: each ``WorkerRegistered`` and
        each ``WorkerReattested`` (the fresh quote of the registration before it).

        With ``pccs`` (the URL of a PCCS-compatible service, Intel's PCS included) each quote
        is judged under collateral this client fetched itself from there, not under the copy
        the worker posted: a registrant cannot pick the TCB status or CRLs it is judged by.
        """
        quotes = self.quotes_on_chain(
            await self.logs("Registry", WorkerRegistered),
            await self.logs("Registry", WorkerReattested),
        )
        collaterals: dict[bytes, bytes] = {}
        for egress in await self.logs("Bus", Egress):
            if egress.topic != TOPIC_COLLATERAL:
                continue
            collateral = self.collateral_from_egress(egress.payload)
            if collateral is not None:
                collaterals[keccak(collateral)] = collateral
        now = int(time.time())
        entries = []
        for kind, event in quotes:
            record = await self.registry_record(WorkerRecord, event.worker)
            current = record.quote_hash == event.quote_hash
            allowed = bool(await self.registry_view("allowed_measurements", event.measurement))
            collateral, error = collaterals.get(event.collateral_hash), None
            if pccs is not None:
                collateral, error = self.collateral_from_pccs(pccs, event.quote)
            entries.append(
                self.audit_entry(
                    event,
                    collateral,
                    at=now,
                    measurement_allowed=allowed,
                    confidence_on_chain=record.confidence if current else 0,
                    kind=kind,
                    collateral_source=pccs or "registrant",
                    collateral_error=error,
                )
            )
        return entries

    async def evict(
        self, worker: Address | bytes | str, *, wallet: Wallet | bytes | str | None = None
    ) -> int:
        """Take a worker that is no longer eligible (its endorsement ended or expired, its
        measurement was revoked, it was flagged or found diverged) out of its cluster and the
        gatekeeper set (``Registry.evict``; anyone may). Returns the block it happened in.

        Raises:
            TransactionReverted: ``still eligible``, ``nothing to evict`` or ``genesis
                gatekeeper not judged yet``.
        """
        target = worker if isinstance(worker, Address) else Address.parse(worker)
        receipt = await self.transact(
            self.wallet_for(wallet), self.config.registry, self.registry.encode("evict", target)
        )
        return int(receipt["blockNumber"], 16)

    async def set_deploy_policy(
        self,
        cluster: bytes | str | None,
        *,
        open: bool | None = None,
        deployer: Address | bytes | str | None = None,
        allowed: bool = True,
        wallet: Wallet | bytes | str | None = None,
    ) -> int:
        """The cluster owner's consent to deployments (``Bus.set_deploy_policy``): ``open``
        True lets anyone deploy agents into the cluster (the default), False only the owner and
        the deployers it allowed; or, with ``deployer``, allow (``allowed``) or refuse that one.
        Returns the block it happened in.

        Raises:
            ValueError: neither or both of ``open`` and ``deployer``.
            TransactionReverted: ``not cluster owner``, ``unknown cluster``.
        """
        if (open is None) == (deployer is None):
            raise ValueError("give either open= or deployer=")
        cluster_id = self._cluster(cluster)
        if deployer is None:
            who, flag = ZERO_ADDRESS, bool(open)
        else:
            who = deployer if isinstance(deployer, Address) else Address.parse(deployer)
            flag = allowed
        data = self.bus.encode("set_deploy_policy", cluster_id, who, flag)
        receipt = await self.transact(self.wallet_for(wallet), self.config.bus, data)
        return int(receipt["blockNumber"], 16)

    async def deploy_policy(
        self, cluster: bytes | str | None, *, deployers: Sequence[Address | bytes | str] = ()
    ) -> dict[str, Any]:
        """A cluster's deploy policy: ``{"open": bool, "allowed": {address: bool}}`` for the
        ``deployers`` asked about (the chain keeps no list of them; ``DeployPolicySet`` events
        do)."""
        cluster_id = self._cluster(cluster)
        closed = bool(await self.bus_view("deploy_closed", cluster_id))
        allowed = {}
        for deployer in deployers:
            who = deployer if isinstance(deployer, Address) else Address.parse(deployer)
            allowed[who.hex] = bool(await self.bus_view("deployers", cluster_id, who))
        return {"cluster": "0x" + cluster_id.hex(), "open": not closed, "allowed": allowed}

    async def add_cluster_worker(
        self,
        worker: Address | str,
        *,
        cluster: bytes | str | None = None,
        wallet: Wallet | bytes | str | None = None,
    ) -> int:
        """The cluster's owner takes an endorsed worker in (``Registry.add_cluster_worker``); its
        gatekeepers then send it the cluster's keys. Returns the block it happened in.

        Raises:
            TransactionReverted: ``not cluster owner``, ``worker not endorsed``, ``worker in a
                cluster``, ``cluster full``.
        """
        return await self._membership("add_cluster_worker", worker, cluster, wallet)

    async def remove_cluster_worker(
        self,
        worker: Address | str,
        *,
        cluster: bytes | str | None = None,
        wallet: Wallet | bytes | str | None = None,
    ) -> int:
        """The cluster's owner takes a worker out; the cluster moves to a new key epoch and
        the worker stops serving it. Returns the block it happened in.

        Raises:
            TransactionReverted: ``not cluster owner``, ``not a member``.
        """
        return await self._membership("remove_cluster_worker", worker, cluster, wallet)

    async def _membership(
        self,
        fn: str,
        worker: Address | str,
        cluster: bytes | str | None,
        wallet: Wallet | bytes | str | None,
    ) -> int:
        who = worker if isinstance(worker, Address) else Address.parse(worker)
        data = self.registry.encode(fn, self._cluster(cluster), who)
        receipt = await self.transact(self.wallet_for(wallet), self.config.registry, data)
        return int(receipt["blockNumber"], 16)

    async def cluster_members(self, cluster: bytes | str | None = None) -> list[str]:
        """The cluster's members now (from its ``ClusterWorkerAdded`` events, each checked
        against ``Registry.cluster_members``), in the order they joined."""
        cluster_id = self._cluster(cluster)
        added = await self.logs("Registry", ClusterWorkerAdded, where=[cluster_id])
        names = list(dict.fromkeys(event.worker.hex for event in added))
        flags = await self.registry_views(
            [("cluster_members", (cluster_id, Address.parse(name))) for name in names]
        )
        return [name for name, flag in zip(names, flags, strict=True) if flag]

    async def claim_refund(self, *, wallet: Wallet | bytes | str | None = None) -> int:
        """An operator takes the registration deposits refunded to it (its workers were
        endorsed, or nobody judged them within the window). Returns the wei claimed.

        Raises:
            TransactionReverted: ``nothing to claim``.
        """
        owner = self.wallet_for(wallet)
        amount = int(await self.registry_view("refund_of", owner.address))
        await self.transact(owner, self.config.registry, self.registry.encode("claim_refund"))
        return amount

    # ---- EVM consumers (VeilConsumer) ------------------------------------------------------

    async def deploy_consumer(
        self,
        agent: bytes | str,
        *,
        ttl: int = C.CONSUMER_TTL_BLOCKS,
        kind: str = "VeilConsumer",
        wallet: Wallet | bytes | str | None = None,
    ) -> Address:
        """Deploy a consumer of ``agent`` (its requests wait ``ttl`` blocks for a result):
        ``kind`` ``"VeilConsumer"``, or ``"PriceFeed"`` (ticks carry a price, ``price_feed``
        reads it). Returns its address.

        Raises:
            ValueError: an unknown ``kind``.
            TransactionReverted / ChainUnavailable: the deployment failed.
        """
        if kind not in ("VeilConsumer", "PriceFeed"):
            raise ValueError("kind is VeilConsumer or PriceFeed (deploy_escrow for an Escrow)")
        return await self._create(
            kind,
            ["address", "bytes32", "uint256"],
            [self.config.bus.hex, _contract_id(agent), ttl],
            wallet=wallet,
        )

    async def deploy_escrow(
        self,
        judge: bytes | str,
        *,
        seller: Address | str,
        value: int,
        ttl: int = C.CONSUMER_TTL_BLOCKS,
        wallet: Wallet | bytes | str | None = None,
    ) -> Address:
        """Pay ``value`` wei into an ``Escrow`` for ``seller``, with agent ``judge`` to rule on
        a dispute (the caller is the buyer). Returns its address.

        Raises:
            TransactionReverted: ``bad parties`` (no seller, or the buyer itself).
        """
        who = seller if isinstance(seller, Address) else Address.parse(seller)
        return await self._create(
            "Escrow",
            ["address", "bytes32", "uint256", "address"],
            [self.config.bus.hex, _contract_id(judge), ttl, who.hex],
            value=value,
            wallet=wallet,
        )

    async def _create(
        self,
        artifact: str,
        types: list[str],
        args: list[Any],
        *,
        value: int = 0,
        wallet: Wallet | bytes | str | None = None,
    ) -> Address:
        code = load_artifact(artifact).bytecode + abi_encode(types, args)
        receipt = await self.transact(self.wallet_for(wallet), None, code, value=value)
        address = receipt.get("contractAddress")
        if not address:
            raise ChainUnavailable(f"the node reported no address for the deployed {artifact}")
        return Address.parse(str(address))

    async def _view(self, artifact: str, address: Address | str, fn: str, *args: Any) -> Any:
        target = address if isinstance(address, Address) else Address.parse(address)
        handle = ContractHandle(artifact, target)
        raw = await self._rpc(
            "eth_call", {"to": target.hex, "data": "0x" + handle.encode(fn, *args).hex()}, "latest"
        )
        return handle.decode(fn, bytes.fromhex(str(raw).removeprefix("0x")))

    async def price_feed(self, feed: Address | str) -> dict[str, Any]:
        """A ``PriceFeed``'s newest price: ``{"price": fixed point, "decimals": 6, "height":
        block of its tick}`` (height 0: no tick taken yet)."""
        price, height = await self._view("PriceFeed", feed, "latest")
        return {"price": int(price), "decimals": 6, "height": int(height)}

    async def escrow_dispute(
        self,
        escrow: Address | str,
        claim: str,
        *,
        wallet: Wallet | bytes | str | None = None,
    ) -> bytes:
        """A party of ``escrow`` asks its judge agent to rule on ``claim``; returns the request
        id (the judge's workers answer it; ``escrow`` shows the outcome).

        Raises:
            TransactionReverted: ``not a party``, ``settled``.
        """
        target = escrow if isinstance(escrow, Address) else Address.parse(escrow)
        data = ContractHandle("Escrow", target).encode("ask_judge", claim.encode())
        receipt = await self.transact(self.wallet_for(wallet), target, data)
        for event in self.decode_logs(list(receipt.get("logs") or [])):
            if isinstance(event, JobRequested) and event.consumer == target:
                return bytes(event.request_id)
        raise ChainUnavailable("the receipt holds no JobRequested for this escrow")

    async def escrow(self, escrow: Address | str) -> dict[str, Any]:
        """Where an ``Escrow`` stands: ``buyer``, ``seller``, ``settled``, ``winner`` (who was
        paid, or None), ``balance`` (wei still held) and ``dispute`` (the last request id, or
        None)."""
        target = escrow if isinstance(escrow, Address) else Address.parse(escrow)
        handle = ContractHandle("Escrow", target)
        fields = ("buyer", "seller", "settled", "dispute")
        settled_topic = "0x" + keccak(b"Settled(address,uint256,bytes32)").hex()
        answers = await self._rpc_batch(  # the fields, the balance and the payout: one round trip
            [
                *(
                    (
                        "eth_call",
                        [{"to": target.hex, "data": "0x" + handle.encode(fn).hex()}, "latest"],
                    )
                    for fn in fields
                ),
                ("eth_getBalance", [target.hex, "latest"]),
                (
                    "eth_getLogs",
                    [
                        {
                            "address": target.hex,
                            "fromBlock": hex(self.config.genesis_block),
                            "toBlock": "latest",
                            "topics": [settled_topic],
                        }
                    ],
                ),
            ]
        )
        buyer, seller, settled, dispute = (
            handle.decode(fn, bytes.fromhex(str(raw).removeprefix("0x")))
            for fn, raw in zip(fields, answers, strict=False)
        )
        balance, settlements = int(answers[4], 16), answers[5]
        winner = None
        for log in settlements or []:
            winner = Address(bytes.fromhex(str(log["topics"][1])[-40:])).hex
        return {
            "buyer": Address.parse(buyer).hex,
            "seller": Address.parse(seller).hex,
            "settled": bool(settled),
            "winner": winner,
            "balance": balance,
            "dispute": None if bytes(dispute) == bytes(32) else "0x" + bytes(dispute).hex(),
        }

    async def consumer_request(
        self,
        consumer: Address | bytes | str,
        payload: Any,
        *,
        value: int = 0,
        wallet: Wallet | bytes | str | None = None,
    ) -> bytes:
        """Ask ``consumer``'s agent for work (``payload``: bytes, or a value sent as JSON);
        returns the request id (from the Bus's ``JobRequested`` in the receipt).

        Raises:
            TransactionReverted: the Bus refused (``unknown contract``, ``contract paused``).
        """
        target = consumer if isinstance(consumer, Address) else Address.parse(consumer)
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        data = ContractHandle("VeilConsumer", target).encode("request", body)
        receipt = await self.transact(self.wallet_for(wallet), target, data, value=value)
        for event in self.decode_logs(list(receipt.get("logs") or [])):
            if isinstance(event, JobRequested) and event.consumer == target:
                return bytes(event.request_id)
        raise ChainUnavailable("the receipt holds no JobRequested for this consumer")

    async def schedule_job(
        self,
        agent: bytes | str,
        consumer: Address | bytes | str,
        *,
        every: int,
        payload: Any,
        wallet: Wallet | bytes | str | None = None,
    ) -> int:
        """The agent's owner sets a standing job (``Bus.schedule``): every ``every`` blocks
        (1 or more) its workers run ``job`` with ``payload`` (bytes, or a value sent as JSON)
        and deliver the signed result to ``consumer`` (``VeilConsumer.fulfill_tick``). Returns
        the schedule id.

        Raises:
            TransactionReverted: ``not owner``, ``bad interval``, ``zero address``.
        """
        agent_id = _contract_id(agent)
        target = consumer if isinstance(consumer, Address) else Address.parse(consumer)
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        data = self.bus.encode("schedule", agent_id, target, every, body)
        receipt = await self.transact(self.wallet_for(wallet), self.config.bus, data)
        for event in self.decode_logs(list(receipt.get("logs") or [])):
            if isinstance(event, JobScheduled):
                return int(event.schedule_id)
        raise ChainUnavailable("the receipt holds no JobScheduled")

    async def cancel_schedule(
        self, schedule_id: int, *, wallet: Wallet | bytes | str | None = None
    ) -> int:
        """End a standing job (its agent's owner only); returns the block it happened in.

        Raises:
            TransactionReverted: ``no such schedule``, ``not owner``.
        """
        data = self.bus.encode("cancel_schedule", schedule_id)
        receipt = await self.transact(self.wallet_for(wallet), self.config.bus, data)
        return int(receipt["blockNumber"], 16)

    async def set_egress(
        self,
        agent: bytes | str,
        host: str,
        *,
        allowed: bool = True,
        wallet: Wallet | bytes | str | None = None,
    ) -> int:
        """Let the agent's ``http.fetch`` reach ``host`` (any port), or with ``allowed=False``
        no longer (``Bus.set_egress``, its owner only; default deny, at most 16 names). The
        name is stored in its normal form (lower case). Returns the block it happened in.

        Raises:
            ValueError: ``host`` is not a DNS name or IP address.
            TransactionReverted: ``not owner``, ``too many hosts``.
        """
        name = normalize_host(host)
        if name is None:
            raise ValueError(f"{host!r} is not a host name or IP address")
        data = self.bus.encode("set_egress", _contract_id(agent), name, allowed)
        receipt = await self.transact(self.wallet_for(wallet), self.config.bus, data)
        return int(receipt["blockNumber"], 16)

    async def agent_info(self, agent: bytes | str) -> dict[str, Any]:
        """What the chain says of an agent: ``contract_id``, ``cluster``, ``code_hash``,
        ``owner``, ``controller``, ``key_epoch``, ``key_address``, ``key_block``, ``paused``,
        ``egress`` (its allowlist) and ``init_failed``: None, or the error code its workers
        reported when its ``init`` failed (``ContractInitFailed``; the agent was paused then).

        Raises:
            ContractNotFound: no agent with that id on this network.
        """
        agent_id = _contract_id(agent)
        record = await self.bus_view("contracts", agent_id)
        cluster, code_hash, owner, controller, epoch, key_address, _, key_block, paused = record
        if Address.parse(owner).raw == bytes(20):
            raise ContractNotFound(f"no agent 0x{agent_id.hex()} on this network")
        return {
            "contract_id": "0x" + agent_id.hex(),
            "cluster": "0x" + bytes(cluster).hex(),
            "code_hash": "0x" + bytes(code_hash).hex(),
            "owner": Address.parse(owner).hex,
            "controller": Address.parse(controller).hex,
            "key_epoch": int(epoch),
            "key_address": Address.parse(key_address).hex,
            "key_block": int(key_block),
            "paused": bool(paused),
            "egress": await self.egress(agent_id),
            "init_failed": await self._init_failure(agent_id),
        }

    async def _init_failure(self, agent_id: bytes) -> str | None:
        failed = await self.logs("Bus", ContractInitFailed, where=[agent_id])
        return str(failed[-1].code) if failed else None

    async def init_outcome(
        self, agent: bytes | str, *, wallet: Wallet | bytes | str | None = None
    ) -> dict[str, Any]:
        """How the agent's ``init`` went on its workers (a verified outcome query; only its
        owner may read it): ``{"status": "applied" | "pending", "ok", "error"}``, where
        ``error`` is ``{"code", "message"}`` when ``init`` failed (the agent then has no state
        but what ``init`` never wrote: fix it with ``upgrade_contract`` or deploy again).

        Raises:
            WorkerRefused: the wallet is not the agent's owner. The query errors of ``query``.
        """
        agent_id = _contract_id(agent)
        opened = await self.ask(
            agent_id, "outcome", encode(INIT_SEQ), wallet=self.wallet_for(wallet)
        )
        outcome = self.outcome(opened)
        return {
            "status": outcome.status,
            "ok": outcome.ok,
            "error": None if outcome.error is None else dict(outcome.error),
        }

    async def egress(self, agent: bytes | str) -> list[str]:
        """The host names the agent's ``http.fetch`` may reach now, sorted (from its
        ``EgressHostSet`` events, each checked against the Bus's stored flag)."""
        agent_id = _contract_id(agent)
        listed: dict[str, bool] = {}
        for event in await self.logs("Bus", EgressHostSet, where=[agent_id]):
            listed[str(event.host)] = bool(event.allowed)
        names = sorted(name for name, allowed in listed.items() if allowed)
        flags = await self.bus_views(
            [("egress_hosts", (agent_id, keccak(name.encode()))) for name in names]
        )
        return [name for name, flag in zip(names, flags, strict=True) if flag]

    async def schedules(self, agent: bytes | str) -> list[dict[str, Any]]:
        """The agent's standing jobs, active ones and cancelled ones, oldest first."""
        agent_id = _contract_id(agent)
        mine = await self.logs("Bus", JobScheduled, where=[agent_id])
        standing = await self.bus_views([("schedules", (e.schedule_id,)) for e in mine])
        return [
            {
                "schedule_id": int(event.schedule_id),
                "consumer": event.consumer.hex,
                "every": int(event.every),
                "start": int(event.start),
                "active": bool(record[4]),
            }
            for event, record in zip(mine, standing, strict=True)
        ]

    async def consumer_requests(self, consumer: Address | bytes | str) -> list[dict[str, Any]]:
        """Every request ``consumer`` made, oldest first, with where it stands: ``waiting``
        (until its deadline), ``fulfilled`` (with the result's keccak256) or ``expired``."""
        target = consumer if isinstance(consumer, Address) else Address.parse(consumer)
        handle = ContractHandle("VeilConsumer", target)
        docs = await self._rpc(
            "eth_getLogs",
            {
                "address": self.config.bus.hex,
                "fromBlock": hex(self.config.genesis_block),
                "toBlock": "latest",
                "topics": [
                    self.topic_of(JobRequested),
                    None,
                    None,
                    "0x" + bytes(12).hex() + target.raw.hex(),
                ],
            },
        )
        requested = [e for e in self.decode_logs(list(docs or [])) if isinstance(e, JobRequested)]
        # the head and every request's slot in one round trip
        slots = [
            {"to": target.hex, "data": "0x" + handle.encode("state", e.request_id).hex()}
            for e in requested
        ]
        answers = await self._rpc_batch(
            [("eth_blockNumber", []), *(("eth_call", [call, "latest"]) for call in slots)]
        )
        head = int(answers[0], 16)
        out = []
        for event, answer in zip(requested, answers[1:], strict=True):
            slot = bytes(handle.decode("state", _unhex(answer)))
            value = int.from_bytes(slot, "big")
            if 0 < value < 2**64:
                status = "waiting" if head <= value else "expired"
            elif value == 0:
                status = "expired"  # closed by expire()
            else:
                status = "fulfilled"
            out.append(
                {
                    "request_id": "0x" + bytes(event.request_id).hex(),
                    "agent": "0x" + bytes(event.contract_id).hex(),
                    "block": event.block_number,
                    "deadline": event.deadline,
                    "status": status,
                    "result_hash": "0x" + slot.hex() if status == "fulfilled" else None,
                }
            )
        return out

    async def rotate_master_key(
        self,
        *,
        admin: Wallet | bytes | str | None = None,
        timeout: float = C.ROTATION_WAIT_S,
        progress: Hook | None = None,
    ) -> dict[str, Any]:
        """Lock a master-key rotation (governance) and follow it until the master key rotated and
        every cluster and contract moved to a new key epoch.

        Raises:
            NetworkConfigInvalid: no governance key (pass ``admin``; devnets list it).
            TransactionReverted: the Registry refused the lock (e.g. one is in progress).
            Timeout: the rotation did not finish within ``timeout``.
        """
        key = admin if admin is not None else self.config.admin_key()
        if key is None:
            raise NetworkConfigInvalid("rotating keys needs the governance key (--key)")
        governor = self.wallet_for(key)
        say = progress or (lambda _line: None)
        started = time.monotonic()
        before = int(await self.registry_view("rotation_counter"))
        clusters = [e.cluster_id for e in await self.logs("Registry", ClusterCreated)]
        old_epochs = {c: (await self.registry_record(ClusterRecord, c)).key_epoch for c in clusters}
        contracts = [e.contract_id for e in await self.logs("Bus", ContractDeployed)]
        first_block = await self.head()
        receipt = await self.transact(
            governor, self.config.registry, self.registry.encode("lock_rotation"), timeout=timeout
        )
        locked_at = int(receipt["blockNumber"], 16)
        say(f"rotation {before + 1} locked at block {locked_at}")
        deadline = started + timeout

        async def until(done: Any, what: str) -> None:
            while not await done():
                if time.monotonic() > deadline:
                    raise Timeout(f"key rotation: {what} did not happen within {timeout:.0f} s")
                await asyncio.sleep(C.ROTATION_POLL_S)

        async def rotated() -> bool:
            counter = int(await self.registry_view("rotation_counter"))
            return counter > before and not bool(await self.registry_view("rotation_locked"))

        await until(rotated, "the master key rotation")
        rotated_at = await self.head()
        say(f"master key rotated (rotation {before + 1}) by block {rotated_at}")
        new_epochs: dict[bytes, int] = {}

        async def clusters_moved() -> bool:
            for cluster in clusters:
                epoch = (await self.registry_record(ClusterRecord, cluster)).key_epoch
                if epoch <= old_epochs[cluster]:
                    return False
                new_epochs[cluster] = epoch
            return True

        await until(clusters_moved, "re-keying every cluster")
        say(
            "clusters on their new epochs: "
            + ", ".join(f"0x{c.hex()[:8]}… {old_epochs[c]}→{new_epochs[c]}" for c in clusters)
        )

        async def contracts_moved() -> bool:
            for contract_id in contracts:
                contract = await self.registry_record(ContractRecord, contract_id)
                if contract.key_epoch < new_epochs.get(contract.cluster, 0):
                    return False
            return True

        await until(contracts_moved, "re-keying every contract")
        for contract_id in contracts:
            self.forget_key(contract_id)
        finished = await self.head()
        say(f"{len(contracts)} contract keys re-keyed by block {finished}")
        return {
            "rotation": before + 1,
            "locked_block": locked_at,
            "rotated_block": rotated_at,
            "finished_block": finished,
            "blocks": finished - first_block,
            "seconds": round(time.monotonic() - started, 3),
            "clusters": {
                "0x" + c.hex(): {"from": old_epochs[c], "to": new_epochs[c]} for c in clusters
            },
            "contracts": len(contracts),
        }


class AsyncAgent:
    """A handle on one deployed agent contract of an ``AsyncClient``."""

    def __init__(self, client: AsyncClient, contract_id: bytes) -> None:
        self.client = client
        self._raw = contract_id

    @property
    def id(self) -> str:
        """The agent's id, ``0x`` and 64 hex digits: what every call and command takes, what
        ``veil`` prints, and plain JSON (pass it in an ``init`` or a message as it is)."""
        return "0x" + self._raw.hex()

    @property
    def contract_id(self) -> bytes:
        """Deprecated: the id as 32 bytes, which JSON cannot carry. Use ``id``."""
        warnings.warn(
            "Agent.contract_id (bytes) is deprecated: use Agent.id, a 0x string every call takes",
            DeprecationWarning,
            stacklevel=2,
        )
        return self._raw

    def __repr__(self) -> str:
        return f"AsyncAgent({self.id})"

    async def key(self, *, refresh: bool = False) -> ContractKey:
        """The contract's current public key and epoch (from the Registry)."""
        return await self.client.contract_key(self._raw, refresh=refresh)

    async def wait_keyed(self, *, timeout: float = C.DEFAULT_WAIT_S) -> ContractKey:
        """Wait until the cluster has posted this contract's key."""
        deadline = time.monotonic() + timeout
        while True:
            record = await self.client.registry_record(ContractRecord, self._raw)
            if not record.exists or record.key_epoch > 0:
                return await self.client.contract_key(self._raw, refresh=True)
            if time.monotonic() > deadline:
                raise Timeout(f"agent {self.id} was not keyed within {timeout:.0f} s")
            await asyncio.sleep(C.POLL_INTERVAL_S)

    async def command(
        self,
        msg: Any,
        *,
        wait: bool = True,
        wallet: Wallet | bytes | str | None = None,
        timeout: float = C.DEFAULT_WAIT_S,
    ) -> CommandResult:
        """Send an encrypted command through the chain; with ``wait``, return its outcome.

        Raises:
            AgentFailed: (with ``wait``) the agent rejected the command.
            TransactionReverted, Timeout, and the query errors of ``query``.
        """
        sender = self.client.wallet_for(wallet)
        deadline = time.monotonic() + timeout  # one bound for mining and the outcome
        sent = await self.client.send_command(
            self._raw, "call", self.client.call_body(msg), wallet=sender, timeout=timeout
        )
        if not wait:
            return sent
        return await self.client.wait_outcome(sent, wallet=sender, timeout=_left(deadline))

    async def commands(
        self,
        msgs: Sequence[Any],
        *,
        wait: bool = True,
        wallet: Wallet | bytes | str | None = None,
        timeout: float = C.DEFAULT_WAIT_S,
    ) -> list[CommandResult]:
        """Send many encrypted commands at once, in this order: one transaction each, all
        signed with consecutive nonces and sent in JSON-RPC batches of ``MAX_RPC_BATCH``. With
        ``wait``, their outcomes, read by one verified query per ``MAX_OUTCOMES_PER_QUERY``
        commands.

        Unlike ``command``, an agent's refusal of one command raises nothing: check each
        result's ``ok`` (and ``error``).

        Raises:
            ValueError: a message is not JSON; nothing was sent.
            TransactionReverted, Timeout, and the query errors of ``query``.
        """
        sender = self.client.wallet_for(wallet)
        bodies = [self.client.call_body(msg) for msg in msgs]
        deadline = time.monotonic() + timeout  # one bound for mining and the outcomes
        sent = await self.client.send_commands(
            self._raw, "call", bodies, wallet=sender, timeout=timeout
        )
        if not wait:
            return sent
        return await self.client.wait_outcomes(sent, wallet=sender, timeout=_left(deadline))

    async def outcomes(
        self,
        sent: Sequence[CommandResult],
        *,
        wallet: Wallet | bytes | str | None = None,
        timeout: float = C.DEFAULT_WAIT_S,
    ) -> list[CommandResult]:
        """Wait for the outcomes of commands sent with ``wait=False`` (one wallet's)."""
        return await self.client.wait_outcomes(
            sent, wallet=self.client.wallet_for(wallet), timeout=timeout
        )

    async def set_secret(
        self,
        name: str,
        value: str,
        *,
        wait: bool = True,
        wallet: Wallet | bytes | str | None = None,
        timeout: float = C.DEFAULT_WAIT_S,
    ) -> CommandResult:
        """Owner only: store an encrypted secret the agent reads with ``secrets.get(name)``."""
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError("secret names and values are strings")
        sender = self.client.wallet_for(wallet)
        deadline = time.monotonic() + timeout  # one bound for mining and the outcome
        sent = await self.client.send_command(
            self._raw, "secret", encode([name, value]), wallet=sender, timeout=timeout
        )
        if not wait:
            return sent
        return await self.client.wait_outcome(sent, wallet=sender, timeout=_left(deadline))

    async def outcome(
        self,
        sent: CommandResult,
        *,
        wallet: Wallet | bytes | str | None = None,
        timeout: float = C.DEFAULT_WAIT_S,
    ) -> CommandResult:
        """Wait for the outcome of a command sent with ``wait=False``."""
        return await self.client.wait_outcome(
            sent, wallet=self.client.wallet_for(wallet), timeout=timeout
        )

    async def query(
        self,
        msg: Any,
        *,
        wallet: Wallet | bytes | str | None = None,
        worker: Address | str | None = None,
    ) -> QueryResult:
        """Call the agent's ``query`` entry point on a worker (any of its cluster, or
        ``worker``: an address or its ``0x`` hex) and verify the answer."""
        return await self.client.query(
            self._raw, msg, wallet=self.client.wallet_for(wallet), worker=worker
        )


INIT_SEQ = -1
"""The outcome number of an agent's ``init`` (``runtime.contracts.INIT_SEQ``)."""


def _contract_id(value: bytes | str) -> bytes:
    if isinstance(value, bytes):
        raw = value
    else:
        try:
            raw = bytes.fromhex(value.removeprefix("0x"))
        except ValueError as exc:
            raise ContractNotFound(f"{value!r} is not a contract id (0x + 64 hex digits)") from exc
    if len(raw) != 32:
        raise ContractNotFound(f"a contract id is 32 bytes, not {len(raw)}")
    return raw


def _language_of_code(code: bytes) -> str | None:
    try:
        return proto.unpack_code(code)[0]
    except (CodecError, ValueError):
        return None


def _dialable(url: str) -> bool:
    """A registered URL worth dialing (the chain keeps whatever bytes a worker sent)."""
    try:
        return bool(check_api_url(url))
    except ValueError:
        return False


def _topic(value: bytes | Sequence[bytes]) -> str | list[str]:
    """An indexed value as a log topic (left-padded to 32 bytes), or a list of alternatives."""
    if isinstance(value, bytes):
        return "0x" + value.rjust(32, b"\x00").hex()
    return [str(_topic(item)) for item in value]


def _left(deadline: float) -> float:
    """Seconds until ``deadline`` (``time.monotonic``), never negative: a wait given none
    still looks once before it times out."""
    return max(0.0, deadline - time.monotonic())
