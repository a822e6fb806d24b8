"""Ingest jobs: what any worker needs to index one stored file, and their book of record.

A job names a document (id, content hash, version) and the blob holding its bytes.
The queue engine only delivers job ids; this book, in the shared catalog database,
is what makes delivery safe:

- a worker *claims* a job (queued, or running under an expired lease) with one
  compare-and-set, so a duplicate delivery runs nothing;
- while it runs, the worker renews its *lease* and publishes progress; a killed
  worker stops renewing, and the job is handed out again (at-least-once);
- every attempt writes its points under a fresh run id, and only the finished run's
  points survive, so a redelivered job ends with exactly the points of a clean run;
- cancelling (deleting the document) flips the state: the worker's next renewal
  fails, it stops, and nothing it does afterwards can re-create the document.
"""

from __future__ import annotations

import enum
import json
import os
import socket
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from sqlalchemy import Engine, and_, case, func, insert, or_, select, update

from mmrag.db import jobs


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


@dataclass(frozen=True, slots=True)
class JobProgress:
    """Where a running job is: its stage and what it has done so far."""

    stage: str = "queued"  # queued, parsing, indexing, finishing, done, failed, cancelled
    pages: int = 0
    pages_total: int = 0
    chunks: int = 0
    images: int = 0

    def advanced(self, *, pages: int = 0, chunks: int = 0, images: int = 0) -> JobProgress:
        return replace(
            self, pages=self.pages + pages, chunks=self.chunks + chunks, images=self.images + images
        )


@dataclass(frozen=True, slots=True)
class IngestJob:
    """One document version to index: any worker with the blob store can run it."""

    job_id: str
    tenant: str
    document_id: str
    blob_key: str  # the file's bytes in the blob store
    filename: str  # the name it was given (shown; used for type hints and chunk context)
    content_hash: str
    version: int
    force: bool = False
    state: JobState = JobState.QUEUED
    attempts: int = 0  # deliveries that started running (a killed worker's included)
    retries: int = 0  # transient failures retried so far
    run_id: str = ""  # the current attempt's run id (tags its points)
    error: str = ""
    error_kind: str = ""  # the error's class name, for metrics by reason
    progress: JobProgress = field(default_factory=JobProgress)
    lease_owner: str = ""
    lease_expires: float = 0.0
    created_at: float = 0.0
    started_at: float = 0.0
    finished_at: float = 0.0

    @classmethod
    def new(
        cls,
        *,
        tenant: str,
        document_id: str,
        blob_key: str,
        filename: str,
        content_hash: str,
        version: int,
        force: bool = False,
    ) -> IngestJob:
        return cls(
            job_id=uuid.uuid4().hex,
            tenant=tenant,
            document_id=document_id,
            blob_key=blob_key,
            filename=filename,
            content_hash=content_hash,
            version=version,
            force=force,
            created_at=time.time(),
        )

    @property
    def seconds(self) -> float:
        """Run time so far (or in all, once finished)."""
        if not self.started_at:
            return 0.0
        return (self.finished_at or time.time()) - self.started_at

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.job_id,
            "document_id": self.document_id,
            "filename": self.filename,
            "state": self.state.value,
            "version": self.version,
            "attempts": self.attempts,
            "retries": self.retries,
            "error": self.error,
            "progress": asdict(self.progress),
            "created_at": self.created_at,
            "started_at": self.started_at or None,
            "finished_at": self.finished_at or None,
            "seconds": round(self.seconds, 3),
        }


_COLUMNS = (
    "job_id",
    "tenant",
    "document_id",
    "blob_key",
    "filename",
    "content_hash",
    "version",
    "run_id",
    "error",
    "error_kind",
    "lease_owner",
    "lease_expires",
    "created_at",
    "started_at",
    "finished_at",
    "attempts",
    "retries",
)


def worker_name() -> str:
    """Who holds a lease: host, process and a random part (a restarted process differs)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _abandoned(owner: str, lease_expires: float, everything: bool) -> bool:
    """Whether a lease's worker stopped: the lease lapsed, or (``everything``) the owner
    is not a live process of this machine (`worker_name` says which one it was)."""
    if lease_expires < time.time():
        return True
    if not everything:
        return False
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def _job(row: Any) -> IngestJob:
    values = {name: getattr(row, name) for name in _COLUMNS}
    return IngestJob(
        **values,
        force=bool(row.force),
        state=JobState(row.state),
        progress=JobProgress(**json.loads(row.progress)),
    )


_ACTIVE = (JobState.QUEUED.value, JobState.RUNNING.value)


def _progress(progress: JobProgress) -> str:
    return json.dumps(asdict(progress))


class JobBook:
    """The jobs table: submit, claim, renew, finish, cancel, reclaim."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, job: IngestJob) -> IngestJob:
        values = {name: getattr(job, name) for name in _COLUMNS}
        with self.engine.begin() as connection:
            connection.execute(
                insert(jobs).values(
                    **values,
                    force=int(job.force),
                    state=job.state.value,
                    progress=_progress(job.progress),
                )
            )
        return job

    def get(self, job_id: str, *, tenant: str | None = None) -> IngestJob | None:
        """A job by id; with ``tenant``, only that tenant's (a foreign id is not found)."""
        condition = jobs.c.job_id == job_id
        if tenant is not None:
            condition = and_(condition, jobs.c.tenant == tenant)
        with self.engine.connect() as connection:
            row = connection.execute(select(jobs).where(condition)).first()
        return _job(row) if row else None

    def latest(self, tenant: str, document_id: str) -> IngestJob | None:
        """The document's newest job."""
        query = (
            select(jobs)
            .where(and_(jobs.c.tenant == tenant, jobs.c.document_id == document_id))
            .order_by(jobs.c.created_at.desc())
            .limit(1)
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return _job(row) if row else None

    def claim(self, job_id: str, owner: str, lease_s: float) -> IngestJob | None:
        """Start running a job: queued, or running under a lease that expired (its
        worker died). None when it is finished, cancelled or alive elsewhere."""
        now = time.time()
        claimable = or_(
            jobs.c.state == JobState.QUEUED.value,
            and_(jobs.c.state == JobState.RUNNING.value, jobs.c.lease_expires < now),
        )
        with self.engine.begin() as connection:
            claimed = connection.execute(
                update(jobs)
                .where(and_(jobs.c.job_id == job_id, claimable))
                .values(
                    state=JobState.RUNNING.value,
                    attempts=jobs.c.attempts + 1,
                    run_id=uuid.uuid4().hex,
                    lease_owner=owner,
                    lease_expires=now + lease_s,
                    started_at=func.coalesce(func.nullif(jobs.c.started_at, 0.0), now),
                    progress=_progress(JobProgress(stage="parsing")),
                )
            ).rowcount
        return self.get(job_id) if claimed else None

    def _update_owned(self, job_id: str, owner: str, **values: Any) -> bool:
        """Change a job only while ``owner`` runs it; False when it no longer does."""
        owned = and_(
            jobs.c.job_id == job_id,
            jobs.c.lease_owner == owner,
            jobs.c.state == JobState.RUNNING.value,
        )
        with self.engine.begin() as connection:
            return bool(connection.execute(update(jobs).where(owned).values(**values)).rowcount)

    def renew(
        self, job_id: str, owner: str, lease_s: float, progress: JobProgress | None = None
    ) -> bool:
        """Extend the lease (and publish progress); False when the job was cancelled or
        handed to another worker: the caller must stop."""
        values: dict[str, Any] = {"lease_expires": time.time() + lease_s}
        if progress is not None:
            values["progress"] = _progress(progress)
        return self._update_owned(job_id, owner, **values)

    def finish(
        self,
        job_id: str,
        owner: str,
        state: JobState,
        *,
        progress: JobProgress,
        error: str = "",
        error_kind: str = "",
    ) -> bool:
        """Record the outcome; False when the job was no longer this worker's."""
        return self._update_owned(
            job_id,
            owner,
            state=state.value,
            error=error,
            error_kind=error_kind,
            finished_at=time.time(),
            lease_owner="",
            lease_expires=0.0,
            progress=_progress(replace(progress, stage=state.value)),
        )

    def release(self, job_id: str, owner: str, error: str, *, retry: bool) -> bool:
        """Back to queued, after a transient failure (``retry``: counted) or because the
        worker is stopping; the caller has the queue deliver it again."""
        return self._update_owned(
            job_id,
            owner,
            state=JobState.QUEUED.value,
            retries=jobs.c.retries + int(retry),
            error=error,
            lease_owner="",
            lease_expires=0.0,
            progress=_progress(JobProgress(stage="retrying" if retry else "queued")),
        )

    def cancel(self, tenant: str, document_id: str) -> list[str]:
        """Cancel the document's queued and running jobs; their ids. A running job keeps
        its owner and shows the stage ``cancelling`` until that worker has dropped what it
        wrote (`settle_cancelled`); then ``cancelled``."""
        condition = and_(
            jobs.c.tenant == tenant, jobs.c.document_id == document_id, jobs.c.state.in_(_ACTIVE)
        )
        stage = case(
            (jobs.c.lease_owner != "", _progress(JobProgress(stage="cancelling"))),
            else_=_progress(JobProgress(stage="cancelled")),
        )
        with self.engine.begin() as connection:
            ids = [row.job_id for row in connection.execute(select(jobs.c.job_id).where(condition))]
            connection.execute(
                update(jobs)
                .where(and_(jobs.c.job_id.in_(ids), jobs.c.state.in_(_ACTIVE)))
                .values(state=JobState.CANCELLED.value, finished_at=time.time(), progress=stage)
            )
        return ids

    def settle_cancelled(self, job_id: str, owner: str) -> bool:
        """The worker of a cancelled job has stopped and dropped its writes."""
        with self.engine.begin() as connection:
            settled = connection.execute(
                update(jobs)
                .where(
                    and_(
                        jobs.c.job_id == job_id,
                        jobs.c.lease_owner == owner,
                        jobs.c.state == JobState.CANCELLED.value,
                    )
                )
                .values(lease_owner="", progress=_progress(JobProgress(stage="cancelled")))
            ).rowcount
        return bool(settled)

    def abandoned_cancellations(self, *, everything: bool = False) -> list[IngestJob]:
        """Cancelled jobs whose worker died before dropping its writes: its lease lapsed
        (``everything``: or it is not a live process of this machine)."""
        query = select(jobs).where(
            and_(jobs.c.state == JobState.CANCELLED.value, jobs.c.lease_owner != "")
        )
        with self.engine.connect() as connection:
            found = [_job(row) for row in connection.execute(query)]
        return [job for job in found if _abandoned(job.lease_owner, job.lease_expires, everything)]

    def requeue_expired(self, *, everything: bool = False) -> list[str]:
        """Running jobs whose worker stopped renewing, back to queued (``everything``: every
        running job except those of live processes on this machine, without waiting for
        their leases, for the process that runs an embedded data directory's jobs after a
        restart). A live process keeps its jobs: two processes may share a data directory
        (different collections), and neither takes the other's jobs."""
        running = select(jobs.c.job_id, jobs.c.lease_owner, jobs.c.lease_expires).where(
            jobs.c.state == JobState.RUNNING.value
        )
        with self.engine.begin() as connection:
            ids = [
                row.job_id
                for row in connection.execute(running)
                if _abandoned(row.lease_owner, row.lease_expires, everything)
            ]
            if ids:
                connection.execute(
                    update(jobs)
                    .where(and_(jobs.c.job_id.in_(ids), jobs.c.state == JobState.RUNNING.value))
                    .values(state=JobState.QUEUED.value, lease_owner="", lease_expires=0.0)
                )
        return ids

    def queued(self, limit: int = 100_000) -> list[str]:
        query = (
            select(jobs.c.job_id)
            .where(jobs.c.state == JobState.QUEUED.value)
            .order_by(jobs.c.created_at)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [row.job_id for row in connection.execute(query)]

    def counts(self) -> dict[str, int]:
        """Jobs per state (every tenant)."""
        query = select(jobs.c.state, func.count()).group_by(jobs.c.state)
        with self.engine.connect() as connection:
            found = {state: int(count) for state, count in connection.execute(query)}
        return {state.value: found.get(state.value, 0) for state in JobState}

    def failures(self) -> dict[str, int]:
        """Failed jobs per error kind (every tenant)."""
        query = (
            select(jobs.c.error_kind, func.count())
            .where(jobs.c.state == JobState.FAILED.value)
            .group_by(jobs.c.error_kind)
        )
        with self.engine.connect() as connection:
            return {kind or "unknown": int(count) for kind, count in connection.execute(query)}
