"""The enclave process's side of the interface: one ``Call`` in, one ``Result`` or ``Failure`` out.
It owns the core; nothing of the core (keys, state, prepared queries) ever leaves as an object.

Theory of operation
-------------------
``handle(payload, io)`` decodes a ``Call``, runs the operation and encodes the reply; every
``VeilnetError`` becomes a ``Failure`` with its stable code, anything else a ``Failure`` that says
only its type (the message of an unexpected exception may carry data). Operations that change
the core (boot, apply, checkpoint, sync) run under one lock; a query is opened and snapshotted
under it and then runs outside it, so a slow agent never holds up block application. ``io`` is
how a query's agent reaches the host for ``llm.chat`` and ``http.fetch``: one ``IORequest`` out,
one ``IOResult`` back, on the connection that carried the query.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from veilnet.codec import CodecError
from veilnet.enclave.parts import Parts, build_parts, core_config
from veilnet.errors import InternalError, PolicyRejected, Unavailable, VeilnetError
from veilnet.protocol import enclave as wire
from veilnet.protocol.chain import ChainBlock
from veilnet.protocol.errors import ContractUnavailable
from veilnet.runtime import EnclaveCore, QueryIO
from veilnet.runtime.tls import Relay, TLSFailed

__all__ = [
    "EnclaveAlreadyBooted",
    "EnclaveIOFailed",
    "EnclaveNotBooted",
    "EnclaveService",
    "IOChannel",
]

_log = logging.getLogger("veilnet.enclave")

IOChannel = Callable[[wire.IORequest], wire.IOResult]
"""How the enclave asks its host for one piece of I/O while a query runs."""


class EnclaveNotBooted(Unavailable):
    """The enclave has no core yet: call ``boot`` first."""

    code = "enclave_not_booted"


class EnclaveAlreadyBooted(PolicyRejected):
    """``boot`` was called on an enclave that already runs a core."""

    code = "enclave_already_booted"


class EnclaveIOFailed(Unavailable):
    """The host did not carry out the I/O an agent asked for."""

    code = "enclave_io_failed"


class EnclaveService:
    """The operations of ``veilnet.protocol.enclave``, over one core.

    Args:
        parts: builds the platform, verifier and engine from the configuration; the default is
            the only one a real enclave uses (tests may pass fakes in an in-process enclave).
    """

    def __init__(
        self,
        *,
        parts: Callable[[wire.EnclaveConfig], Parts] = build_parts,
        after_boot: Callable[[], None] = lambda: None,
    ) -> None:
        """``after_boot``: called once a core runs (the enclave process freezes what it loaded
        out of the garbage collector's walks, ``veilnet._gc``)."""
        self._build_parts = parts
        self._after_boot = after_boot
        self._lock = threading.RLock()
        self._config: wire.EnclaveConfig | None = None
        self._parts: Parts | None = None
        self._core: EnclaveCore | None = None
        self._io_kinds: frozenset[str] = frozenset()
        self._ops: dict[str, Callable[[bytes, IOChannel | None], bytes]] = {
            wire.OP_HELLO: self._hello,
            wire.OP_BOOT: self._boot,
            wire.OP_APPLY_BLOCK: self._apply_block,
            wire.OP_CERTIFY: self._certify,
            wire.OP_QUERY: self._query,
            wire.OP_QUERIES: self._queries,
            wire.OP_ATTEST: self._attest,
            wire.OP_CHECKPOINT: self._checkpoint,
            wire.OP_REGISTRATION: self._registration,
            wire.OP_REGISTER_TRANSACTION: self._register_transaction,
            wire.OP_STATUS: self._status,
            wire.OP_CONTRACT: self._contract,
            wire.OP_SNAPSHOT: self._snapshot,
            wire.OP_SYNC: self._sync,
            wire.OP_COLLATERAL: self._collateral,
            wire.OP_JOBS: self._jobs,
        }
        if set(self._ops) != wire.OPS:
            raise RuntimeError("the enclave service and the interface disagree on operations")

    def close(self) -> None:
        if self._parts is not None:
            self._parts.close()

    # ---- the one entry point -------------------------------------------------------------

    def handle(self, payload: bytes, io: IOChannel | None = None) -> bytes:
        """One frame's payload in (a ``Call``), one frame's payload out (``Result``/``Failure``)."""
        try:
            call = wire.Call.from_bytes(payload, max_size=wire.MAX_FRAME_BYTES)
        except CodecError as exc:
            return _failure(wire.FrameInvalid(f"not a call: {exc.message}"))
        operation = self._ops.get(call.op)
        if operation is None:
            return _failure(wire.FrameInvalid("unknown operation", op=call.op[:64]))
        return _reply(call.op, lambda: operation(call.body, io))

    # ---- operations ----------------------------------------------------------------------

    @property
    def core(self) -> EnclaveCore:
        if self._core is None:
            raise EnclaveNotBooted("the enclave has not booted")
        return self._core

    def _hello(self, body: bytes, io: IOChannel | None) -> bytes:
        from veilnet import __version__

        return wire.Hello(version=wire.ENCLAVE_INTERFACE_VERSION, build=__version__).to_bytes()

    def _parts_for(self, config: wire.EnclaveConfig) -> Parts:
        if self._parts is None:
            self._parts = self._build_parts(config)
            self._config = config
        elif config != self._config:
            raise EnclaveAlreadyBooted("this enclave was configured for another network")
        return self._parts

    def _boot(self, body: bytes, io: IOChannel | None) -> bytes:
        request = wire.Boot.from_bytes(body, max_size=wire.MAX_FRAME_BYTES)  # a checkpoint
        with self._lock:
            if self._core is not None:
                raise EnclaveAlreadyBooted("the enclave already runs a core")
            self._parts_for(request.config)
            kwargs = self._core_parts()
            if request.checkpoint is not None:
                core = EnclaveCore.restore(request.checkpoint, **kwargs)
            else:
                core = EnclaveCore.boot(sealed_identity=request.sealed_identity, **kwargs)
            if request.sealed_keys is not None:
                # keys drawn from TEE entropy in an earlier run: a replay reuses them
                core.import_keys(request.sealed_keys)
            self._core = core
            self._io_kinds = frozenset(request.io_kinds)
            booted = self._booted()
        self._after_boot()
        return booted

    def _core_parts(self) -> dict[str, Any]:
        """What ``EnclaveCore.boot``/``restore`` are built from: this enclave's own parts."""
        if self._parts is None or self._config is None:
            raise EnclaveNotBooted("the enclave has not booted")
        return {
            "config": core_config(self._config),
            "platform": self._parts.platform,
            "engine": self._parts.engine,
            "verifier": self._parts.verifier,
        }

    def _booted(self) -> bytes:
        core = self.core
        return wire.Booted(
            address=core.address,
            sealed_identity=core.sealed_identity(),
            head=core.head,
            snapshot_due=core.snapshot_due,
            boot_id=core.boot_id,
        ).to_bytes()

    def _snapshot(self, body: bytes, io: IOChannel | None) -> bytes:
        """A member seals its cluster's newest captured state to a joiner (read-only)."""
        if len(body) != 20:
            raise wire.FrameInvalid("a snapshot names a 20-byte worker address")
        with self._lock:
            return self.core.export_snapshot(body)

    def _sync(self, body: bytes, io: IOChannel | None) -> bytes:
        """A late joiner takes a member's snapshot, checked inside against the verdict."""
        with self._lock:
            core = self.core
            height, egress = core.import_snapshot(body)
            return wire.Synced(
                height=height, egress=tuple(egress), jobs_pending=bool(core.state.jobs)
            ).to_bytes()

    def _apply_block(self, body: bytes, io: IOChannel | None) -> bytes:
        block = ChainBlock.from_bytes(body, max_size=wire.MAX_FRAME_BYTES)
        with self._lock:
            core = self.core
            egress = core.apply_block(block)
            assert core.head is not None
            return wire.Applied(
                egress=tuple(egress),
                head=core.head,
                snapshot_due=core.snapshot_due,
                sealed_keys=core.generated_keys(),
                diverged_at=core.diverged_at,
                reattest_due=core.reattest_due,
                jobs_pending=bool(core.state.jobs),
                collateral_wanted=core.collateral_wanted,
            ).to_bytes()

    def _certify(self, body: bytes, io: IOChannel | None) -> bytes:
        request = wire.Certify.from_bytes(body)
        if io is None:
            raise EnclaveIOFailed("certify needs the host to relay TLS bytes")
        core = self.core
        # the TLS round trips run outside the lock: queries and blocks go on meanwhile
        try:
            found = core.ask_quorum(request.numbers, _tls_relay(io))
        except ValueError as exc:
            raise PolicyRejected(f"not certified: {exc}") from exc
        with self._lock:
            if core is self._core:
                core.keep_certified(found)
        numbers = tuple(sorted(found))
        return wire.Certified(numbers=numbers, hashes=tuple(found[n] for n in numbers)).to_bytes()

    def _collateral(self, body: bytes, io: IOChannel | None) -> bytes:
        if io is None:
            raise EnclaveIOFailed("collateral needs the host to relay TLS bytes")
        core = self.core
        # the TLS round trips run outside the lock: queries and blocks go on meanwhile
        found, failures = core.fetch_collateral(_tls_relay(io))
        with self._lock:
            if core is self._core:
                core.keep_collateral(found)
        return wire.CollateralFetched(fetched=len(found), failures=tuple(failures)).to_bytes()

    def _query(self, body: bytes, io: IOChannel | None) -> bytes:
        with self._lock:  # open, check and snapshot: fast
            core = self.core
            prepared = core.prepare_query(body)
        # the agent runs on the snapshot, so a slow llm.chat never holds up block application
        return core.run_query(prepared, io=_query_io(io, self._io_kinds))

    def _queries(self, body: bytes, io: IOChannel | None) -> bytes:
        try:
            batch = wire.QueryBatch.from_bytes(body, max_size=wire.MAX_FRAME_BYTES)
        except CodecError as exc:
            raise wire.FrameInvalid(f"not a query batch: {exc.message}") from exc
        if not 1 <= len(batch.requests) <= wire.MAX_QUERY_BATCH:
            raise wire.FrameInvalid(
                f"a query batch holds 1 to {wire.MAX_QUERY_BATCH} queries",
                count=len(batch.requests),
            )
        replies: list[bytes] = []
        used_io: list[int] = []
        for index, request in enumerate(batch.requests):
            asked: list[bool] = []
            noted = None if io is None else _noting(io, asked)
            # each query as if it came alone: its own refusal, its own lock turn
            replies.append(_reply(wire.OP_QUERY, functools.partial(self._query, request, noted)))
            if asked:
                used_io.append(index)
        return wire.QueryAnswers(replies=tuple(replies), used_io=tuple(used_io)).to_bytes()

    def _jobs(self, body: bytes, io: IOChannel | None) -> bytes:
        with self._lock:  # take the queue with its snapshots: fast
            core = self.core
            prepared = core.take_jobs()
        query_io = _query_io(io, self._io_kinds)
        # the agents run on the snapshots, outside the lock
        results = tuple(core.run_job(job, io=query_io) for job in prepared)
        return wire.Jobs(results=results).to_bytes()

    def _attest(self, body: bytes, io: IOChannel | None) -> bytes:
        if len(body) != 32:
            raise wire.FrameInvalid("the nonce is 32 bytes")
        core = self.core
        return wire.Attested(
            quote=core.attest(body),
            collateral=core.platform.collateral(),
            report_data=core.attestation_report_data(body),
        ).to_bytes()

    def _checkpoint(self, body: bytes, io: IOChannel | None) -> bytes:
        with self._lock:
            core = self.core
            sealed = core.checkpoint()
            assert core.head is not None
            return wire.Checkpointed(sealed=sealed, block_number=core.head.number).to_bytes()

    def _registration(self, body: bytes, io: IOChannel | None) -> bytes:
        if len(body) < 20:
            raise wire.FrameInvalid("the operator is a 20-byte address")
        try:
            api_url = body[20:].decode("ascii")
        except UnicodeDecodeError as exc:
            raise PolicyRejected("the API URL is not ASCII") from exc
        with self._lock:
            try:
                request = self.core.registration(body[:20], api_url=api_url)
            except ValueError as exc:
                raise PolicyRejected(f"not registered: {exc}") from exc
        return request.to_bytes()

    def _register_transaction(self, body: bytes, io: IOChannel | None) -> bytes:
        request = wire.RegisterTransaction.from_bytes(body)
        if len(request.operator) != 20:
            raise wire.FrameInvalid("the operator is a 20-byte address")
        with self._lock:
            try:
                registration, raw = self.core.registration_transaction(
                    request.operator,
                    nonce=request.nonce,
                    gas=request.gas,
                    max_fee_per_gas=request.max_fee_per_gas,
                    max_priority_fee_per_gas=request.max_priority_fee_per_gas,
                    reattest=request.reattest,
                    deposit=request.deposit,
                    api_url=request.api_url,
                )
            except ValueError as exc:
                raise PolicyRejected(f"not signed: {exc}") from exc
        return wire.SignedRegistration(request=registration, raw=raw).to_bytes()

    def _status(self, body: bytes, io: IOChannel | None) -> bytes:
        with self._lock:
            core = self.core
            me = core.workers.get(core.address)
            clusters = tuple(
                wire.ClusterStatus(
                    cluster_id=cluster_id,
                    is_member=core.address in cluster.members,
                    state_commitment=(
                        core.cluster_commitment(cluster_id)
                        if core.address in cluster.members
                        else None
                    ),
                )
                for cluster_id, cluster in sorted(core.clusters.items())
            )
            assert self._config is not None
            return wire.Status(
                address=core.address,
                tee=core.platform.kind,
                measurement=core.platform.measurement,
                config_digest=self._config.network_digest,
                head=core.head,
                cluster=None if me is None else me.cluster,
                confidence=None if me is None else me.confidence,
                clusters=clusters,
                diverged_at=core.diverged_at,
            ).to_bytes()

    def _contract(self, body: bytes, io: IOChannel | None) -> bytes:
        with self._lock:
            contract = self.core.contracts.get(body)
            if contract is None:
                raise ContractUnavailable("unknown contract", contract_id="0x" + body.hex()[:64])
            # epoch 0 means no contract key yet, whatever the epochs table holds
            epoch = contract.epochs.get(contract.epoch) if contract.epoch > 0 else None
            return wire.ContractStatus(
                contract_id=body,
                cluster=contract.cluster,
                owner=contract.owner,
                controller=contract.controller,
                code_hash=contract.code_hash,
                paused=contract.paused,
                epoch=contract.epoch,
                public_key=b"" if epoch is None else epoch.public_key,
                key_address=b"" if epoch is None else epoch.key_address,
            ).to_bytes()


def _reply(op: str, run: Callable[[], bytes]) -> bytes:
    """A ``Result`` of what ``run`` returns, or the ``Failure`` it raised (a bug or fault
    only by its type)."""
    try:
        return wire.Result(body=run()).to_bytes()
    except VeilnetError as exc:
        return _failure(exc)
    except Exception as exc:  # a bug, or a fault: say only its type
        _log.exception("enclave operation %s failed", op)
        return _failure(InternalError(f"{op} failed: {type(exc).__name__}"))


def _failure(exc: VeilnetError) -> bytes:
    try:
        details = json.dumps(exc.details, sort_keys=True, default=str)
    except (TypeError, ValueError):
        details = "{}"
    return wire.Failure(code=exc.code, message=exc.message, details=details).to_bytes()


def _tls_relay(io: IOChannel) -> Relay:
    """The core's TLS relay over the host's I/O channel: ciphertext out, ciphertext back."""

    def relay(conn: int, host: str, port: int, data: bytes) -> bytes:
        result = io(
            wire.IORequest(
                kind=wire.IO_TLS,
                body=wire.TLSRelay(conn=conn, host=host, port=port, data=data).to_bytes(),
            )
        )
        if not result.ok:
            # one endpoint the host could not reach: it does not vouch, the others still may
            raise TLSFailed(
                f"the host did not relay: {result.code}", stage="relay", host_code=result.code
            )
        return result.body

    return relay


def _noting(io: IOChannel, asked: list[bool]) -> IOChannel:
    """``io`` that notes in ``asked`` that it was used."""

    def channel(request: wire.IORequest) -> wire.IOResult:
        asked.append(True)
        return io(request)

    return channel


def _query_io(io: IOChannel | None, kinds: frozenset[str]) -> QueryIO | None:
    """The I/O the host said at boot it serves, reached through ``io``; None without any."""
    if io is None or not kinds:
        return None

    def gateway(method: str, path: str, body: bytes) -> tuple[int, bytes]:
        call = wire.GatewayCall(method=method, path=path, body=body)
        result = io(wire.IORequest(kind=wire.IO_GATEWAY, body=call.to_bytes()))
        if not result.ok:
            raise EnclaveIOFailed(f"{result.code}: {result.message}")
        try:
            reply = wire.GatewayReply.from_bytes(result.body, max_size=wire.MAX_FRAME_BYTES)
        except CodecError as exc:
            raise EnclaveIOFailed("the host answered a gateway call with something else") from exc
        return reply.status, reply.body

    def witness(block: int, address: bytes, slot: bytes | None) -> tuple[list[bytes], list[bytes]]:
        request = wire.EVMWitnessRequest(block=block, address=address, slot=slot)
        result = io(wire.IORequest(kind=wire.IO_EVM, body=request.to_bytes()))
        if not result.ok:
            return [], []  # the host could not: the call ends unproven
        try:
            found = wire.EVMWitness.from_bytes(result.body, max_size=wire.MAX_FRAME_BYTES)
        except CodecError:
            return [], []
        return list(found.nodes), list(found.codes)

    return QueryIO(
        witness=witness if wire.IO_EVM in kinds else None,
        gateway=gateway if wire.IO_LLM_CHAT in kinds else None,
        relay=_tls_relay(io) if wire.IO_HTTP_FETCH in kinds else None,
    )
