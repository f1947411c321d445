"""The I/O-free half of the SDK: envelopes, certificates, response checks, chain-view decoding.
``Client`` and ``AsyncClient`` only move bytes; every trust decision is made here (httpx style).

Theory of operation
-------------------
A query is sealed (HPKE) to the contract's current public key and epoch, which the client reads
from the Registry itself. It carries a certificate: a short-lived ephemeral key signed by the
wallet (EIP-191), valid until a block number. The answer is accepted only when, in order:

1. it parses (bounded), answers this request and contract, and carries a valid EIP-712
   signature by the worker it names (``open_response``; any failure is ``sdk_response_invalid``);
2. that worker is registered, endorsed, runs an allowed measurement, serves the contract's
   cluster, and has just attested freshly to our nonce (``sdk_worker_unverified``);
3. the block it names is on the client's own chain view (``sdk_unknown_block``) and no more than
   ``finality + freshness_blocks`` behind the head (``sdk_stale_block``);
4. only then is the decrypted plaintext released.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import os
import threading
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from pathlib import Path
from typing import Any

from eth_abi.exceptions import DecodingError

from veilnet.attestation import Collateral, Policy, TrustRoot, verify_quote_at
from veilnet.chain.constants import MAX_BATCHED_PAYLOAD, MAX_COMMAND_BATCH
from veilnet.chain.contracts import ContractHandle
from veilnet.chain.errors import EventDecodeError
from veilnet.chain.model import (
    ChainAddresses,
    ChainEvent,
    ClusterKeySet,
    Command,
    ContractKeySet,
    RawLog,
    decode_log,
    event_topic,
)
from veilnet.codec import CodecError, encode
from veilnet.crypto import Address, Binding, Domain, QuerySession, SecretKey, keccak, seal_for
from veilnet.errors import VeilnetError
from veilnet.protocol import envelopes as proto
from veilnet.protocol.registration import attestation_report_data, registration_report_data
from veilnet.protocol.topics import TOPIC_COLLATERAL
from veilnet.sdk import constants as C  # noqa: N812
from veilnet.sdk._models import (
    AuditEntry,
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
    WORKER_ERRORS,
    WORKER_QUERY_STALE,
    AgentFailed,
    AgentInvalid,
    ChainUnavailable,
    ContractNotFound,
    RateLimited,
    RequestTooLarge,
    ResponseInvalid,
    StaleBlock,
    TransactionReverted,
    UnknownBlock,
    WorkerRefused,
    WorkerUnavailable,
    WorkerUnverified,
)

__all__ = [
    "TOPIC_COLLATERAL",
    "BaseClient",
    "ChainView",
    "Outcome",
    "PendingQuery",
    "language_of",
    "read_outcome",
]


def language_of(path: Path) -> str:
    """``js`` or ``py`` from a file suffix (AgentInvalid otherwise)."""
    suffix = path.suffix.lower()
    if suffix in (".js", ".mjs"):
        return "js"
    if suffix == ".py":
        return "py"
    raise AgentInvalid(f"{path.name}: agent files end in .js or .py")


AgentCheck = Callable[[str, bytes, Any], "tuple[str, str] | None"]
"""Compiles an agent (language, source) and runs its ``init`` locally: ``(code, message)`` of
what failed, or None. ``veilnet.sandbox.check_agent`` is one; the SDK does not import the
sandbox itself (DESIGN §12), so ``deploy(check=...)`` takes it from the caller."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingQuery:
    """A query on its way: what the response must answer, and the key that opens it."""

    request_id: bytes
    contract_id: bytes
    cluster: bytes
    kind: str
    body: bytes
    session: QuerySession = field(repr=False)
    """Opens the answer: only this client's certified query key (or the contract key) can."""
    wallet: Address
    request: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenedResponse:
    """A response whose signature, request id and contract checked out, with its plaintext held
    back until the worker and block checks pass."""

    response: proto.QueryResponse
    worker: Address
    plaintext: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainView:
    """What the client's own node says: the head and the hash of the block a response names."""

    head: int
    block_hash: bytes | None
    """Hash of the response's block number on our chain, or None if we have no such block."""


class _Certificate:
    """A wallet's certified query key, and its sessions with the contract keys it queried."""

    __slots__ = ("_sessions", "certificate", "ephemeral")

    def __init__(self, ephemeral: SecretKey, certificate: proto.QueryCertificate) -> None:
        self.ephemeral = ephemeral
        self.certificate = certificate
        self._sessions: dict[tuple[bytes, int, bytes], proto.ClientSession] = {}

    def session(self, chain_id: int, key: ContractKey) -> proto.ClientSession:
        """The session with ``key``: one HPKE seal and one X25519 agreement per contract key
        and certificate, then reused by every query."""
        memo = (key.contract_id, key.epoch, key.public_key)
        found = self._sessions.get(memo)
        if found is None:
            if len(self._sessions) >= C.MAX_CACHED_SESSIONS:
                self._sessions.clear()
            found = proto.open_session(
                self.ephemeral,
                key.public_key,
                chain_id=chain_id,
                contract_id=key.contract_id,
                epoch=key.epoch,
                secret=os.urandom(C.SESSION_SECRET_BYTES),
            )
            self._sessions[memo] = found
        return found


class BaseClient:
    """Shared, I/O-free state and checks of ``Client`` and ``AsyncClient``.

    Args:
        config: the network (``NetworkConfig.load``).
        wallet: signs transactions and query certificates; defaults to the first dev account.
        freshness_blocks: how far behind ``head - finality`` a response's block may be.
        max_confidence: worst endorsement confidence level accepted (1 best .. 5 worst).
        allow_insecure_dev_tee: trust the INSECURE development attestation root of a devnet
            (its ``network.json``'s ``network_seed`` / ``attestation_root_ca``). Off unless you
            pass ``True``: a field in a ``network.json``, which may come from any parent
            folder, never turns it on (the CLI's ``--insecure-dev-tee``).
    """

    def __init__(
        self,
        config: NetworkConfig,
        *,
        wallet: Wallet | bytes | str | None = None,
        freshness_blocks: int = C.DEFAULT_FRESHNESS_BLOCKS,
        max_confidence: int = C.MAX_CONFIDENCE_LEVEL,
        allow_insecure_dev_tee: bool = False,
        head_cache_s: float = C.HEAD_CACHE_S,
    ) -> None:
        self.config = config
        self.head_cache_s = head_cache_s
        self.wallet = self._wallet(config, wallet)
        self.freshness_blocks = freshness_blocks
        self.max_confidence = max_confidence
        self.insecure_dev_tee = allow_insecure_dev_tee is True
        self.addresses = ChainAddresses(
            chain_id=config.chain_id, registry=config.registry, bus=config.bus
        )
        self.registry = ContractHandle("Registry", config.registry)
        self.bus = ContractHandle("Bus", config.bus)
        self.domain = Domain(chain_id=config.chain_id, verifying_contract=config.registry)
        self._lock = threading.Lock()
        self._certs: dict[bytes, _Certificate] = {}
        self._command_nonce = 0
        self._tx_nonces: dict[bytes, int] = {}
        self._verified: dict[bytes, tuple[float, bytes, WorkerVerification]] = {}
        """worker → (when, quote hash, verification): only the attestation is reused."""
        self._registrations: dict[bytes, tuple[int, WorkerRecord, bool, int]] = {}
        """worker → (our head, its registry record, measurement allowed, endorsed until) read
        at that head."""
        self._keys: dict[bytes, ContractKey] = {}
        self._root: TrustRoot | None = None
        self._head: tuple[int, float] | None = None
        self._seen_at: dict[bytes, int] = {}
        """Newest block each contract was seen at (command outcome or answer): later queries
        must not be answered from an older one (read-your-writes, monotonic reads)."""
        self._final_hashes: dict[int, bytes] = {}
        self._verdicts: dict[tuple[bytes, int], bytes] = {}
        """(cluster, height) → the Registry's commitment verdict (set once, never changed)."""
        self._no_verdict: dict[tuple[bytes, int], int] = {}
        """(cluster, height) → our head when the Registry had no verdict for it yet (asked
        again only once our head moves on, not on every query at that height)."""
        self._boot_ids: dict[bytes, bytes] = {}
        """worker → the boot id its ``/v1/health`` gave (queries name it; a restart changes it)."""
        self._discovered: dict[bytes, tuple[float, dict[bytes, str]]] = {}
        """cluster → (when, member → the API URL its registration published), read from the
        chain for members network.json does not list."""

    @staticmethod
    def _wallet(config: NetworkConfig, wallet: Wallet | bytes | str | None) -> Wallet:
        if isinstance(wallet, Wallet):
            return wallet
        if wallet is None:
            env = os.environ.get(C.PRIVATE_KEY_ENV)
            wallet = env if env else config.default_wallet_key()
        if wallet is None:
            from veilnet.sdk.errors import NetworkConfigInvalid

            raise NetworkConfigInvalid(
                f"no wallet: pass wallet=, set ${C.PRIVATE_KEY_ENV}, or use a devnet's network.json"
            )
        try:
            return Wallet.from_key(wallet)
        except ValueError as exc:
            from veilnet.sdk.errors import NetworkConfigInvalid

            raise NetworkConfigInvalid("the wallet key is not a 32-byte hex private key") from exc

    def wallet_for(self, wallet: Wallet | bytes | str | None) -> Wallet:
        return self.wallet if wallet is None else self._wallet(self.config, wallet)

    # ---- JSON-RPC ------------------------------------------------------------------------

    @staticmethod
    def rpc_body(method: str, params: list[Any], rid: int = 1) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}

    @staticmethod
    def rpc_result(reply: Any, method: str) -> Any:
        """The ``result`` of a JSON-RPC reply; reverts and errors become SDK errors."""
        if not isinstance(reply, dict):
            raise ChainUnavailable(f"{method}: the node answered something that is not JSON-RPC")
        error = reply.get("error")
        if error is not None:
            message = str(error.get("message", "")) if isinstance(error, dict) else str(error)
            data = error.get("data") if isinstance(error, dict) else None
            if "revert" in message.lower() or data:
                reason = _revert_reason(message, data)
                raise TransactionReverted(f"{method}: {reason}", reason=reason)
            raise ChainUnavailable(f"{method}: {message[:200]}")
        if "result" not in reply:
            raise ChainUnavailable(f"{method}: reply has no result")
        return reply["result"]

    def registry_call(self, fn: str, *args: Any, contract: str = "Registry") -> dict[str, Any]:
        """An ``eth_call`` of a view of the Registry (or, ``contract="Bus"``, of the Bus)."""
        handle = self.registry if contract == "Registry" else self.bus
        data = handle.encode(fn, *args)
        return {"to": handle.address.hex, "data": "0x" + data.hex()}

    def registry_decode(self, fn: str, result: Any, *, contract: str = "Registry") -> Any:
        handle = self.registry if contract == "Registry" else self.bus
        try:
            return handle.decode(fn, _unhex(result))
        except (ValueError, TypeError, DecodingError, CodecError) as exc:
            raise ChainUnavailable(f"{contract}.{fn}: the node's answer does not decode") from exc

    # ---- contracts and keys --------------------------------------------------------------

    def parse_contract_key(
        self, contract_id: bytes, record: ContractRecord, public_key: bytes
    ) -> ContractKey:
        """A ContractKey from ``Registry.contracts(id)`` and the key its event carried
        (``published_key``); ContractNotFound for unknown ids."""
        if not record.exists:
            raise ContractNotFound(f"no agent contract 0x{contract_id.hex()} on this network")
        key = ContractKey(
            contract_id=contract_id,
            cluster=record.cluster,
            owner=record.owner,
            epoch=record.key_epoch,
            public_key=public_key,
            paused=record.paused,
        )
        if key.epoch > 0:
            self._keys[contract_id] = key
        return key

    def cached_key(self, contract_id: bytes) -> ContractKey | None:
        return self._keys.get(contract_id)

    def known_public_key(self, contract_id: bytes, record: ContractRecord) -> bytes | None:
        """The cached public key where it is the one ``record`` names (same epoch, and its
        hash the one the Registry stores), so a refresh need not fetch its event again."""
        cached = self._keys.get(contract_id)
        if (
            cached is None
            or cached.epoch != record.key_epoch
            or keccak(cached.public_key) != record.key_hash
        ):
            return None
        return cached.public_key

    def forget_key(self, contract_id: bytes) -> None:
        self._keys.pop(contract_id, None)

    @staticmethod
    def pack_init(init: Any) -> bytes:
        if init is None:
            return b""
        return bytes([proto.INIT_PUBLIC_TAG]) + json_bytes(init, "the init arguments")

    def seal_init(
        self, init: Any, *, cluster: bytes, cluster_epoch: int, cluster_key: bytes
    ) -> bytes:
        """Init arguments encrypted to the cluster key (only the cluster's workers read them)."""
        binding = Binding(
            chain_id=self.config.chain_id,
            target=cluster,
            epoch=cluster_epoch,
            purpose=proto.PURPOSE_INIT,
        )
        return seal_for(cluster_key, json_bytes(init, "the init arguments"), binding=binding)

    def next_command_nonce(self) -> int:
        """Monotonic per client: nanoseconds since the epoch, bumped past the last one used."""
        with self._lock:
            self._command_nonce = max(time.time_ns(), self._command_nonce + 1)
            return self._command_nonce

    def seal_command(self, key: ContractKey, wallet: Wallet, kind: str, body: bytes) -> bytes:
        plaintext = proto.CommandPlaintext(
            sender=wallet.address.raw, nonce=self.next_command_nonce(), kind=kind, body=body
        )
        return proto.seal_command(
            key.public_key,
            plaintext,
            chain_id=self.config.chain_id,
            contract_id=key.contract_id,
            epoch=key.epoch,
        )

    # ---- transactions --------------------------------------------------------------------

    def tx_nonce(self, wallet: Wallet, chain_nonce: int | None, count: int = 1) -> int | None:
        """The next nonce for ``wallet`` (the first of ``count`` consecutive ones, all taken):
        the cached one, or None when it must be fetched."""
        with self._lock:
            cached = self._tx_nonces.get(wallet.address.raw)
            if cached is None and chain_nonce is None:
                return None
            nonce = cached if cached is not None else int(chain_nonce or 0)
            self._tx_nonces[wallet.address.raw] = nonce + count
            return nonce

    def reset_tx_nonce(self, wallet: Wallet) -> None:
        with self._lock:
            self._tx_nonces.pop(wallet.address.raw, None)

    def sign_transaction(
        self,
        wallet: Wallet,
        *,
        to: Address | None,
        data: bytes,
        nonce: int,
        gas: int,
        base_fee: int,
        value: int = 0,
    ) -> tuple[bytes, bytes]:
        """(raw, hash) of an EIP-1559 transaction; ``to`` None creates a contract."""
        return wallet.signer.sign_eip1559(
            chain_id=self.config.chain_id,
            nonce=nonce,
            to=to,
            value=value,
            data=data,
            gas=gas + gas * C.GAS_MARGIN_PERCENT // 100,
            max_fee_per_gas=base_fee * 2 + C.PRIORITY_FEE_WEI,
            max_priority_fee_per_gas=C.PRIORITY_FEE_WEI,
        )

    def decode_logs(self, logs: list[Any]) -> list[ChainEvent]:
        """Typed Veilnet events of a receipt or ``eth_getLogs`` answer (others are skipped)."""
        events: list[ChainEvent] = []
        for doc in logs:
            try:
                events.append(decode_log(RawLog.from_rpc(doc), self.addresses))
            except (EventDecodeError, KeyError, TypeError, ValueError):
                continue
        return events

    @staticmethod
    def topic_of(cls: type[ChainEvent]) -> str:
        return "0x" + event_topic(cls).hex()

    def key_filter(
        self, event: type[ClusterKeySet | ContractKeySet], subject: bytes, block: int
    ) -> dict[str, Any]:
        """The ``eth_getLogs`` filter for the key event of ``subject`` (a cluster or contract
        id) in the block the Registry recorded for it."""
        return {
            "address": self.addresses.by_name(event.CONTRACT).hex,
            "fromBlock": hex(block),
            "toBlock": hex(block),
            "topics": [self.topic_of(event), "0x" + subject.hex()],
        }

    def published_key(self, docs: list[Any], epoch: int, key_hash: bytes) -> bytes:
        """The public key of ``epoch`` among the key events in ``docs`` whose hash is the one
        the Registry stores: the node may answer logs, but cannot change the key.

        Raises:
            ChainUnavailable: no such event (the node withheld it or forged it).
        """
        for event in self.decode_logs(docs):
            if (
                isinstance(event, ClusterKeySet | ContractKeySet)
                and event.epoch == epoch
                and keccak(event.public_key) == key_hash
            ):
                return bytes(event.public_key)
        raise ChainUnavailable(
            f"the node returned no key event of epoch {epoch} matching the Registry's key hash"
        )

    # ---- queries -------------------------------------------------------------------------

    def certificate(self, wallet: Wallet, head: int) -> _Certificate:
        """The wallet's current query certificate, renewed when close to expiry."""
        with self._lock:
            found = self._certs.get(wallet.address.raw)
            if (
                found is not None
                and found.certificate.expires_block - C.CERT_RENEW_MARGIN_BLOCKS >= head
            ):
                return found
        ephemeral = SecretKey.generate()
        expires = head + C.CERT_LIFETIME_BLOCKS
        text = proto.certificate_text(self.config.chain_id, ephemeral.public.x25519, expires)
        cert = proto.QueryCertificate(
            wallet=wallet.address.raw,
            ephemeral_key=ephemeral.public.x25519,
            chain_id=self.config.chain_id,
            expires_block=expires,
            signature=wallet.sign_text(text),
        )
        made = _Certificate(ephemeral, cert)
        with self._lock:
            self._certs[wallet.address.raw] = made
        return made

    def build_query(
        self,
        key: ContractKey,
        *,
        kind: str,
        body: bytes,
        head: int,
        worker: Address,
        boot_id: bytes,
        wallet: Wallet | None = None,
        request_id: bytes | None = None,
    ) -> PendingQuery:
        """Seal a query (``kind`` "call" with JSON body, or "outcome" with a command seq),
        addressed to ``worker`` at its boot ``boot_id`` and to the window starting at ``head``:
        no other worker, no later boot of it and no block past the window answers it, so a
        captured query cannot be replayed.

        Raises:
            RequestTooLarge: the sealed request exceeds what workers accept.
        """
        wallet = wallet or self.wallet
        cert = self.certificate(wallet, head)
        rid = request_id if request_id is not None else os.urandom(C.REQUEST_ID_BYTES)
        session = cert.session(self.config.chain_id, key)
        request = proto.build_query(
            session=session,
            certificate=cert.certificate,
            request_id=rid,
            kind=kind,
            body=body,
            worker=worker.raw,
            boot_id=boot_id,
            window=head,
        )
        if len(request) > C.MAX_QUERY_REQUEST:
            raise RequestTooLarge(
                f"the query is {len(request)} bytes; workers accept at most {C.MAX_QUERY_REQUEST}",
                size=len(request),
                max_size=C.MAX_QUERY_REQUEST,
            )
        return PendingQuery(
            request_id=rid,
            contract_id=key.contract_id,
            cluster=key.cluster,
            kind=kind,
            body=body,
            session=session.keys,
            wallet=wallet.address,
            request=request,
        )

    @staticmethod
    def call_body(msg: Any) -> bytes:
        return json_bytes(msg, "the message")

    @staticmethod
    def outcome_body(seq: int) -> bytes:
        return encode(seq)

    def open(self, pending: PendingQuery, raw: bytes) -> OpenedResponse:
        """Step 1: parse, check request id, contract and the worker's signature, decrypt.

        Raises:
            ResponseInvalid: anything wrong with the bytes (one opaque error for tampering).
        """
        if len(raw) > C.MAX_QUERY_RESPONSE:
            raise ResponseInvalid("the response is larger than allowed")
        try:
            response = proto.QueryResponse.from_bytes(raw, max_size=C.MAX_QUERY_RESPONSE)
        except (CodecError, ValueError, TypeError) as exc:
            raise ResponseInvalid("the response does not parse") from exc
        if len(response.worker) != 20 or len(response.block_hash) != 32:
            raise ResponseInvalid("the response has malformed fields")
        if not hmac.compare_digest(response.contract_id, pending.contract_id):
            raise ResponseInvalid("the response is for another contract")
        if not hmac.compare_digest(response.request_id, pending.request_id):
            raise ResponseInvalid("the response answers another request")
        try:
            plaintext = proto.open_response(
                response,
                domain=self.domain,
                session=pending.session,
                expected_request_id=pending.request_id,
            )
        except VeilnetError as exc:
            raise ResponseInvalid(
                "the response is not signed by its worker or does not decrypt"
            ) from exc
        return OpenedResponse(
            response=response, worker=Address(response.worker), plaintext=plaintext
        )

    # ---- the client's chain view (cached: final block hashes never change) ---------------

    def seen_at(self, contract_id: bytes) -> int:
        with self._lock:
            return self._seen_at.get(contract_id, 0)

    def note_seen(self, contract_id: bytes, block_number: int) -> None:
        with self._lock:
            if block_number > self._seen_at.get(contract_id, 0):
                self._seen_at[contract_id] = block_number

    def cached_head(self, now: float) -> int | None:
        if self._head is None or now - self._head[1] > self.head_cache_s:
            return None
        return self._head[0]

    def shared_head(self, now: float) -> int | None:
        """The last head read if it is under ``SHARED_HEAD_S`` old (``fresh_head``)."""
        if self._head is None or now - self._head[1] > C.SHARED_HEAD_S:
            return None
        return self._head[0]

    def known_final(self, number: int) -> bool:
        """Whether a head read so far shows block ``number`` final (heads only grow)."""
        return self._head is not None and self._head[0] >= number + self.config.finality

    def remember_head(self, head: int, now: float) -> None:
        self._head = (head, now)

    def cached_view(self, number: int, now: float) -> ChainView | None:
        """Our view for a response at ``number`` without I/O, when the cache can answer."""
        head = self.cached_head(now)
        known = self._final_hashes.get(number)
        if head is None or known is None or number > head:
            return None
        return ChainView(head=head, block_hash=known)

    def remember_view(self, view: ChainView, number: int, now: float) -> None:
        self.remember_head(view.head, now)
        if view.block_hash is not None and number <= view.head - self.config.finality:
            if len(self._final_hashes) >= C.MAX_CACHED_BLOCKS:
                self._final_hashes.clear()
            self._final_hashes[number] = view.block_hash

    def check_block(self, response: proto.QueryResponse, view: ChainView) -> None:
        """Step 3: the response's block is on our chain and fresh.

        Raises:
            UnknownBlock: our chain has no block with that number and hash.
            StaleBlock: it is more than ``finality + freshness_blocks`` behind our head.
        """
        number = response.block_number
        if view.block_hash is None or not hmac.compare_digest(view.block_hash, response.block_hash):
            raise UnknownBlock(
                f"the response names block {number} with a hash this client's chain does not have",
                block_number=number,
            )
        lag = view.head - number
        allowed = self.config.finality + self.freshness_blocks
        if lag > allowed:
            raise StaleBlock(
                f"the response was computed at block {number}, {lag} blocks behind the head "
                f"{view.head} (at most {allowed} allowed)",
                block_number=number,
                head=view.head,
            )

    def verdict_due(self, cluster: bytes, height: int, head: int | None = None) -> bool:
        """Whether members post commitments at ``height`` and this client has no verdict for it
        yet (a verdict, once on chain, never changes: it is cached), nor asked for one at our
        current ``head`` already."""
        interval = self.config.commitment_interval
        if interval <= 0 or height % interval != 0:
            return False
        with self._lock:
            if (cluster, height) in self._verdicts:
                return False
            return head is None or self._no_verdict.get((cluster, height)) != head

    def note_verdict(
        self, cluster: bytes, height: int, verdict: bytes, head: int | None = None
    ) -> None:
        with self._lock:
            if not any(verdict):  # none yet: ask again once our head moves on
                if head is not None:
                    if len(self._no_verdict) >= C.MAX_CACHED_VERDICTS:
                        del self._no_verdict[next(iter(self._no_verdict))]
                    self._no_verdict[(cluster, height)] = head
                return
            if len(self._verdicts) >= C.MAX_CACHED_VERDICTS:
                del self._verdicts[next(iter(self._verdicts))]
            self._verdicts[(cluster, height)] = verdict
            self._no_verdict.pop((cluster, height), None)

    def check_commitment(self, response: proto.QueryResponse, cluster: bytes) -> None:
        """Step 3b: where the Registry holds a verdict for the answer's height (the commitment
        a majority of the cluster's members posted), the answer's commitment must be it.

        Raises:
            WorkerUnverified: the worker answered from a state that is not its cluster's.
        """
        with self._lock:
            verdict = self._verdicts.get((cluster, response.block_number))
        if verdict is not None and not hmac.compare_digest(verdict, response.state_commitment):
            worker = Address(response.worker).hex
            raise WorkerUnverified(
                f"{worker} answered from a state that is not its cluster's: its commitment at "
                f"block {response.block_number} differs from the one the Registry recorded",
                worker=worker,
                block_number=response.block_number,
            )

    @staticmethod
    def answer(opened: OpenedResponse) -> dict[str, Any]:
        """Step 4: the decrypted JSON answer."""
        try:
            value = json.loads(opened.plaintext)
        except ValueError as exc:
            raise ResponseInvalid("the decrypted answer is not JSON") from exc
        if not isinstance(value, dict):
            raise ResponseInvalid("the decrypted answer is not an object")
        return value

    def outcome(self, opened: OpenedResponse) -> Outcome:
        """Step 4, read: the answer as an ``Outcome`` (see ``read_outcome``)."""
        return read_outcome(self.answer(opened))

    def outcomes(self, opened: OpenedResponse, count: int) -> list[Outcome]:
        """The answer to an outcome query that named ``count`` commands, in their order (a
        status other than ``applied``, such as ``later``, means: ask again)."""
        found = self.answer(opened).get("outcomes")
        if not isinstance(found, list) or len(found) != count:
            raise ResponseInvalid(f"the answer does not hold the {count} outcomes asked for")
        if not all(isinstance(one, dict) for one in found):
            raise ResponseInvalid("an outcome in the answer is not an object")
        return [read_outcome(one) for one in found]

    @staticmethod
    def outcome_proof(opened: OpenedResponse, outcome: Outcome) -> QueryResult:
        """The verified query that reported ``outcome`` (its answer, or one of a batch's), as a
        ``QueryResult``."""
        response = opened.response
        return QueryResult(
            value=outcome.result,
            worker=opened.worker,
            block_number=response.block_number,
            block_hash=response.block_hash,
            state_commitment=response.state_commitment,
            events=list(outcome.events),
            fuel=outcome.fuel,
        )

    def sent_command(self, contract_id: bytes, receipt: Mapping[str, Any]) -> CommandResult:
        """The command a ``push_command`` receipt recorded (its ``Command`` event's seq).

        Raises:
            ChainUnavailable: the receipt carries no Command event of the contract.
        """
        return self.sent_commands(contract_id, receipt)[0]

    def sent_commands(self, contract_id: bytes, receipt: Mapping[str, Any]) -> list[CommandResult]:
        """The commands a ``push_command`` or ``push_commands`` receipt recorded, in seq order.

        Raises:
            ChainUnavailable: the receipt carries no Command event of the contract.
        """
        tx_hash = bytes.fromhex(str(receipt["transactionHash"])[2:])
        block = int(receipt["blockNumber"], 16)
        sent = [
            CommandResult(contract_id=contract_id, seq=e.seq, tx_hash=tx_hash, block_number=block)
            for e in self.decode_logs(list(receipt.get("logs") or []))
            if isinstance(e, Command) and e.contract_id == contract_id
        ]
        if not sent:
            raise ChainUnavailable("the command's receipt carries no Command event")
        return sent

    def command_calls(
        self, contract_id: bytes, payloads: Sequence[bytes]
    ) -> tuple[list[bytes], bytes | None, list[int]]:
        """The Bus calls that carry ``payloads`` in their order, call data to estimate their
        gas with (None: the longest call), and how many commands each call carries (each pays
        ``command_fee``). Several commands that all fit ``MAX_BATCHED_PAYLOAD`` go
        ``MAX_COMMAND_BATCH`` to a ``push_commands``, which shares one transaction's cost among
        them; the estimate is the fullest batch with every payload as long as the longest,
        which costs at least what any batch does. Otherwise, one ``push_command`` each."""
        longest = max((len(p) for p in payloads), default=0)
        if len(payloads) < 2 or longest > MAX_BATCHED_PAYLOAD:
            calls = [self.bus.encode("push_command", contract_id, p) for p in payloads]
            return calls, None, [1] * len(calls)
        batches = [
            list(payloads[i : i + MAX_COMMAND_BATCH])
            for i in range(0, len(payloads), MAX_COMMAND_BATCH)
        ]
        calls = [self.bus.encode("push_commands", contract_id, batch) for batch in batches]
        worst = [b"\xff" * longest] * len(batches[0])
        estimate = self.bus.encode("push_commands", contract_id, worst)
        return calls, estimate, [len(batch) for batch in batches]

    def query_result(self, opened: OpenedResponse, *, raise_on_error: bool = True) -> QueryResult:
        outcome = self.outcome(opened)
        if raise_on_error and outcome.ok is False:
            raise agent_failure(outcome.error)
        return self.outcome_proof(opened, outcome)

    @staticmethod
    def command_result(sent: CommandResult, outcome: Outcome, proof: QueryResult) -> CommandResult:
        """``sent`` completed with its applied ``outcome`` and the query that proved it."""
        return replace(
            sent,
            applied=True,
            ok=bool(outcome.ok),
            result=outcome.result,
            events=list(outcome.events),
            fuel=outcome.fuel,
            error=None if outcome.error is None else dict(outcome.error),
            proof=proof,
        )

    # ---- workers -------------------------------------------------------------------------

    def cached_verification(
        self, worker: Address, now: float, quote_hash: bytes
    ) -> WorkerVerification | None:
        """The attestation check of the registration ``quote_hash`` names, if still fresh."""
        found = self._verified.get(worker.raw)
        if found is None or now - found[0] > C.WORKER_VERIFICATION_TTL_S:
            return None
        return found[2] if found[1] == quote_hash else None

    def remember_verification(
        self, verification: WorkerVerification, now: float, quote_hash: bytes
    ) -> None:
        self._verified[verification.address.raw] = (now, quote_hash, verification)

    def cached_registration(
        self, worker: Address, head: int
    ) -> tuple[WorkerRecord, bool, int] | None:
        """The registry entry read at our current head, if read there already: every answer
        is judged by the registration and endorsement at the newest block we know."""
        found = self._registrations.get(worker.raw)
        if found is None or found[0] != head:
            return None
        return found[1], found[2], found[3]

    def last_measurement(self, worker: Address) -> bytes | None:
        """The measurement of the registry entry last read for ``worker``, at any head."""
        found = self._registrations.get(worker.raw)
        return None if found is None else found[1].measurement

    def remember_registration(
        self, worker: Address, head: int, record: WorkerRecord, allowed: bool, until: int
    ) -> None:
        self._registrations[worker.raw] = (head, record, allowed, until)

    def forget_verification(self, worker: Address) -> None:
        self._verified.pop(worker.raw, None)
        self._registrations.pop(worker.raw, None)

    def known_boot(self, worker: Address) -> bytes | None:
        with self._lock:
            return self._boot_ids.get(worker.raw)

    def note_boot(self, worker: Address, boot_id: bytes) -> None:
        with self._lock:
            self._boot_ids[worker.raw] = boot_id

    @staticmethod
    def parse_boot_id(value: Any) -> bytes | None:
        """A boot id as ``/v1/health`` or a ``runtime_query_stale`` refusal gives it, or None."""
        if not isinstance(value, str) or not value.startswith("0x") or len(value) != 66:
            return None
        try:
            return bytes.fromhex(value[2:])
        except ValueError:
            return None

    def worker_url(self, worker: Address) -> str | None:
        """Where ``worker`` serves: network.json first, else what its registration published
        on chain (as far as this client has read it)."""
        known = self.config.workers.get(worker) or self.config.gatekeepers.get(worker)
        if known:
            return known
        for _, urls in self._discovered.values():
            if worker.raw in urls:
                return urls[worker.raw]
        return None

    def fresh_discovery(self, cluster: bytes, now: float) -> dict[bytes, str] | None:
        found = self._discovered.get(cluster)
        if found is None or now - found[0] > C.DISCOVERY_TTL_S:
            return None
        return found[1]

    def check_registration(
        self,
        worker: Address,
        record: WorkerRecord,
        *,
        measurement_allowed: bool,
        cluster: bytes | None,
        endorsed_until: int | None = None,
        now: float | None = None,
    ) -> None:
        """Step 2a, from ``Registry.workers(addr)``: registered, endorsed (and, given
        ``endorsed_until`` from ``Registry.endorsed_until(addr)``, not expired at ``now``, the
        client's clock), allowed, a member.

        Raises:
            WorkerUnverified: not registered, not endorsed, endorsement expired, disallowed
                measurement, or not a member of ``cluster``.
        """
        if not record.is_registered:
            raise WorkerUnverified(f"{worker.hex} is not a registered worker", worker=worker.hex)
        if not 1 <= record.confidence <= self.max_confidence:
            raise WorkerUnverified(
                f"{worker.hex} is not endorsed at an acceptable confidence level "
                f"(on chain: {record.confidence}, accepted: 1..{self.max_confidence})",
                worker=worker.hex,
            )
        if endorsed_until is not None and endorsed_until <= (time.time() if now is None else now):
            raise WorkerUnverified(
                f"{worker.hex}'s endorsement expired (valid until {endorsed_until}); it must "
                "re-attest",
                worker=worker.hex,
                endorsed_until=endorsed_until,
            )
        if not measurement_allowed:
            raise WorkerUnverified(
                f"{worker.hex} runs a measurement the network no longer allows", worker=worker.hex
            )
        if cluster is not None and record.cluster != cluster:
            raise WorkerUnverified(
                f"{worker.hex} does not serve the contract's cluster", worker=worker.hex
            )

    def trust_root(self) -> TrustRoot:
        if self._root is not None:
            return self._root
        if not self.insecure_dev_tee:
            self._root = TrustRoot.intel()
            return self._root
        der = self.config.attestation_root_ca
        if der is None and self.config.network_seed is not None:
            from veilnet.tee import DevEnclave

            der = DevEnclave(self.config.network_seed, allow_insecure_dev_tee=True).root_ca_der
        if der is None:
            self._root = TrustRoot.intel()
        else:
            self._root = TrustRoot.from_der(der, allow_insecure_dev_tee=True)
        return self._root

    def policy(self, measurement: bytes | None) -> Policy:
        allowed = None if measurement is None else frozenset({measurement})
        if self.trust_root().is_dev:
            return Policy.development(
                allowed_measurements=allowed, max_confidence_level=self.max_confidence
            )
        return Policy(allowed_measurements=allowed, max_confidence_level=self.max_confidence)

    def verify_attestation_at(
        self,
        worker: Address,
        document: Any,
        *,
        nonce: bytes,
        measurement: bytes,
        confidence: int,
        cluster: bytes,
        url: str | None,
        at: int,
    ) -> WorkerVerification:
        """Step 2b: a fresh ``/v1/attestation`` answer binds this worker and our nonce.

        Raises:
            WorkerUnverified: wrong shape, wrong report_data, or the quote does not verify.
        """
        try:
            if Address.parse(str(document["address"])).raw != worker.raw:
                raise WorkerUnverified("the attestation is for another worker", worker=worker.hex)
            quote = _unhex(document["quote"])
            collateral_doc = document["collateral"]
            collateral = Collateral.from_json(
                collateral_doc if isinstance(collateral_doc, str) else json.dumps(collateral_doc)
            )
        except WorkerUnverified:
            raise
        except (KeyError, TypeError, ValueError, VeilnetError) as exc:
            raise WorkerUnverified(
                "the worker's attestation document is malformed", worker=worker.hex
            ) from exc
        if not self.config.config_digest:
            raise WorkerUnverified(
                "the network config has no config_digest: nothing to check the worker's "
                "enclave configuration against",
                worker=worker.hex,
            )
        expected = attestation_report_data(
            worker=worker.raw, nonce=nonce, config_digest=self.config.config_digest
        )
        try:
            report = verify_quote_at(
                quote,
                collateral,
                at=at,
                policy=self.policy(measurement),
                root=self.trust_root(),
                expected_report_data=expected,
            )
        except VeilnetError as exc:
            hint = ""
            if self.config.insecure_dev_tee and not self.insecure_dev_tee:
                hint = (
                    "; this network runs the INSECURE development TEE: trust its root only on "
                    "purpose (allow_insecure_dev_tee=True, CLI --insecure-dev-tee)"
                )
            raise WorkerUnverified(
                f"{worker.hex}: attestation failed ({exc.code}: {exc.message}){hint}",
                worker=worker.hex,
            ) from exc
        if not report.accepted:
            raise WorkerUnverified(
                f"{worker.hex}: attestation rejected ({'; '.join(report.reasons)})",
                worker=worker.hex,
            )
        return WorkerVerification(
            address=worker,
            url=url,
            cluster=cluster,
            confidence=confidence,
            measurement=measurement,
            tee=report.tee.value,
            trust_root=report.trust_root,
            verified_at=at,
            warnings=report.warnings,
        )

    # ---- worker HTTP errors --------------------------------------------------------------

    @staticmethod
    def worker_error(status: int, body: bytes, worker: str) -> VeilnetError:
        """The SDK error for a non-200 answer of a worker's ``/v1/query``: by the worker's
        code (``WORKER_ERRORS``), else by the HTTP status, else ``WorkerRefused``."""
        code: str | None = None
        message = f"HTTP {status}"
        try:
            doc = json.loads(body)
            if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
                found = doc["error"].get("code")
                code = None if found is None else str(found)
                message = str(doc["error"].get("message", message))[:300]
        except ValueError:
            pass
        kind = (WORKER_ERRORS.get(code) if code else None) or _STATUS_ERRORS.get(status)
        if kind is None:
            kind = (
                WorkerUnavailable if status >= HTTPStatus.INTERNAL_SERVER_ERROR else WorkerRefused
            )
        details: dict[str, Any] = {} if code is None else {"worker_code": code}
        if code == WORKER_QUERY_STALE:
            details["boot_id"] = _error_detail(body, "boot_id")
        retry_after = _retry_after(body) if kind is RateLimited else None
        if retry_after is not None:
            details["retry_after_s"] = retry_after
        reason = message if code is None else f"{code}: {message}"
        text = _WORKER_MESSAGES.get(kind, "{worker} refused the query: {reason}")
        return kind(text.format(worker=worker, reason=reason), **details)

    # ---- audit ---------------------------------------------------------------------------

    def audit_entry(
        self,
        event: Any,
        collateral: bytes | None,
        *,
        at: int,
        measurement_allowed: bool,
        confidence_on_chain: int,
        kind: str = "registration",
        collateral_source: str = "registrant",
        collateral_error: str | None = None,
    ) -> AuditEntry:
        """Re-verify one ``WorkerRegistered`` record (quote from the event; collateral posted
        by the worker, or fetched by the verifier from ``collateral_source``, a PCCS URL) at
        time ``at`` under today's allowlist (``kind``: ``registration``, or ``reattestation``
        for a record from ``quotes_on_chain``). ``collateral_error``: why none was fetched."""
        reasons: list[str] = []
        confidence: int | None = None
        expires: int | None = None
        if not measurement_allowed:
            reasons.append(
                "measurement_not_allowed: the measurement was removed from the allowlist"
            )
        if confidence_on_chain == 0:
            reasons.append("not_endorsed: the gatekeepers have not endorsed this registration")
        if collateral is None:
            reasons.append(
                collateral_error or "collateral_missing: the worker never posted its collateral"
            )
        else:
            expected = registration_report_data(
                worker=event.worker.raw,
                operator=event.operator.raw,
                hpke_key=event.hpke_key,
                chain_id=self.config.chain_id,
                registry=self.config.registry.raw,
                config_digest=self.config.config_digest,
                attested_hash=event.attested_hash,
            )
            try:
                report = verify_quote_at(
                    event.quote,
                    Collateral.from_json(collateral),
                    at=at,
                    policy=self.policy(event.measurement),
                    root=self.trust_root(),
                    expected_report_data=expected,
                )
                confidence = report.confidence_level
                expires = report.collateral_expires_at
                reasons.extend(report.reasons)
            except VeilnetError as exc:
                reasons.append(f"{exc.code}: {exc.message}")
        return AuditEntry(
            worker=event.worker,
            block_number=event.block_number,
            tee_kind=event.tee_kind,
            measurement=event.measurement,
            measurement_allowed=measurement_allowed,
            confidence_on_chain=confidence_on_chain,
            passed=not reasons,
            confidence=confidence,
            reasons=tuple(reasons),
            collateral_expires_at=expires,
            kind=kind,
            collateral_source=collateral_source,
        )

    @staticmethod
    def collateral_from_pccs(pccs: str, quote: bytes) -> tuple[bytes | None, str | None]:
        """(collateral JSON, None) for ``quote`` from the PCCS-compatible service at ``pccs``,
        or (None, the reason) when it gives none."""
        from veilnet.attestation.pccs import fetch_collateral

        try:
            return fetch_collateral(pccs, quote).to_json(), None
        except VeilnetError as exc:
            return None, f"{exc.code}: {exc.message}"

    @staticmethod
    def quotes_on_chain(registrations: list[Any], reattestations: list[Any]) -> list[Any]:
        """Every quote on chain in block order, as ``(kind, WorkerRegistered)`` pairs: a
        ``WorkerReattested`` becomes the registration before it with the fresh quote,
        collateral hash and attested block (what gatekeepers judged it as)."""
        ordered = sorted(
            [(e.block_number, e.log_index, "registration", e) for e in registrations]
            + [(e.block_number, e.log_index, "reattestation", e) for e in reattestations],
            key=lambda item: (item[0], item[1]),
        )
        latest: dict[bytes, Any] = {}
        out: list[Any] = []
        for _, _, kind, event in ordered:
            if kind == "registration":
                latest[event.worker.raw] = event
                out.append((kind, event))
                continue
            base = latest.get(event.worker.raw)
            if base is None:  # the Registry refuses a re-attestation without a registration
                continue
            out.append(
                (
                    kind,
                    dataclasses.replace(
                        base,
                        quote=event.quote,
                        quote_hash=event.quote_hash,
                        collateral_hash=event.collateral_hash,
                        attested_block=event.attested_block,
                        attested_hash=event.attested_hash,
                        registration=event.registration,
                        block_number=event.block_number,
                        log_index=event.log_index,
                        tx_hash=event.tx_hash,
                    ),
                )
            )
        return out

    @staticmethod
    def collateral_from_egress(payload: bytes) -> bytes | None:
        """Decompress a collateral egress payload (bounded); None when it is not one."""
        decompressor = zlib.decompressobj()
        try:
            out = decompressor.decompress(payload, 256 * 1024)
        except zlib.error:
            return None
        if decompressor.unconsumed_tail or not decompressor.eof:
            return None
        return out


OUTCOME_APPLIED = "applied"
"""``status`` of an outcome answer once the command has been applied (else ``pending``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """A worker's decrypted answer: an agent call's result, or a command's outcome."""

    status: str | None
    """Outcome queries only: ``applied`` or ``pending``; call answers carry none."""
    ok: bool | None
    result: Any
    events: tuple[Any, ...]
    fuel: int
    error: Mapping[str, Any] | None
    """``{"code", "message"}`` when ``ok`` is False."""

    @property
    def is_applied(self) -> bool:
        return self.status == OUTCOME_APPLIED


def json_bytes(value: Any, what: str) -> bytes:
    """Compact JSON of what an agent receives; ValueError (never a bare TypeError) otherwise,
    with the usual cause named: ids are ``0x`` strings (``Agent.id``), not bytes."""
    try:
        return json.dumps(value, separators=(",", ":")).encode()
    except (TypeError, ValueError) as exc:
        hint = " (pass an agent's id as agent.id, a 0x string)" if "bytes" in str(exc) else ""
        raise ValueError(f"{what} cannot be sent as JSON: {exc}{hint}") from exc


def read_outcome(value: Mapping[str, Any]) -> Outcome:
    """The one reader of the answer documents the core seals (``{"ok", "result", "error",
    "events", "fuel"}``, with ``status`` for outcome queries).

    Raises:
        ResponseInvalid: a field has the wrong type (the worker signed something malformed).
    """
    status, ok = value.get("status"), value.get("ok")
    events, fuel, error = value.get("events") or [], value.get("fuel") or 0, value.get("error")
    if status is not None and not isinstance(status, str):
        raise ResponseInvalid("the answer's status is not a string")
    if ok is not None and not isinstance(ok, bool):
        raise ResponseInvalid("the answer's ok is not a boolean")
    if not isinstance(events, list):
        raise ResponseInvalid("the answer's events are not a list")
    if isinstance(fuel, bool) or not isinstance(fuel, int):
        raise ResponseInvalid("the answer's fuel is not an integer")
    if error is not None and not isinstance(error, Mapping):
        raise ResponseInvalid("the answer's error is not an object")
    return Outcome(
        status=status,
        ok=ok,
        result=value.get("result"),
        events=tuple(events),
        fuel=fuel,
        error=error,
    )


def agent_failure(error: Mapping[str, Any] | None) -> AgentFailed:
    """The AgentFailed for an outcome's ``error`` (``{"code", "message"}``)."""
    code = AgentFailed.code  # the worker named none: the SDK's own
    message = "the agent failed"
    if error is not None:
        code = str(error.get("code", code))
        message = str(error.get("message", message))[:500]
    return AgentFailed(f"{code}: {message}", agent_code=code)


def _unhex(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    text = str(value)
    body = text[2:] if text[:2] in ("0x", "0X") else text
    return bytes.fromhex(body if len(body) % 2 == 0 else "0" + body)


def _revert_reason(message: str, data: Any) -> str:
    if isinstance(data, str) and data.startswith("0x") and len(data) > 10:
        from veilnet.chain.rpc import revert_reason

        try:
            return revert_reason(_unhex(data))
        except ValueError:
            pass
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return str(data["message"])[:200]
    text = message
    for marker in ("execution reverted: ", "reverted: ", "revert "):
        if marker in text:
            return text.split(marker, 1)[1][:200]
    return text[:200] or "reverted"


Hook = Callable[[str], None]
"""Progress callback: receives one short human-readable line per step."""

_STATUS_ERRORS: Mapping[int, type[VeilnetError]] = {
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: RequestTooLarge,
    HTTPStatus.TOO_MANY_REQUESTS: RateLimited,
}
"""What a refusal means when its body names no code the SDK knows (a proxy's 429, say)."""

_WORKER_MESSAGES: Mapping[type[VeilnetError], str] = {
    RequestTooLarge: "{worker} refused the request as too large",
    RateLimited: "{worker} rate-limited this client",
    WorkerUnavailable: "{worker}: {reason}",
}


def _error_detail(body: bytes, name: str) -> Any:
    """One detail of a worker's ``{"error": {...}}`` body, or None."""
    try:
        doc = json.loads(body)
        return doc["error"][name]
    except (ValueError, KeyError, TypeError):
        return None


def _retry_after(body: bytes) -> float | None:
    """The wait a worker's 429 body names (``retry_after_s``), if it names a sane one."""
    try:
        doc = json.loads(body)
        value = doc["error"]["retry_after_s"]
    except (ValueError, KeyError, TypeError):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 3600:
        return None
    return float(value)
