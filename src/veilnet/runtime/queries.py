"""Queries: open an encrypted, certified request, run the agent on committed state, seal and sign.
``prepare`` runs under the host's lock (fast); ``run`` touches no mutable core state."""

from __future__ import annotations

import heapq
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

from veilnet.codec import CodecError, decode
from veilnet.crypto import (
    Address,
    EnvelopeInvalid,
    KeyInvalid,
    QuerySession,
    SignatureInvalid,
    UnsupportedVersion,
    peek_envelope,
)
from veilnet.errors import VeilnetError
from veilnet.protocol import envelopes as proto
from veilnet.protocol import events as ev
from veilnet.protocol import limits
from veilnet.protocol.errors import IdentityFlagged, QueryStale, StateDiverged
from veilnet.protocol.outcomes import OutcomeRecord
from veilnet.runtime import agents, constants, contracts
from veilnet.runtime.agents import AgentHost, CallJournal, QueryIO, Snapshot
from veilnet.runtime.commitments import cluster_commitment
from veilnet.runtime.context import CoreContext
from veilnet.runtime.errors import (
    ContractPaused,
    ContractUnavailable,
    KeyEpochExpired,
    NotReady,
    QueryRejected,
)
from veilnet.runtime.replicated import ContractRuntime
from veilnet.sandbox.errors import SandboxError
from veilnet.sandbox.interfaces import Context, Entry, JSONValue

QUERY_SEQ = -2
"""The ``seq`` queries run under (randomness differs from any command's)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PreparedQuery:
    """A checked, opened query and the snapshot it reads (from ``prepare``)."""

    contract_id: bytes
    wallet: bytes
    session: QuerySession = field(repr=False)
    """Seals the answer so that only the client's certified query key can open it."""
    request_id: bytes
    msg: Any
    answer: Any
    """Already computed (outcome queries; a list's is an ``OutcomeBatch``, built into JSON when
    the query runs, outside the core lock); None when the agent must run."""
    head: ev.BlockHeader
    commitment: bytes
    snapshot: dict[bytes, Snapshot] = field(repr=False)


class ReplayCache:
    """Request ids already answered (per wallet), and certificates already verified.

    A request id is remembered until its query window passes (``QUERY_WINDOW_BLOCKS`` after
    the block it names, sooner if its certificate expires first), so the cache is bounded by
    time; expired ids are dropped by expiry block, oldest first, each once: no query pays for a
    scan of the whole cache. The cache lives in memory only: a query names the worker and its
    boot id, so a restarted core (new boot id) or another replica refuses what this one saw.
    """

    __slots__ = ("_expiries", "_expiring", "certificates", "seen")

    def __init__(self) -> None:
        self.seen: dict[bytes, int] = {}
        self._expiring: dict[int, list[bytes]] = {}
        """Expiry block → the replay keys that expire then."""
        self._expiries: list[int] = []
        """A heap of the expiry blocks in ``_expiring``."""
        self.certificates: dict[bytes, None] = {}
        """Digests of certificate bytes (signature included) already verified: clients reuse
        one certificate for many queries; expiry is still checked on every query."""

    def remember_certificate(self, digest: bytes) -> None:
        if len(self.certificates) >= constants.MAX_CACHED_CERTIFICATES:
            del self.certificates[next(iter(self.certificates))]
        self.certificates[digest] = None

    def remember_query(self, replay_key: bytes, expires: int, now: int) -> None:
        self.forget_expired(now)
        self.seen[replay_key] = expires
        bucket = self._expiring.get(expires)
        if bucket is None:
            bucket = self._expiring[expires] = []
            heapq.heappush(self._expiries, expires)
        bucket.append(replay_key)

    def forget_expired(self, now: int) -> None:
        """Drop the ids whose certificates expired before block ``now`` (they cannot be used
        again anyway: an expired certificate is refused first)."""
        while self._expiries and self._expiries[0] < now:
            for key in self._expiring.pop(heapq.heappop(self._expiries)):
                del self.seen[key]  # each id is remembered once: a second use is refused


def prepare(core: CoreContext, replay: ReplayCache, request: bytes) -> PreparedQuery:
    """Check and open a query, and snapshot the committed state it may read (fast).

    Raises:
        QueryRejected: malformed request, bad or expired certificate, another worker, a passed
            window, a replayed request id. QueryStale: sealed for an earlier boot of this core.
        ContractUnavailable / NotReady / KeyEpochExpired: as their names say (NotReady also
            when the query's window lies ahead of this core's head).
        IdentityFlagged: this worker identity was caught running twice.
    Nothing changes but the replay cache of request ids.
    """
    head = core.state.head
    if head is None:
        raise NotReady("no block applied yet")
    if core.address in core.state.flagged:
        raise IdentityFlagged("the Registry flagged this worker identity: it serves nothing more")
    diverged = core.state.divergences.get(core.address)
    if diverged is not None:
        raise StateDiverged(
            "the Registry found this worker's state against its cluster's majority: it serves "
            "nothing until it registers again",
            height=diverged,
        )
    if core.state.snapshot_due:
        # joined a cluster with history: until a snapshot checked against the cluster's
        # verdict arrives, it holds no state of the cluster, and it signs no answer on it
        raise NotReady("this worker waits for its cluster's state (a snapshot) before it serves")
    if len(request) > limits.MAX_QUERY_ENVELOPE:
        raise QueryRejected("query is larger than allowed", max_size=limits.MAX_QUERY_ENVELOPE)
    try:
        parsed = proto.QueryRequest.from_bytes(request, max_size=limits.MAX_QUERY_ENVELOPE)
        cert = parsed.certificate
        cert_digest = cert.digest
        if cert_digest not in replay.certificates:
            cert.verify()
            replay.remember_certificate(cert_digest)
    except (CodecError, SignatureInvalid) as exc:
        raise QueryRejected(exc.message) from exc
    if cert.chain_id != core.config.chain_id:
        raise QueryRejected("certificate is for another chain")
    if cert.expires_block < head.number:
        raise QueryRejected("certificate has expired", expired_at=cert.expires_block)
    if cert.expires_block > head.number + limits.QUERY_CERT_MAX_BLOCKS:
        raise QueryRejected("certificate lifetime is too long")
    contract = core.state.contracts.get(parsed.contract_id)
    if contract is None or contract.epoch == 0:
        raise ContractUnavailable("unknown or unkeyed contract")
    runtime = core.state.runtimes.get(parsed.contract_id)
    if runtime is None:
        raise NotReady("this worker does not serve the contract's cluster")
    try:
        epoch = peek_envelope(parsed.session).epoch
    except VeilnetError as exc:
        raise QueryRejected(exc.message) from exc
    contracts.contract_key_at(core, head, parsed.contract_id, contract, epoch)
    try:
        session = core.keys.query_session(
            contract.cluster,
            parsed.contract_id,
            epoch,
            parsed.session,
            cert.ephemeral_key,
            chain_id=core.config.chain_id,
        )
        if session is None:
            raise KeyEpochExpired("the key of this epoch is no longer held", epoch=epoch)
        inner = proto.QueryPlaintext.from_bytes(
            session.open(parsed.ciphertext, request_id=parsed.request_id, direction="request")
        )
    except (CodecError, EnvelopeInvalid, UnsupportedVersion, KeyInvalid) as exc:
        raise QueryRejected(exc.message) from exc
    except ValueError as exc:
        raise QueryRejected("malformed query") from exc
    if not hmac.compare_digest(inner.certificate_digest, cert_digest):
        raise QueryRejected("query was made under another certificate")
    # Request ids are remembered by this boot of this worker only, so a query must name both:
    # neither a restart nor another replica can be shown a query it answered before.
    if inner.worker != core.address:
        raise QueryRejected("query is addressed to another worker")
    if not hmac.compare_digest(inner.boot_id, core.boot_id):
        raise QueryStale(
            "query was sealed for an earlier boot of this worker", boot_id="0x" + core.boot_id.hex()
        )
    if inner.window > head.number + limits.QUERY_WINDOW_AHEAD:
        raise NotReady(
            "this worker is behind the client's chain view", block=head.number, window=inner.window
        )
    if head.number > inner.window + limits.QUERY_WINDOW_BLOCKS:
        raise QueryRejected("query window has passed", window=inner.window, block=head.number)
    replay_key = cert.wallet + parsed.request_id
    if replay_key in replay.seen:
        raise QueryRejected("request id was already used")
    # A paused agent answers nothing, except its senders' outcomes: what their commands did
    # (an init that failed and paused it, for its owner) stays readable.
    if contract.paused and inner.kind != "outcome":
        raise ContractPaused("the contract is paused by its controller")
    answer: Any = None
    msg: JSONValue = None
    if inner.kind == "outcome":
        answer = _outcome_answer(runtime, cert, inner)
    elif inner.kind == "call":
        try:
            msg = json.loads(inner.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise QueryRejected("query body is not JSON") from exc
    else:
        raise QueryRejected("unknown query kind")
    expires = min(cert.expires_block, inner.window + limits.QUERY_WINDOW_BLOCKS)
    replay.remember_query(replay_key, expires, head.number)
    served = served_cluster(core, contract.cluster)
    return PreparedQuery(
        contract_id=parsed.contract_id,
        wallet=cert.wallet,
        session=session,
        request_id=parsed.request_id,
        msg=msg,
        answer=answer,
        head=head,
        commitment=served.commitment,
        snapshot=served.contracts,
    )


@dataclass(frozen=True, slots=True)
class ServedCluster:
    """What queries of one cluster read at one block: a snapshot of each served contract's
    committed state, and the cluster commitment at that block (what its members post)."""

    contracts: dict[bytes, Snapshot]
    commitment: bytes


def served_cluster(core: CoreContext, cluster_id: bytes) -> ServedCluster:
    """Copies of the committed state of every served contract of a cluster (queries and
    the agent calls they make read only these), with the cluster commitment a client can
    check against the Registry's verdict. Made once per block and cluster: copying every
    state or hashing every digest on every query would cost O(state) per query."""
    found: ServedCluster | None = core.query_snapshots.get(cluster_id)
    if found is None:
        state = core.state
        previous = core.served_snapshots.get(cluster_id, {})
        kept: dict[bytes, tuple[object, Any]] = {}
        contracts: dict[bytes, Snapshot] = {}
        for cid, info in state.contracts.items():
            runtime = state.runtimes.get(cid)
            if info.cluster != cluster_id or runtime is None:
                continue
            values = runtime.state.view()  # the same object until the state is written
            key = core.keys.contract_key(cluster_id, cid, info.epoch)
            last = previous.get(cid)
            snapshot: Snapshot
            if (
                last is not None
                and last[0] is info  # records are replaced on change: epoch, egress hosts
                and last[1].values is values
                and last[1].key is key
                and last[1].secrets == runtime.secrets
            ):
                snapshot = last[1]
            else:
                snapshot = Snapshot(
                    values=values,
                    secrets=dict(runtime.secrets),
                    epoch=info.epoch,
                    key=key,
                    egress_hosts=frozenset(info.egress_hosts),
                )
            contracts[cid] = snapshot
            kept[cid] = (info, snapshot)
        core.served_snapshots[cluster_id] = kept
        commitment = cluster_commitment(core, cluster_id) or bytes(32)
        found = core.query_snapshots[cluster_id] = ServedCluster(contracts, commitment)
    return found


def run(core: CoreContext, prepared: PreparedQuery, *, io: QueryIO | None = None) -> bytes:
    """Run a prepared query on its snapshot, then encrypt and sign the answer."""
    result = prepared.answer
    if result is None:
        result = run_agent(core, prepared, io=io).to_public()
    elif isinstance(result, OutcomeBatch):
        result = result.answer()
    ciphertext = prepared.session.seal(
        json.dumps(result, sort_keys=True, separators=(",", ":")).encode(),
        request_id=prepared.request_id,
        direction="response",
    )
    response = proto.sign_response(
        core.keys.identity,
        core.config.response_domain,
        request_id=prepared.request_id,
        contract_id=prepared.contract_id,
        block_number=prepared.head.number,
        block_hash=prepared.head.hash,
        state_commitment=prepared.commitment,
        ciphertext=ciphertext,
    )
    return response.to_bytes()


def _outcome_answer(
    runtime: ContractRuntime, cert: proto.QueryCertificate, inner: proto.QueryPlaintext
) -> Any:
    """One command's outcome (the body is its ``seq``), or several at once (a list of up to
    ``MAX_OUTCOMES_PER_QUERY`` distinct seqs, answered ``{"outcomes": [...]}`` in their order
    by ``OutcomeBatch``), so a sender of many commands verifies them with one query. Every one
    must be the caller's. Only the checks run here, under the core lock; the answer is built
    when the query runs."""
    try:
        asked = decode(inner.body)
    except CodecError as exc:
        raise QueryRejected("outcome query needs a sequence number") from exc
    if isinstance(asked, list):
        if not 1 <= len(asked) <= limits.MAX_OUTCOMES_PER_QUERY:
            raise QueryRejected(
                "an outcome query names 1 to MAX_OUTCOMES_PER_QUERY commands",
                max_outcomes=limits.MAX_OUTCOMES_PER_QUERY,
            )
        found = [_one_outcome(runtime, cert, seq) for seq in asked]
        if len(set(asked)) != len(asked):  # ints, checked above: hashable
            raise QueryRejected("an outcome query names each command once")
        return OutcomeBatch(tuple(found))
    return _answer(_one_outcome(runtime, cert, asked))


@dataclass(frozen=True, slots=True)
class OutcomeBatch:
    """The outcomes an outcome query's list named (None: not applied yet), checked to be the
    caller's. ``answer()`` builds the JSON outside the core lock; past
    ``MAX_OUTCOMES_ANSWER_BYTES`` the rest are ``{"status": "later"}``, serialized no more."""

    outcomes: tuple[OutcomeRecord | None, ...]

    def answer(self) -> dict[str, Any]:
        answers: list[Any] = []
        size = 0
        for outcome in self.outcomes:
            if size <= limits.MAX_OUTCOMES_ANSWER_BYTES:  # else the budget is spent already
                answer = _answer(outcome)
                size += len(json.dumps(answer, separators=(",", ":")))
                if not answers or size <= limits.MAX_OUTCOMES_ANSWER_BYTES:
                    answers.append(answer)
                    continue
            answers.append({"status": "later"})  # asked again: large results fill one answer
        return {"outcomes": answers}


def _answer(outcome: OutcomeRecord | None) -> dict[str, Any]:
    if outcome is None:
        return {"status": "pending"}
    return {"status": "applied", **outcome.to_public()}


def _one_outcome(
    runtime: ContractRuntime, cert: proto.QueryCertificate, seq: Any
) -> OutcomeRecord | None:
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise QueryRejected("outcome query needs a sequence number")
    outcome = runtime.outcomes.get(seq)
    if outcome is not None and outcome.sender != cert.wallet:
        raise QueryRejected("only the command's sender may read its outcome")
    return outcome


def run_agent(core: CoreContext, prepared: PreparedQuery, *, io: QueryIO | None) -> OutcomeRecord:
    """The agent's ``query`` entry on the prepared snapshot (nothing sealed or signed)."""
    return run_on_snapshot(
        core,
        entry=Entry.QUERY,
        head=prepared.head,
        contract_id=prepared.contract_id,
        caller=prepared.wallet,
        msg=prepared.msg,
        snapshot=prepared.snapshot,
        seq=QUERY_SEQ,
        nonce=prepared.wallet + prepared.request_id,
        io=io,
    )


def run_on_snapshot(
    core: CoreContext,
    *,
    entry: Entry,
    head: ev.BlockHeader,
    contract_id: bytes,
    caller: bytes,
    msg: JSONValue,
    snapshot: dict[bytes, Snapshot],
    seq: int,
    nonce: bytes,
    io: QueryIO | None,
) -> OutcomeRecord:
    """Run a read-only entry (``query``, ``job``) of an agent on a snapshot of committed
    state, in that entry's mode; what it raised or threw becomes a failure outcome."""
    ctx = Context(
        caller=Address(caller).hex,
        contract_id="0x" + contract_id.hex(),
        block_number=head.number,
        block_timestamp=head.timestamp,
        mode=entry.mode,
    )
    host = AgentHost(
        core, head, contract_id, ctx, CallJournal(), seq=seq, io=io, snapshot=snapshot, nonce=nonce
    )
    try:
        outcome = core.engine.invoke(
            agents.load_agent(core, contract_id), entry, msg, host, ctx, core.config.limits
        )
    except SandboxError as exc:
        return OutcomeRecord.failure(exc.code, exc.message, sender=caller)
    if outcome.error is not None:
        return OutcomeRecord.failure(
            outcome.error.code, outcome.error.message, sender=caller, fuel=outcome.fuel_used
        )
    return OutcomeRecord.success(
        sender=caller, result=outcome.result, events=outcome.events, fuel=outcome.fuel_used
    )
