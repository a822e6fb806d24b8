"""``mmrag worker``: run ingest jobs from the queue until stopped."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Annotated

import typer

from ingest.app import app, errors, services, use_json_logs
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
    as_json: Annotated[bool, typer.Option("--json", help="log lines as JSON objects")] = False,
) -> None:
    """Run ingest jobs from the queue (queue.url: Redis) until SIGTERM or Ctrl-C.

    Start one per core or GPU on as many machines as needed; each job is claimed by one
    worker, and a job whose worker dies is handed to another after queue.lease_s."""
    if as_json:
        use_json_logs()
    with services(announce=not as_json) as built:
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
        started = f"worker: {concurrency} job(s) at once from {built.queue.location}"
        if as_json:
            logger.info(started)
        else:
            errors.print(f"{started}; Ctrl-C to stop", highlight=False)
        stop.wait()
        logger.info("stopping: running jobs go back to the queue")
        consumer.stop()
