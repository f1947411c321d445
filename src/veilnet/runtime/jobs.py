"""Jobs: requests from EVM contracts (``JobRequested``) and standing jobs (``JobScheduled``)
that the agents this worker serves answer with their ``job`` entry, in job mode on committed
state, signed by the contract key.

Queueing runs inside block application (a request lands once per block); running a job does
not: the host takes the queue (``take``) and runs each job (``run``) on a snapshot, as queries
run, so a slow job never holds up blocks. Jobs are not replicated: every member of the agent's
cluster runs each one, and the consumer takes the first valid result."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Final

from eth_abi.abi import encode as abi_encode

from veilnet.crypto import Address, SecretKey, keccak
from veilnet.protocol import events as ev
from veilnet.protocol.enclave import JobResult
from veilnet.protocol.results import sign_result
from veilnet.runtime.agents import QueryIO, Snapshot
from veilnet.runtime.context import CoreContext
from veilnet.runtime.queries import run_on_snapshot, served_cluster
from veilnet.runtime.records import ScheduleInfo
from veilnet.sandbox.interfaces import Entry, JSONValue

__all__ = ["MAX_PENDING_JOBS", "JobResult", "PendingJob", "PreparedJob", "run", "take"]

MAX_PENDING_JOBS: Final = 256
"""Jobs a worker keeps queued; past it the oldest go (another member, or a later request,
answers them): a flood of requests costs its senders gas, never this worker's memory."""
MIN_TICK_WINDOW: Final = 10
"""Blocks a tick's result may take to land at least (a schedule of every block still gets
time for its worker to run the job and its host to deliver it)."""
JOB_SEQ: Final = -3
"""The ``seq`` jobs run under (their randomness differs from any command's or query's)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingJob:
    """A request this worker's cluster should answer (from ``JobRequested``)."""

    contract_id: bytes
    request_id: bytes
    consumer: bytes
    deadline: int
    payload: bytes
    schedule_id: int = 0
    """For a standing job's tick: its schedule (the consumer takes ``fulfill_tick``)."""
    height: int = 0
    """For a standing job's tick: the block it is for."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PreparedJob:
    """A job with the committed state it reads and the key that signs its result."""

    job: PendingJob
    head: ev.BlockHeader
    snapshot: dict[bytes, Snapshot] = field(repr=False)
    key: SecretKey = field(repr=False)


def tick_request_id(*, chain_id: int, bus: bytes, schedule_id: int, height: int) -> bytes:
    """The request id of a standing job's tick: ``keccak256(abi_encode(chain.id, Bus,
    schedule_id, height))``, as ``VeilConsumer.fulfill_tick`` computes it."""
    return keccak(
        abi_encode(
            ["uint256", "address", "uint256", "uint256"],
            [chain_id, Address(bus).hex, schedule_id, height],
        )
    )


def on_job_scheduled(core: CoreContext, header: ev.BlockHeader, event: ev.JobScheduled) -> None:
    core.state.schedules[event.schedule_id] = ScheduleInfo(
        contract_id=event.contract_id,
        consumer=event.consumer,
        every=event.every,
        start=event.start,
        payload=event.payload,
    )


def on_schedule_cancelled(
    core: CoreContext, header: ev.BlockHeader, event: ev.ScheduleCancelled
) -> None:
    core.state.schedules.pop(event.schedule_id, None)


def tick(core: CoreContext, header: ev.BlockHeader) -> None:
    """At the end of a block: queue the standing jobs due at it, for agents served here. A
    tick's result is due before the next tick (the consumer takes only newer ones)."""
    for schedule_id, schedule in sorted(core.state.schedules.items()):
        elapsed = header.number - schedule.start
        if elapsed <= 0 or elapsed % schedule.every:
            continue
        contract = core.state.contracts.get(schedule.contract_id)
        if contract is None or contract.paused or not core.serves(contract.cluster):
            continue
        if schedule.contract_id not in core.state.runtimes:
            continue
        _queue(
            core,
            PendingJob(
                contract_id=schedule.contract_id,
                request_id=tick_request_id(
                    chain_id=core.config.chain_id,
                    bus=core.config.bus,
                    schedule_id=schedule_id,
                    height=header.number,
                ),
                consumer=schedule.consumer,
                deadline=header.number + max(schedule.every, MIN_TICK_WINDOW),
                payload=schedule.payload,
                schedule_id=schedule_id,
                height=header.number,
            ),
        )


def _queue(core: CoreContext, job: PendingJob) -> None:
    jobs = core.state.jobs
    jobs.append(job)
    del jobs[:-MAX_PENDING_JOBS]


def on_job_requested(core: CoreContext, header: ev.BlockHeader, event: ev.JobRequested) -> None:
    contract = core.state.contracts.get(event.contract_id)
    if contract is None or contract.paused or event.deadline <= header.number:
        return
    if not core.serves(contract.cluster) or event.contract_id not in core.state.runtimes:
        return
    _queue(
        core,
        PendingJob(
            contract_id=event.contract_id,
            request_id=event.request_id,
            consumer=event.consumer,
            deadline=event.deadline,
            payload=event.payload,
        ),
    )


def take(core: CoreContext) -> list[PreparedJob]:
    """The queued jobs still answerable at the head, each with its snapshot and key; the queue
    empties (fast: run under the host's lock)."""
    head = core.state.head
    queued, core.state.jobs = core.state.jobs, []
    if head is None:
        return []
    prepared = []
    for job in queued:
        contract = core.state.contracts.get(job.contract_id)
        if contract is None or contract.paused or job.deadline <= head.number:
            continue
        served = served_cluster(core, contract.cluster)
        snapshot = served.contracts.get(job.contract_id)
        if snapshot is None or snapshot.key is None:
            continue  # no longer served, or unkeyed: another member answers
        prepared.append(
            PreparedJob(job=job, head=head, snapshot=served.contracts, key=snapshot.key)
        )
    return prepared


def run(core: CoreContext, prepared: PreparedJob, *, io: QueryIO | None = None) -> JobResult:
    """Run the agent's ``job`` entry on the snapshot and sign what it answered (a failure is
    an answer too, so that no request is left hanging)."""
    job = prepared.job
    try:
        request: JSONValue = json.loads(job.payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        request = job.payload.decode("latin-1")
    outcome = run_on_snapshot(
        core,
        entry=Entry.JOB,
        head=prepared.head,
        contract_id=job.contract_id,
        caller=job.consumer,
        msg={"request_id": "0x" + job.request_id.hex(), "payload": request},
        snapshot=prepared.snapshot,
        seq=JOB_SEQ,
        nonce=job.consumer + job.request_id,
        io=io,
    )
    answer: dict[str, JSONValue] = {"ok": outcome.ok}
    if outcome.error is None:
        answer["result"] = outcome.result
    else:
        answer["error"] = {"code": outcome.error.code, "message": outcome.error.message}
    result = json.dumps(answer, sort_keys=True, separators=(",", ":")).encode()
    signature = sign_result(
        prepared.key,
        chain_id=core.config.chain_id,
        consumer=job.consumer,
        request_id=job.request_id,
        result=result,
    )
    return JobResult(
        consumer=job.consumer,
        request_id=job.request_id,
        result=result,
        signature=signature,
        deadline=job.deadline,
        schedule_id=job.schedule_id,
        height=job.height,
    )


HANDLERS = {
    ev.JobRequested: on_job_requested,
    ev.JobScheduled: on_job_scheduled,
    ev.ScheduleCancelled: on_schedule_cancelled,
}
