"""Running ingest jobs: claim, keep the lease alive, index, record the outcome.

`JobRunner.run(job_id)` is the task code every footprint shares: the embedded
service's in-process consumer, ``mmrag worker`` processes on several machines,
and ``mmrag ingest`` running its own jobs. It never trusts a delivery: the claim
decides whether anything runs (see `mmrag.jobs`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from types import TracebackType

from prometheus_client import CollectorRegistry, Counter, Histogram

from mmrag.errors import (
    TRANSIENT_ERRORS,
    DocumentError,
    JobCancelled,
    JobInterrupted,
    MmragError,
)
from mmrag.jobs import IngestJob, JobBook, JobProgress, JobState, worker_name
from mmrag.observe import IngestObserver, NullObserver
from mmrag.pipeline import Ingestor
from mmrag.settings import QueueSettings

logger = logging.getLogger("mmrag.ingest")


class RetryLater(MmragError):
    """A transient failure: deliver the job again after ``delay_s``."""

    def __init__(self, job_id: str, delay_s: float, reason: str) -> None:
        self.job_id = job_id
        self.delay_s = delay_s
        super().__init__(f"job {job_id}: retrying in {delay_s:.0f}s after: {reason}")


class JobMetrics:
    """Job outcomes, durations, retries and failures by reason (Prometheus)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.finished = Counter(
            "mmrag_ingest_jobs_total", "ingest jobs finished", ["outcome"], registry=registry
        )
        self.seconds = Histogram(
            "mmrag_ingest_job_duration_seconds",
            "time from claim to outcome",
            ["outcome"],
            registry=registry,
            buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
        )
        self.retries = Counter(
            "mmrag_ingest_job_retries_total", "transient failures retried", registry=registry
        )
        self.failures = Counter(
            "mmrag_ingest_job_failures_total",
            "documents that failed, by reason",
            ["reason"],
            registry=registry,
        )


class _Lease(threading.Thread):
    """Renews a running job's lease and publishes its progress; as the pipeline's
    observer it stops the pipeline once the job is cancelled or the worker stops."""

    def __init__(
        self,
        jobs: JobBook,
        job: IngestJob,
        lease_s: float,
        shutdown: threading.Event,
        observer: IngestObserver | None,
    ) -> None:
        super().__init__(name=f"lease-{job.job_id[:8]}", daemon=True)
        self._jobs = jobs
        self._job = job
        self._lease_s = lease_s
        self._shutdown = shutdown
        self._done = threading.Event()
        self.lost = threading.Event()
        self.progress = JobProgress(stage="parsing")
        self._observer = observer or NullObserver()

    def run(self) -> None:
        interval = min(self._lease_s / 3, 1.0)
        while not self._done.wait(interval):
            if not self._jobs.renew(
                self._job.job_id, self._job.lease_owner, self._lease_s, self.progress
            ):
                self.lost.set()
                return

    def __enter__(self) -> _Lease:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._done.set()
        self.join()

    def file_started(self, name: str, pages: int) -> None:
        self.progress = replace(self.progress, stage="indexing", pages_total=pages)
        self._observer.file_started(name, pages)
        self._check()

    def advanced(self, *, pages: int = 0, chunks: int = 0, images: int = 0) -> None:
        self.progress = self.progress.advanced(pages=pages, chunks=chunks, images=images)
        self._observer.advanced(pages=pages, chunks=chunks, images=images)
        self._check()

    def _check(self) -> None:
        if self.lost.is_set():
            raise JobCancelled(f"{self._job.filename}: the job was cancelled")
        if self._shutdown.is_set():
            raise JobInterrupted(f"{self._job.filename}: the worker is shutting down")


class JobRunner:
    """Runs delivered job ids in one worker process (thread-safe: one lease per job)."""

    def __init__(
        self,
        *,
        jobs: JobBook,
        ingestor: Callable[[], Ingestor],
        settings: QueueSettings,
        metrics: JobMetrics | None = None,
    ) -> None:
        self._jobs = jobs
        self._ingestor = ingestor  # built on first use: a worker loads models once
        self._settings = settings
        self._metrics = metrics
        self.shutdown = threading.Event()  # set: running jobs go back to the queue
        self._owner = worker_name()

    def run(self, job_id: str, observer: IngestObserver | None = None) -> IngestJob | None:
        """Run one job if it can be claimed; the finished job, or None when there was
        nothing to do (done, cancelled, or running alive elsewhere). Raises `RetryLater`
        after a transient failure and `JobInterrupted` on shutdown (the job is queued
        again in both cases)."""
        job = self._jobs.claim(job_id, self._owner, self._settings.lease_s)
        if job is None:
            return None
        logger.info("running %s (job %s, attempt %d)", job.filename, job.job_id, job.attempts)
        ingestor = self._ingestor()
        if job.attempts > self._settings.max_deliveries:
            reason = (
                f"{job.filename}: abandoned {job.attempts - 1} times by workers that died "
                "while running it (queue.max_deliveries)"
            )
            ingestor.fail(job, reason)
            return self._finish(job, JobState.FAILED, JobProgress(), reason, "WorkerLost")
        lease = _Lease(self._jobs, job, self._settings.lease_s, self.shutdown, observer)
        with lease:
            try:
                ingestor.run(job, job.run_id, lease)
            except JobCancelled as exc:
                return self._cancelled(job, lease, str(exc), ingestor)
            except (JobInterrupted, KeyboardInterrupt, SystemExit):
                self._jobs.release(job.job_id, self._owner, "", retry=False)
                raise
            except TRANSIENT_ERRORS as exc:
                if job.retries < self._settings.max_retries:
                    return self._retry(job, exc)
                reason = f"{job.filename}: {exc} (gave up after {job.retries} retries)"
                return self._failed(job, lease, ingestor, reason, type(exc).__name__)
            except DocumentError as exc:
                reason = f"{job.filename}: {exc.reason}"
                return self._failed(job, lease, ingestor, reason, type(exc).__name__)
            except Exception as exc:  # the per-document boundary: contained, logged, reported
                logger.exception("unexpected failure ingesting %s", job.filename)
                reason = f"{job.filename}: unexpected {type(exc).__name__}: {exc}"
                return self._failed(job, lease, ingestor, reason, "Unexpected")
        return self._finish(job, JobState.DONE, lease.progress, "", "")

    def _failed(
        self, job: IngestJob, lease: _Lease, ingestor: Ingestor, reason: str, kind: str
    ) -> IngestJob | None:
        """The document failed: record why (or, if it was deleted meanwhile, drop the job)."""
        if ingestor.fail(job, reason) is None:
            return self._cancelled(job, lease, "the document was deleted", ingestor)
        return self._finish(job, JobState.FAILED, lease.progress, reason, kind)

    def job(self, job_id: str) -> IngestJob | None:
        return self._jobs.get(job_id)

    def _finish(
        self,
        job: IngestJob,
        state: JobState,
        progress: JobProgress,
        error: str,
        error_kind: str,
    ) -> IngestJob | None:
        if not self._jobs.finish(
            job.job_id, self._owner, state, progress=progress, error=error, error_kind=error_kind
        ):
            return None  # cancelled meanwhile
        finished = self._jobs.get(job.job_id)
        if finished is not None:
            self._observe(finished)
        return finished

    def _cancelled(
        self, job: IngestJob, lease: _Lease, reason: str, ingestor: Ingestor
    ) -> IngestJob | None:
        current = self._jobs.get(job.job_id)
        if current is None or current.lease_owner != self._owner:
            return None  # handed to another worker after our lease lapsed: theirs now
        ingestor.discard(job)
        if current.state is JobState.CANCELLED:  # cancelled from outside (a delete)
            self._jobs.settle_cancelled(job.job_id, self._owner)
        else:  # this run found its document deleted or superseded
            self._jobs.finish(
                job.job_id, self._owner, JobState.CANCELLED, progress=lease.progress, error=reason
            )
        logger.info("cancelled %s: %s", job.filename, reason)
        return self._jobs.get(job.job_id)

    def settle_abandoned(self, *, everything: bool = False) -> int:
        """Drop what cancelled jobs wrote when their workers died before doing so."""
        abandoned = self._jobs.abandoned_cancellations(everything=everything)
        for job in abandoned:
            self._ingestor().discard(job)
            self._jobs.settle_cancelled(job.job_id, job.lease_owner)
        return len(abandoned)

    def _retry(self, job: IngestJob, exc: Exception) -> IngestJob | None:
        delay = self._settings.retry_delay_s * 2**job.retries
        self._jobs.release(job.job_id, self._owner, f"{job.filename}: {exc}", retry=True)
        if self._metrics:
            self._metrics.retries.inc()
        logger.warning("%s: %s; retrying in %.0fs", job.filename, exc, delay)
        raise RetryLater(job.job_id, delay, str(exc))

    def _observe(self, job: IngestJob) -> None:
        if job.state is JobState.FAILED:
            logger.warning("failed: %s", job.error)
        else:
            logger.info(
                "%s %s: %d pages, %d chunks, %d images in %.1fs",
                job.state.value,
                job.filename,
                job.progress.pages,
                job.progress.chunks,
                job.progress.images,
                job.seconds,
            )
        if self._metrics is None:
            return
        outcome = "indexed" if job.state is JobState.DONE else job.state.value
        self._metrics.finished.labels(outcome).inc()
        self._metrics.seconds.labels(outcome).observe(job.seconds)
        if job.state is JobState.FAILED:
            self._metrics.failures.labels(job.error_kind or "unknown").inc()


def run_until_finished(
    runner: JobRunner, job_id: str, observer: IngestObserver | None = None
) -> IngestJob | None:
    """Run one job in the foreground, waiting out its retries (no queue involved)."""
    while True:
        try:
            runner.run(job_id, observer)
        except RetryLater as exc:
            time.sleep(exc.delay_s)
            continue
        return runner.job(job_id)
