"""The enclave interface: the only bytes that pass between a worker host and its enclave process.
Length-prefixed frames of canonical records, versioned; a sans-IO ``FrameReader`` splits a stream.

Theory of operation
-------------------
The host sends one ``Call`` per frame and reads frames until it gets that call's ``Result`` or
``Failure``. Those two envelopes, which every call crosses, have fixed byte layouts of their own
(a tag byte no canonical record starts with, then the operation and the body), so a request's
bytes are copied once, never encoded, walked and encoded again; every other frame is a
canonical record. While it answers a query or runs jobs, the enclave may send ``IORequest`` frames
first (an agent's ``llm.chat``, or the TLS records of its ``http.fetch``); the host answers each
with one ``IOResult`` and keeps reading.
One call is in flight per connection; a host that wants concurrency opens several connections.

Every ``Call.op`` names one operation in ``OPS``; its ``body`` is the operation's request record
(or raw bytes where the table says so) and the ``Result.body`` its reply. Nothing else is
reachable: there is no operation that returns keys, plaintext state or a core object.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Self

from veilnet.codec import CodecError, Oversized, Record, decode_record, record
from veilnet.errors import InvalidInput
from veilnet.protocol.chain import ChainTrust
from veilnet.protocol.egress import EgressMessage
from veilnet.protocol.events import BlockHeader
from veilnet.protocol.registration import RegistrationRequest

ENCLAVE_INTERFACE_VERSION: Final = 8
"""Bumped whenever an operation or a record of this module changes shape (2:
``register_transaction``, whose calldata the core builds, replaced ``sign_transaction``; 3:
``apply_block`` takes a raw ``ChainBlock`` the core proves itself, ``EnclaveConfig`` carries
the chain-trust policy, ``certify`` asks an RPC quorum over TLS ended in the core; master keys
and proposals come from TEE entropy and travel sealed in ``Applied``/``Boot.sealed_keys``; 4:
``jobs``; 5: agents' ``http.fetch`` runs in the core over ``IO_TLS``, ``EnclaveConfig``
carries ``egress_roots``, ``llm.chat`` is sealed to the gateway in the core over
``IO_GATEWAY``; 6: ``snapshot`` and ``sync`` replace ``resync``; 7: ``Call`` and ``Result``
frames are fixed byte layouts, not records; 8: ``queries``)."""
FRAME_HEADER_BYTES: Final = 4
_RECV_BYTES: Final = 1 << 16
READY_LINE: Final = "veil-enclave ready"
"""What the enclave process prints on stdout once it listens (its host waits for this line)."""
MAX_QUERY_BATCH: Final = 64
"""Most queries one ``queries`` call carries."""
MAX_FRAME_BYTES: Final = 256 * 1024 * 1024
"""Largest frame either side accepts: a checkpoint of a state of a million entries (about 100
MiB, each entry sealed on its own) fits; a block with many deployments stays far below."""

# Network parameters every replica shares (defaults of a network's EnclaveConfig).
DEFAULT_KEY_WINDOW_BLOCKS: Final = 200
"""Blocks an old contract/cluster key epoch stays usable after the next one is keyed."""
DEFAULT_COMMITMENT_INTERVAL: Final = 20
"""A worker posts its state commitment every this many blocks (0 disables)."""
DEFAULT_HEARTBEAT_INTERVAL: Final = 50
"""Blocks between a registered worker's heartbeats (liveness for ``veil status``; 0 disables).
Challenge-response rules arrive with the economy milestone."""
DEFAULT_MAX_CONFIDENCE_LEVEL: Final = 3
"""Lowest attestation confidence level (1 best .. 5 worst) a gatekeeper endorses."""

OP_HELLO: Final = "hello"
"""body: empty → ``Hello``: the interface version and the enclave's build."""
OP_BOOT: Final = "boot"
"""body: ``Boot`` → ``Booted``. Fresh, from a sealed identity, or from a checkpoint."""
OP_APPLY_BLOCK: Final = "apply_block"
"""body: ``ChainBlock`` bytes (RLP header, receipts, finality evidence) → ``Applied`` (egress
to post). The core proves the block itself; all or nothing."""
OP_CERTIFY: Final = "certify"
"""body: ``Certify`` → ``Certified``. Under ``rpc-quorum`` the core asks the policy's HTTPS
endpoints for block hashes, with ``IO_TLS`` requests whose bytes are TLS records only."""
OP_QUERY: Final = "query"
"""body: ``QueryRequest`` bytes → ``QueryResponse`` bytes (sealed and signed inside)."""
OP_ATTEST: Final = "attest"
"""body: 32-byte nonce → ``Attested``."""
OP_CHECKPOINT: Final = "checkpoint"
"""body: empty → ``Checkpointed``."""
OP_REGISTRATION: Final = "registration"
"""body: 20-byte operator address, then the worker's API URL in UTF-8 (may be empty) →
``RegistrationRequest``."""
OP_REGISTER_TRANSACTION: Final = "register_transaction"
"""body: ``RegisterTransaction`` (operator, nonce, gas, fees, reattest) → ``SignedRegistration``;
the core builds the ``Registry.register_worker`` (or ``reattest_worker``) calldata itself, so the
identity signs nothing else."""
OP_STATUS: Final = "status"
"""body: empty → ``Status``: public facts for the worker API."""
OP_CONTRACT: Final = "contract"
"""body: 32-byte contract id → ``ContractStatus``."""
OP_SNAPSHOT: Final = "snapshot"
"""body: a joiner's 20-byte address → the newest state of its cluster this member captured at a
commitment height, sealed to the joiner's encryption key (``veilnet.runtime.sync``)."""
OP_SYNC: Final = "sync"
"""body: a member's ``snapshot`` output → ``Synced``: the late joiner checked it against the
cluster's verdict, took it and applied the events it held back."""
OP_COLLATERAL: Final = "collateral"
"""body: empty → ``CollateralFetched``: a gatekeeper's core fetches the collateral of the
registrations it must judge from the network's PCCS, over ``IO_TLS`` requests that carry TLS
records only, and posts it with the next block's egress (``Applied.collateral_wanted`` says
when to call)."""
OP_QUERIES: Final = "queries"
"""body: ``QueryBatch`` → ``QueryAnswers``: each request answered as ``query`` would answer it
alone, one after another on this call (each opened and snapshotted under the core's lock,
each request id spent once), and each reply a ``Result`` or a ``Failure`` of its own. A host
batches the queries that wait while the enclave is busy: one thread answering them back to
back keeps the core's data in the CPU caches and never waits for the interpreter lock."""
OP_JOBS: Final = "jobs"
"""body: empty → ``Jobs``: run the job requests the applied blocks queued for served agents
(their ``job`` entry, on committed state) and return each result signed by the contract key,
for the host to deliver to its consumer."""

OPS: Final = frozenset(
    {
        OP_HELLO,
        OP_BOOT,
        OP_APPLY_BLOCK,
        OP_CERTIFY,
        OP_QUERY,
        OP_QUERIES,
        OP_ATTEST,
        OP_CHECKPOINT,
        OP_REGISTRATION,
        OP_REGISTER_TRANSACTION,
        OP_STATUS,
        OP_CONTRACT,
        OP_SNAPSHOT,
        OP_SYNC,
        OP_COLLATERAL,
        OP_JOBS,
    }
)

IO_LLM_CHAT: Final = "llm_chat"
"""Announced in ``Boot.io_kinds``: the host has an inference gateway for agents' ``llm.chat``
(the calls themselves travel as ``IO_GATEWAY``)."""
IO_GATEWAY: Final = "gateway"
"""body: ``GatewayCall`` → ``GatewayReply``: the host sends the call to its inference gateway
and returns the answer. The core sealed every prompt to the gateway's attested key and checks
every answer's receipt (``runtime.llm``): the host reads and forges nothing."""
IO_HTTP_FETCH: Final = "http_fetch"
"""Announced in ``Boot.io_kinds``: the host relays agents' ``http.fetch`` connections (the
requests themselves travel as ``IO_TLS``)."""
IO_EVM: Final = "evm_state"
"""Announced in ``Boot.io_kinds``, and the kind of its requests: body ``EVMWitnessRequest`` →
``EVMWitness``: the ``eth_getProof`` nodes (and code) of an account or slot at a block, for an
agent's ``evm.call``. The core keys each node by its hash from the verified state root."""
IO_TLS: Final = "tls"
"""body: ``TLSRelay`` → the bytes that arrived next on that connection (empty: closed). The
host sends ciphertext it cannot read or forge; the TLS session ends inside the core (agents'
plain ``http://`` to loopback, on the development TEE only, is the one exception). A relay the
host gave up on for time answers ``ok=False`` with code ``worker_io_timeout``."""


class FrameInvalid(InvalidInput):
    """A frame is larger than allowed, or its bytes are not a record of this interface."""

    code = "enclave_frame_invalid"


# ---- envelopes of every frame ------------------------------------------------------------


CALL_TAG: Final = 0xC1
"""First byte of a ``Call`` frame: ``0xC1, len(op), op (UTF-8), body``."""
RESULT_TAG: Final = 0xC2
"""First byte of a ``Result`` frame: ``0xC2, body``. A canonical record starts with the codec
version instead, so the first byte alone tells the layouts apart."""


@record("enclave.call")
@dataclass(frozen=True, slots=True, kw_only=True)
class Call(Record):
    """One operation and its request, laid out as ``CALL_TAG``'s docstring says."""

    op: str
    body: bytes

    def to_bytes(self) -> bytes:
        op = self.op.encode("utf-8")
        if len(op) > 255:
            raise FrameInvalid("an operation name is at most 255 bytes")
        return bytes((CALL_TAG, len(op))) + op + self.body

    @classmethod
    def from_bytes(cls, data: bytes, *, max_size: int = MAX_FRAME_BYTES) -> Self:
        """Raises CodecError: not a call's layout, or larger than ``max_size``."""
        if len(data) > max_size:
            raise Oversized("frame is larger than allowed", max_size=max_size)
        if len(data) < 2 or data[0] != CALL_TAG or len(data) < 2 + data[1]:
            raise CodecError("not a call")
        try:
            op = bytes(data[2 : 2 + data[1]]).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CodecError("an operation name is not UTF-8") from exc
        return cls(op=op, body=bytes(data[2 + data[1] :]))


@record("enclave.result")
@dataclass(frozen=True, slots=True, kw_only=True)
class Result(Record):
    """An operation's reply, laid out as ``RESULT_TAG``'s docstring says."""

    body: bytes

    def to_bytes(self) -> bytes:
        return bytes((RESULT_TAG,)) + self.body

    @classmethod
    def from_bytes(cls, data: bytes, *, max_size: int = MAX_FRAME_BYTES) -> Self:
        """Raises CodecError: not a result's layout, or larger than ``max_size``."""
        if len(data) > max_size:
            raise Oversized("frame is larger than allowed", max_size=max_size)
        if not data or data[0] != RESULT_TAG:
            raise CodecError("not a result")
        return cls(body=bytes(data[1:]))


@record("enclave.failure")
@dataclass(frozen=True, slots=True, kw_only=True)
class Failure(Record):
    """A typed error raised inside the enclave: its stable code, message and JSON details."""

    code: str
    message: str
    details: str = "{}"

    def details_dict(self) -> dict[str, Any]:
        try:
            found = json.loads(self.details)
        except ValueError:
            return {}
        return found if isinstance(found, dict) else {}


@record("enclave.query_batch")
@dataclass(frozen=True, slots=True, kw_only=True)
class QueryBatch(Record):
    """The sealed query requests of one ``queries`` call (at most ``MAX_QUERY_BATCH``)."""

    requests: tuple[bytes, ...]


@record("enclave.query_answers")
@dataclass(frozen=True, slots=True, kw_only=True)
class QueryAnswers(Record):
    """One reply per request of a ``QueryBatch``, in its order: a ``Result`` payload (the
    sealed, signed answer) or a ``Failure`` payload. ``used_io``: the positions of the queries
    whose agent asked the host for I/O (the host keeps their contracts out of later batches,
    so no query waits behind another's LLM call)."""

    replies: tuple[bytes, ...]
    used_io: tuple[int, ...] = ()


@record("enclave.io")
@dataclass(frozen=True, slots=True, kw_only=True)
class IORequest(Record):
    """The enclave asks the host for I/O an agent requested (JSON in ``body``)."""

    kind: str
    body: bytes


@record("enclave.io_result")
@dataclass(frozen=True, slots=True, kw_only=True)
class IOResult(Record):
    ok: bool
    body: bytes = b""
    code: str = ""
    message: str = ""


# ---- operation records --------------------------------------------------------------------


@record("enclave.config")
@dataclass(frozen=True, slots=True, kw_only=True)
class EnclaveConfig(Record):
    """What the enclave builds its core, platform, engine and verifier from. Its digest is what
    the enclave attests to; a host that hands in another configuration gets another digest."""

    chain_id: int
    registry: bytes
    bus: bytes
    chain_trust: ChainTrust
    """Where the core's chain starts and what makes a block final."""
    key_window_blocks: int
    commitment_interval: int
    heartbeat_interval: int
    max_confidence_level: int
    tee: str
    """``"dev"`` (the insecure development TEE), ``"dstack"`` or ``"gramine"``."""
    dev_network_seed: bytes | None = None
    """The devnet's PKI seed; only with ``tee == "dev"``."""
    gateway_measurements: tuple[bytes, ...] = ()
    """Allowed inference-gateway measurement ids (empty: the dev defaults on the dev TEE)."""
    egress_roots: bytes = b""
    """PEM CA certificates agents' ``http.fetch`` servers must chain to (a network parameter:
    its digest covers them); empty means the Mozilla roots the enclave image carries."""
    pccs_url: str = ""
    """``https://`` base URL of the PCCS-compatible service (Intel PCS v4 API) gatekeepers
    fetch registrants' collateral from, inside their cores; empty: judge under the collateral
    the registrant posted."""
    pccs_roots: bytes = b""
    """PEM CA certificates the PCCS's TLS certificate must chain to (with ``pccs_url``)."""

    @property
    def digest(self) -> bytes:
        """SHA-256 of the whole configuration's canonical bytes."""
        return hashlib.sha256(self.to_bytes()).digest()

    @property
    def network_digest(self) -> bytes:
        """What every replica of one network shares: the digest with the TEE backend left out
        (each operator picks its own, and the quote itself says which). The enclave binds it
        into its registration report data; gatekeepers and clients require their own value."""
        return hashlib.sha256(dataclasses.replace(self, tee="").to_bytes()).digest()

    def __repr__(self) -> str:
        return (
            f"EnclaveConfig(chain_id={self.chain_id}, registry=0x{self.registry.hex()}, "
            f"tee={self.tee!r}, digest=0x{self.digest.hex()[:16]}..)"
        )


@record("enclave.hello")
@dataclass(frozen=True, slots=True, kw_only=True)
class Hello(Record):
    version: int
    build: str


@record("enclave.boot")
@dataclass(frozen=True, slots=True, kw_only=True)
class Boot(Record):
    config: EnclaveConfig
    sealed_identity: bytes | None = None
    checkpoint: bytes | None = None
    sealed_keys: bytes | None = None
    """The newest ``Applied.sealed_keys`` the host stored (a boot without checkpoint)."""
    io_kinds: tuple[str, ...] = ()
    """The I/O the host serves to queries (``IO_LLM_CHAT``, ``IO_HTTP_FETCH``)."""


@record("enclave.booted")
@dataclass(frozen=True, slots=True, kw_only=True)
class Booted(Record):
    address: bytes
    sealed_identity: bytes
    head: BlockHeader | None
    snapshot_due: bytes | None
    """The cluster this worker joined with history and whose state it waits for: the host
    fetches a ``snapshot`` from a member and passes it to ``sync``."""
    boot_id: bytes
    """Drawn from TEE entropy at this boot: queries must name it (``QueryPlaintext.boot_id``)."""


@record("enclave.applied")
@dataclass(frozen=True, slots=True, kw_only=True)
class Applied(Record):
    egress: tuple[EgressMessage, ...]
    head: BlockHeader
    snapshot_due: bytes | None
    """As ``Booted.snapshot_due``."""
    sealed_keys: bytes | None = None
    """Set when the block drew a master key or rotation proposal from TEE entropy: the host
    stores it durably before it posts ``egress``, and hands it to the next boot."""
    diverged_at: int | None = None
    """Set once the Registry found this worker's state against its cluster's majority (the
    height): it serves nothing until it registers again (``/v1/health`` shows it)."""
    reattest_due: bool = False
    """This worker's endorsement expires within ``REATTEST_MARGIN_S`` of this block's time and
    no re-attestation is pending: the host should send ``RegisterTransaction(reattest=True)``."""
    jobs_pending: bool = False
    """Job requests are queued for agents this worker serves: the host should ask ``jobs``."""
    collateral_wanted: bool = False
    """This gatekeeper must fetch collateral from the network's PCCS: the host should call
    ``collateral`` (its ``IO_TLS`` requests relay the TLS records)."""


@record("enclave.collateral_fetched")
@dataclass(frozen=True, slots=True, kw_only=True)
class CollateralFetched(Record):
    fetched: int
    """Registrations whose collateral the core now holds, to post with the next block."""
    failures: tuple[str, ...] = ()
    """Per registration that failed, a short, secret-free reason (``tls_failed:handshake``,
    ``http_status:404``, ``collateral_invalid``)."""


@record("enclave.synced")
@dataclass(frozen=True, slots=True, kw_only=True)
class Synced(Record):
    height: int
    """The commitment height of the snapshot taken."""
    egress: tuple[EgressMessage, ...]
    """What applying the held-back events emitted: post it like a block's egress."""
    jobs_pending: bool = False


@record("enclave.certify")
@dataclass(frozen=True, slots=True, kw_only=True)
class Certify(Record):
    numbers: tuple[int, ...]


@record("enclave.certified")
@dataclass(frozen=True, slots=True, kw_only=True)
class Certified(Record):
    numbers: tuple[int, ...]
    hashes: tuple[bytes, ...]


@record("enclave.tls_relay")
@dataclass(frozen=True, slots=True, kw_only=True)
class TLSRelay(Record):
    """Send ``data`` on the host's connection ``conn`` to host:port (opened on first use) and
    return what arrives next."""

    conn: int
    host: str
    port: int
    data: bytes


@record("enclave.gateway_call")
@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayCall(Record):
    """One HTTP call to the host's inference gateway: ``path`` below its base URL."""

    method: str
    path: str
    body: bytes


@record("enclave.gateway_reply")
@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayReply(Record):
    status: int
    body: bytes


@record("enclave.evm_witness_request")
@dataclass(frozen=True, slots=True, kw_only=True)
class EVMWitnessRequest(Record):
    block: int
    address: bytes
    slot: bytes | None = None


@record("enclave.evm_witness")
@dataclass(frozen=True, slots=True, kw_only=True)
class EVMWitness(Record):
    nodes: tuple[bytes, ...]
    codes: tuple[bytes, ...]


@record("enclave.attested")
@dataclass(frozen=True, slots=True, kw_only=True)
class Attested(Record):
    quote: bytes
    collateral: bytes
    report_data: bytes


@record("enclave.register_transaction")
@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterTransaction(Record):
    """What the host may choose of the identity's one transaction: who operates the worker and
    what the chain needs to include it (nonce, gas, EIP-1559 fees)."""

    operator: bytes
    nonce: int
    gas: int
    max_fee_per_gas: int
    max_priority_fee_per_gas: int
    reattest: bool = False
    """A fresh quote of the existing registration (``Registry.reattest_worker``), which keeps
    the endorsement and cluster until it is judged, instead of a new registration."""
    deposit: int = 0
    """Wei sent along: ``Registry.registration_deposit`` (refunded to the operator once the
    registration is endorsed). The host's own money: the identity is funded by the operator."""
    api_url: str = ""
    """Where the host serves this worker's API; published in ``WorkerRegistered`` so clients
    find it (the core refuses one no client could dial: ``check_api_url``)."""


@record("enclave.signed_registration")
@dataclass(frozen=True, slots=True, kw_only=True)
class SignedRegistration(Record):
    request: RegistrationRequest
    raw: bytes
    """The signed EIP-1559 ``Registry.register_worker`` transaction, ready to broadcast."""


@record("enclave.checkpointed")
@dataclass(frozen=True, slots=True, kw_only=True)
class Checkpointed(Record):
    sealed: bytes
    block_number: int


@record("enclave.job_result")
@dataclass(frozen=True, slots=True, kw_only=True)
class JobResult(Record):
    """``VeilConsumer.fulfill(request_id, result, signature)`` on ``consumer``, due by block
    ``deadline``; the signature is the agent's contract key's (``veilnet.protocol.results``)."""

    consumer: bytes
    request_id: bytes
    result: bytes
    signature: bytes
    deadline: int
    schedule_id: int = 0
    """Non-zero for a standing job's tick: deliver with ``fulfill_tick(schedule_id, height,
    result, signature)`` instead."""
    height: int = 0


@record("enclave.jobs")
@dataclass(frozen=True, slots=True, kw_only=True)
class Jobs(Record):
    results: tuple[JobResult, ...]


@record("enclave.cluster_status")
@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterStatus(Record):
    cluster_id: bytes
    is_member: bool
    state_commitment: bytes | None


@record("enclave.status")
@dataclass(frozen=True, slots=True, kw_only=True)
class Status(Record):
    address: bytes
    tee: str
    measurement: bytes
    config_digest: bytes
    """``EnclaveConfig.network_digest`` of the configuration the enclave was built from."""
    head: BlockHeader | None
    cluster: bytes | None
    confidence: int | None
    clusters: tuple[ClusterStatus, ...]
    diverged_at: int | None = None
    """As ``Applied.diverged_at``."""


@record("enclave.contract_status")
@dataclass(frozen=True, slots=True, kw_only=True)
class ContractStatus(Record):
    contract_id: bytes
    cluster: bytes
    owner: bytes
    controller: bytes
    code_hash: bytes
    paused: bool
    epoch: int
    public_key: bytes
    key_address: bytes


# ---- framing (sans-IO) --------------------------------------------------------------------


def frame(item: Record) -> bytes:
    """One frame: the record's canonical bytes behind a 4-byte big-endian length."""
    return frame_bytes(item.to_bytes())


def frame_bytes(payload: bytes) -> bytes:
    """One frame around ``payload`` (a record's canonical bytes, already encoded)."""
    if len(payload) > MAX_FRAME_BYTES:
        raise FrameInvalid("frame is larger than allowed", max_size=MAX_FRAME_BYTES)
    return len(payload).to_bytes(FRAME_HEADER_BYTES, "big") + payload


def decode_frame(payload: bytes) -> Record:
    """The record a frame carries, decoded once (callers dispatch on its type).

    Raises:
        CodecError: the payload is not a record, or is a call or result in the codec's
            layout (each has exactly one encoding: its own).
    """
    if payload[:1] == bytes((CALL_TAG,)):
        return Call.from_bytes(payload)
    if payload[:1] == bytes((RESULT_TAG,)):
        return Result.from_bytes(payload)
    found = decode_record(payload, max_size=MAX_FRAME_BYTES)
    if isinstance(found, Call | Result):
        raise CodecError("a call or result is framed in its own layout")
    return found


class FrameReader:
    """Feed bytes as they arrive; ``next_frame`` returns each whole frame's payload once."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next_frame(self) -> bytes | None:
        """The next whole payload, or None while more bytes are needed.

        Raises:
            FrameInvalid: the announced length is over ``MAX_FRAME_BYTES`` (the stream is
                unusable after this; close it).
        """
        if len(self._buffer) < FRAME_HEADER_BYTES:
            return None
        size = int.from_bytes(self._buffer[:FRAME_HEADER_BYTES], "big")
        if size > MAX_FRAME_BYTES:
            raise FrameInvalid("frame is larger than allowed", max_size=MAX_FRAME_BYTES)
        end = FRAME_HEADER_BYTES + size
        if len(self._buffer) < end:
            return None
        payload = bytes(self._buffer[FRAME_HEADER_BYTES:end])
        del self._buffer[:end]
        return payload

    def read_frame(self, recv: Callable[[int], bytes]) -> bytes | None:
        """The next whole payload, calling ``recv`` (a socket's) for more bytes as needed;
        None once ``recv`` reports the end of the stream. Raises as ``next_frame``."""
        while (payload := self.next_frame()) is None:
            data = recv(_RECV_BYTES)
            if not data:
                return None
            self.feed(data)
        return payload
