"""Prometheus metrics of one worker host, on a registry of its own (never the global one),
so several hosts in one process (devnet, tests) keep separate figures."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "WorkerMetrics"]


class WorkerMetrics:
    """Counters and gauges the host updates; ``render()`` gives the text exposition."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.blocks_applied = Counter(
            "veil_worker_blocks_applied", "Finalized blocks applied by the core", registry=r
        )
        self.head = Gauge("veil_worker_head_block", "Number of the last applied block", registry=r)
        self.chain_head = Gauge(
            "veil_worker_chain_head_block", "Latest block number the node reported", registry=r
        )
        self.queries = Counter(
            "veil_worker_queries", "Queries answered, by outcome code", ["outcome"], registry=r
        )
        self.query_seconds = Histogram(
            "veil_worker_query_seconds",
            "Time to answer one query",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.query_calls = Histogram(
            "veil_worker_query_call_size",
            "Queries per call to the enclave (more than one: they waited while it was busy)",
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=r,
        )
        self.egress_posted = Counter(
            "veil_worker_egress_posted",
            "Egress messages settled on chain (landed, or already used by another replica)",
            ["status"],
            registry=r,
        )
        self.jobs = Counter(
            "veil_worker_jobs",
            "Job results this worker ran and offered a consumer: delivered (taken), "
            "not_taken (another member was first, or the deadline passed), failed (the node)",
            ["outcome"],
            registry=r,
        )
        self.apply_failures = Counter(
            "veil_worker_apply_failures",
            "Blocks whose application failed and was retried",
            registry=r,
        )
        self.egress_failed = Counter(
            "veil_worker_egress_failed",
            "Egress messages in a batch the node refused (retried)",
            registry=r,
        )
        self.checkpoints = Counter(
            "veil_worker_checkpoints", "Checkpoints written to disk", registry=r
        )
        self.http_errors = Counter(
            "veil_worker_http_errors", "API error responses, by code", ["code"], registry=r
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
