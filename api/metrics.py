"""Prometheus metrics: requests per route, ingest jobs (outcomes, durations, retries,
failures by reason) and, at scrape time, queue depth and jobs per state."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING

from fastapi import Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from mmrag.errors import MmragError
from mmrag.worker import JobMetrics

if TYPE_CHECKING:
    from mmrag.services import Services

logger = logging.getLogger("mmrag.api")


class _QueueCollector(Collector):
    """Read from the queue and the shared catalog when scraped, so the figures hold
    for every worker, wherever it runs."""

    def __init__(self, services: Services) -> None:
        self._services = services

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            depth = self._services.queue.depth()
            states = self._services.jobs.counts()
            failures = self._services.jobs.failures()
        except MmragError as exc:
            logger.warning("queue metrics unavailable: %s", exc)
            return
        yield GaugeMetricFamily(
            "mmrag_ingest_queue_depth", "messages waiting in the job queue", value=depth
        )
        by_state = GaugeMetricFamily(
            "mmrag_catalog_jobs", "ingest jobs by state (every worker)", labels=["state"]
        )
        for state, count in states.items():
            by_state.add_metric([state], count)
        yield by_state
        failed = GaugeMetricFamily(
            "mmrag_catalog_failed_jobs",
            "failed ingest jobs by reason (every worker)",
            labels=["reason"],
        )
        for reason, count in failures.items():
            failed.add_metric([reason], count)
        yield failed


class Metrics:
    """One registry per app, so several apps (tests) never share counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "mmrag_http_requests_total",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mmrag_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.jobs = JobMetrics(self.registry)  # jobs this process ran (embedded worker)

    def watch_queue(self, services: Services) -> None:
        self.registry.register(_QueueCollector(services))

    async def middleware(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = getattr(request.scope.get("route"), "path", "unmatched")
            self.requests.labels(request.method, route, str(status)).inc()
            self.latency.labels(request.method, route).observe(time.perf_counter() - started)
