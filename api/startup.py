"""Start-up in the background: the service listens at once and loads its models (and,
on the embedded footprint, starts running ingest jobs) in a thread.

Meanwhile ``/healthz`` says the process is up, ``/readyz`` answers 503 with
``"models": "loading"`` (so an orchestrator holds traffic back), the web page and the
API documentation are served, and a request that needs the models waits for them (at
most `WAIT_S`, then 503 with ``Retry-After``). A model that cannot load is logged as an
error and reported by ``/readyz`` and by every request that needs it (503).
"""

from __future__ import annotations

import logging
import threading

from mmrag.errors import MmragError
from mmrag.queue import Consumer
from mmrag.services import Services
from mmrag.worker import JobMetrics

logger = logging.getLogger("mmrag.api")
WAIT_S = 60.0  # a request waits this long for the models before it is told to retry


class ServiceStartingError(MmragError):
    """The models are still loading."""

    retry_after_s = 5


class Startup:
    def __init__(self, services: Services, job_metrics: JobMetrics) -> None:
        self._services, self._job_metrics = services, job_metrics
        self._done = threading.Event()
        self._error: BaseException | None = None
        self.consumer: Consumer | None = None
        self._thread = threading.Thread(target=self._load, name="model-loader", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _load(self) -> None:
        try:
            self._services.asker  # noqa: B018 - the query models
            if self._services.queue.embedded:
                self.consumer = _start_consumer(self._services, self._job_metrics)
            logger.info("models loaded: ready")
        except BaseException as exc:  # reported by /readyz and every request that needs them
            self._error = exc
            logger.error("the service cannot become ready: %s", exc)
        finally:
            self._done.set()

    @property
    def state(self) -> str:
        """``loading``, ``ok``, or what went wrong."""
        if not self._done.is_set():
            return "loading"
        return "ok" if self._error is None else str(self._error)

    def wait(self, timeout_s: float | None = None) -> None:
        """Return once the models are loaded; raise what stopped them, or
        `ServiceStartingError` after ``timeout_s`` (default `WAIT_S`)."""
        if not self._done.wait(WAIT_S if timeout_s is None else timeout_s):
            raise ServiceStartingError("the service is still loading its models; retry shortly")
        if self._error is not None:
            raise self._error

    def stop(self, timeout_s: float = 600.0) -> None:
        """Let a load in progress finish (its models are then closed with the services),
        then stop running jobs."""
        self._done.wait(timeout_s)
        if self.consumer is not None:
            self.consumer.stop()


def _start_consumer(services: Services, job_metrics: JobMetrics) -> Consumer:
    """Run ingest jobs in this process: it holds the embedded store, so any job still
    marked running was abandoned by a previous process and is recovered at once."""
    services.ingestor  # noqa: B018 - open the store and load the ingest models now
    runner = services.job_runner(job_metrics)
    consumer = services.queue.consumer(runner, workers=services.settings.queue.workers)
    consumer.start(jobs=services.jobs, owner_of_everything=True)
    return consumer
