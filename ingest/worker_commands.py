"""``mmrag worker``: run ingest jobs from the queue until stopped."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Annotated

import typer

from ingest.app import app, errors, services
from mmrag.errors import ConfigError
from mmrag.services import running_service
from mmrag.worker import JobMetrics

logger = logging.getLogger("mmrag.ingest")


@app.command()
def worker(
    concurrency: Annotated[
        int, typer.Option(min=1, max=64, help="jobs run at once (threads sharing the models)")
    ] = 1,
    metrics_port: Annotated[
        int | None, typer.Option(help="serve this worker's Prometheus metrics on this port")
    ] = None,
) -> None:
    """Run ingest jobs from the queue (queue.url: Redis) until SIGTERM or Ctrl-C.

    Start one per core or GPU on as many machines as needed; each job is claimed by one
    worker, and a job whose worker dies is handed to another after queue.lease_s."""
    with services() as built:
        if built.queue.embedded and (holder := running_service(built.settings)):
            raise ConfigError(
                f"mmrag serve (pid {holder['pid']}) already runs the jobs of this data "
                "directory's embedded queue; set queue.url (Redis) to run separate workers"
            )
        metrics = None
        if metrics_port is not None:
            from prometheus_client import REGISTRY, start_http_server

            metrics = JobMetrics(REGISTRY)
            start_http_server(metrics_port)
        built.ingestor  # noqa: B018 - open the store and load the models before taking jobs
        runner = built.job_runner(metrics)
        consumer = built.queue.consumer(runner, workers=concurrency)
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        consumer.start(jobs=built.jobs, owner_of_everything=built.queue.embedded)
        errors.print(
            f"worker: {concurrency} job(s) at once from {built.queue.location}; Ctrl-C to stop",
            highlight=False,
        )
        stop.wait()
        logger.info("stopping: running jobs go back to the queue")
        consumer.stop()
