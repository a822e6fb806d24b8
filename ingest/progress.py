"""Progress for `mmrag ingest`: bars at a terminal, log lines otherwise; and waiting
for jobs that other processes run."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from mmrag.documents import Submission
from mmrag.services import Services

logger = logging.getLogger("mmrag.ingest")
POLL_S = 0.5


def _bars(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


class RichObserver:
    """Two bars: files overall, pages of the current file; counts of chunks and images."""

    def __init__(self, console: Console, files: int) -> None:
        self._progress = _bars(console)
        self._files: TaskID = self._progress.add_task("files", total=files, detail="")
        self._pages: TaskID = self._progress.add_task("pages", total=None, detail="")
        self._chunks = 0
        self._images = 0
        self._console = console

    def __enter__(self) -> RichObserver:
        self._progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def file_started(self, name: str, pages: int) -> None:
        self._progress.reset(
            self._pages, total=pages, description=f"pages of {name[:40]}", detail=""
        )

    def advanced(self, *, pages: int = 0, chunks: int = 0, images: int = 0) -> None:
        self._chunks += chunks
        self._images += images
        self._progress.update(self._pages, advance=pages)
        self._progress.update(self._files, detail=f"{self._chunks} chunks, {self._images} images")

    def file_finished(self, submission: Submission) -> None:
        self._progress.update(self._files, advance=1)
        for warning in submission.record.warnings if submission.record else ():
            self._console.print(
                f"[yellow]warning[/yellow] {submission.source}: {warning}", highlight=False
            )


def wait_for_jobs(
    services: Services, submitted: list[Submission], console: Console | None
) -> list[Submission]:
    """Follow jobs run elsewhere until each is finished; bars on ``console`` if given,
    a log line per finished file otherwise."""
    pending = {i for i, s in enumerate(submitted) if s.job and not s.job.state.terminal}
    results = list(submitted)
    progress = _bars(console) if console else None
    task = progress.add_task("files", total=len(pending), detail="") if progress else None
    if progress:
        progress.start()
    try:
        while pending:
            for index in sorted(pending):
                results[index] = _refreshed(services, results[index])
                job = results[index].job
                if job is None or job.state.terminal:
                    pending.discard(index)
                    if progress and task is not None:
                        progress.update(task, advance=1)
                    else:
                        logger.info("%s %s", results[index].outcome, results[index].source)
                elif progress and task is not None and job.progress.pages_total:
                    detail = f"{job.filename[:30]}: {job.progress.stage}, page "
                    detail += f"{job.progress.pages}/{job.progress.pages_total}"
                    progress.update(task, detail=detail)
            if pending:
                time.sleep(POLL_S)
    finally:
        if progress:
            progress.stop()
    return results


def _refreshed(services: Services, submission: Submission) -> Submission:
    assert submission.job is not None
    job = services.jobs.get(submission.job.job_id)
    record = services.catalog.get(submission.job.tenant, submission.job.document_id)
    return replace(submission, job=job, record=record)
