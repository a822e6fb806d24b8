"""The queue engine: Huey, on SQLite (embedded, no server) or on Redis (scale-out).

Huey was chosen over Celery because the same task code runs on an embedded SQLite
backend and on Redis, with its consumer (threads or processes), retry scheduling and
signals, in a small dependency. Huey removes a message when a worker takes it, so
delivery alone is at-most-once; the job book (`mmrag.jobs`) supplies the rest:
leases renewed while a job runs, expired leases requeued by every consumer, and
claims that make a duplicate delivery a no-op. Long jobs never time out in the
broker: there is no visibility timeout, only a lease the running worker renews.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from mmrag.errors import JobInterrupted, StoreError
from mmrag.jobs import JobBook
from mmrag.settings import QueueSettings, Settings
from mmrag.worker import JobRunner, RetryLater

logger = logging.getLogger("mmrag.ingest")

TASK_NAME = "mmrag.ingest"


def _unavailable(url: str, exc: Exception) -> StoreError:
    return StoreError(f"the job queue at {url} is unreachable: {exc}")


class JobQueue:
    """Delivers job ids to whichever process consumes: `dispatch` on one side,
    `consumer` on the other."""

    def __init__(self, huey: Any, settings: QueueSettings, *, location: str) -> None:
        self.huey = huey
        self.settings = settings
        self.location = location
        self._runner: JobRunner | None = None
        self._task = huey.task(name=TASK_NAME)(self._deliver)

    @classmethod
    def open(cls, settings: Settings) -> JobQueue:
        if settings.queue.url:
            from huey import RedisHuey

            huey = RedisHuey("mmrag", url=settings.queue.url, results=False, utc=True)
            return cls(huey, settings.queue, location=settings.queue.url)
        from huey import SqliteHuey

        settings.queue_path.parent.mkdir(parents=True, exist_ok=True)
        huey = SqliteHuey("mmrag", filename=str(settings.queue_path), results=False, utc=True)
        return cls(huey, settings.queue, location=str(settings.queue_path))

    @property
    def embedded(self) -> bool:
        return not self.settings.url

    def dispatch(self, job_id: str, *, delay_s: float | None = None) -> None:
        """Ask a worker to run the job (after ``delay_s``)."""
        try:
            self.huey.enqueue(self._task.s(job_id, delay=delay_s))
        except Exception as exc:  # redis and sqlite3 errors share no base class
            raise _unavailable(self.location, exc) from exc

    def depth(self) -> int:
        """Messages waiting, including retries scheduled for later."""
        try:
            return int(self.huey.pending_count() + self.huey.scheduled_count())
        except Exception as exc:
            raise _unavailable(self.location, exc) from exc

    def waiting_job_ids(self) -> set[str]:
        tasks = list(self.huey.pending()) + list(self.huey.scheduled())
        return {str(task.args[0]) for task in tasks if task.name == TASK_NAME and task.args}

    def recover(
        self, jobs: JobBook, *, owner_of_everything: bool = False, undelivered: bool = False
    ) -> int:
        """Deliver again what was lost: jobs whose worker died (an expired lease, or
        any running job when this process alone can run jobs), and with ``undelivered``
        queued jobs with no message (a crash between recording a job and enqueuing it:
        this reads every waiting message, so consumers do it when they start). The count."""
        requeued = jobs.requeue_expired(everything=owner_of_everything)
        orphans: list[str] = []
        if undelivered:
            waiting = self.waiting_job_ids() | set(requeued)
            orphans = [job_id for job_id in jobs.queued() if job_id not in waiting]
        for job_id in dict.fromkeys(requeued + orphans):
            self.dispatch(job_id)
        if requeued or orphans:
            logger.info(
                "recovered %d job(s) of dead workers and %d undelivered job(s)",
                len(requeued),
                len(orphans),
            )
        return len(requeued) + len(orphans)

    def close(self) -> None:
        storage = self.huey.storage
        if hasattr(storage, "close"):
            storage.close()

    def _deliver(self, job_id: str) -> None:
        from huey.exceptions import RetryTask

        if self._runner is None:
            raise RuntimeError("this process consumes no jobs (no runner attached)")
        try:
            self._runner.run(job_id)
        except RetryLater as exc:
            raise RetryTask(delay=exc.delay_s) from exc
        except JobInterrupted:
            self.dispatch(job_id)  # back in line for the next worker

    def consumer(self, runner: JobRunner, *, workers: int) -> Consumer:
        """A consumer running ``runner`` on ``workers`` threads of this process (run more
        processes, e.g. ``mmrag worker`` on several machines, to scale out)."""
        self._runner = runner
        return Consumer(self, runner, workers=workers)


class Consumer:
    """Huey's consumer plus the lease sweeper: every consumer host requeues jobs whose
    workers died, so no single process is needed for recovery."""

    def __init__(self, queue: JobQueue, runner: JobRunner, *, workers: int) -> None:
        from huey.consumer import Consumer as HueyConsumer

        class _Embedded(HueyConsumer):
            def _set_signal_handlers(self) -> None:
                pass  # the host (uvicorn, the CLI) owns the signals

        self._queue = queue
        self._runner = runner
        self._huey_consumer = _Embedded(
            queue.huey,
            workers=workers,
            periodic=False,
            worker_type="thread",
            max_delay=queue.settings.poll_s,
            initial_delay=min(0.1, queue.settings.poll_s),
            check_worker_health=True,
        )
        self._stop = threading.Event()
        self._sweeper = threading.Thread(target=self._sweep, name="mmrag-leases", daemon=True)

    def start(self, *, jobs: JobBook, owner_of_everything: bool = False) -> None:
        self._jobs = jobs
        self._runner.settle_abandoned(everything=owner_of_everything)
        self._queue.recover(jobs, owner_of_everything=owner_of_everything, undelivered=True)
        self._huey_consumer.start()
        self._sweeper.start()

    def _sweep(self) -> None:
        interval = max(self._queue.settings.lease_s / 2, 0.5)
        while not self._stop.wait(interval):
            try:
                self._runner.settle_abandoned()
                self._queue.recover(self._jobs)
            except Exception:  # a sweep must never kill the consumer: log and go on
                logger.exception("recovering jobs failed; will try again")

    def stop(self, *, timeout_s: float = 5.0) -> None:
        """Stop taking jobs; running ones go back to the queue within one batch."""
        self._stop.set()
        self._runner.shutdown.set()
        consumer = self._huey_consumer
        consumer.shutdown_timeout = timeout_s
        consumer.stop(graceful=True)
        self._sweeper.join(timeout=timeout_s)

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until `stop` (True) or the timeout (False)."""
        return self._stop.wait(timeout_s)
