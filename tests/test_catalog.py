"""The catalog and the job book behave the same on SQLite and on PostgreSQL.

Every test runs twice through `catalog_url`: once on a SQLite file, once on a fresh
PostgreSQL database (the real server of `tests.servers_fixtures`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, event, inspect, text

import mmrag.catalog
from mmrag.catalog import Catalog
from mmrag.errors import DocumentNotFoundError
from mmrag.jobs import IngestJob, JobBook, JobProgress, JobState
from mmrag.types import DocumentRecord, DocumentStatus

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
Clock = Callable[[int], None]  # sets the catalog's clock to T0 + minutes


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/catalog.sqlite3"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def catalog(catalog_url: str) -> Iterator[Catalog]:
    catalog = Catalog.open(catalog_url)
    yield catalog
    catalog.close()


@pytest.fixture
def book(catalog: Catalog) -> JobBook:
    return JobBook(catalog.engine)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The catalog's clock, set by the test: ``clock(minutes)`` makes it T0 + minutes."""
    now = [T0]
    monkeypatch.setattr(mmrag.catalog, "_now", lambda: now[0])

    def set_minutes(minutes: int) -> None:
        now[0] = T0 + timedelta(minutes=minutes)

    return set_minutes


def _document(document_id: str = "doc1", **changes: object) -> DocumentRecord:
    record = DocumentRecord(
        document_id=document_id,
        path=f"/data/{document_id}.pdf",
        content_hash="c" * 64,
        status=DocumentStatus.QUEUED,
        version=1,
    )
    return replace(record, **changes)  # type: ignore[arg-type]


def _add_job(
    book: JobBook, tenant: str = "acme", document_id: str = "doc1", created_at: float = 0.0
) -> IngestJob:
    job = IngestJob.new(
        tenant=tenant,
        document_id=document_id,
        blob_key=f"blobs/{document_id}",
        filename=f"{document_id}.pdf",
        content_hash="c" * 64,
        version=1,
    )
    return book.add(replace(job, created_at=created_at) if created_at else job)


def _state(book: JobBook, job: IngestJob) -> JobState:
    found = book.get(job.job_id)
    assert found is not None
    return found.state


# --- Catalog: documents -----------------------------------------------------------------


def test_save_then_get_round_trips_every_field(catalog: Catalog, clock: Clock) -> None:
    record = _document(
        filename="report.pdf",
        status=DocumentStatus.INDEXED,
        version=3,
        file_type="pdf",
        error="page 4 unreadable",
        warnings=("no text on page 2", 'quote " and, comma', "ünïcode"),
        pages=7,
        chunks=41,
        images=5,
        points=46,
        run_id="r" * 32,
    )
    saved = catalog.save("acme", record)

    assert saved == catalog.get("acme", "doc1") == catalog.require("acme", "doc1")
    assert replace(saved, created_at=None, updated_at=None) == record
    assert isinstance(saved.warnings, tuple)
    assert saved.created_at is not None and saved.created_at.tzinfo is not None
    assert saved.updated_at is not None and saved.updated_at.tzinfo is not None
    assert saved.created_at == saved.updated_at == T0


def test_a_later_save_keeps_created_at_and_moves_updated_at(catalog: Catalog, clock: Clock) -> None:
    catalog.save("acme", _document())
    clock(5)
    saved = catalog.save("acme", _document(status=DocumentStatus.INDEXED, version=2))

    assert (saved.status, saved.version) == (DocumentStatus.INDEXED, 2)
    assert saved.created_at == T0
    assert saved.updated_at == T0 + timedelta(minutes=5)
    assert catalog.count("acme") == 1


def test_list_is_ordered_paged_and_scoped_by_tenant(catalog: Catalog) -> None:
    for name in ["c", "a", "d", "b"]:
        catalog.save("acme", _document(f"id{name}", path=f"/data/{name}.pdf"))
    catalog.save("other", _document("idz", path="/data/0.pdf"))

    assert [r.document_id for r in catalog.list("acme")] == ["ida", "idb", "idc", "idd"]
    assert [r.document_id for r in catalog.list("acme", limit=2)] == ["ida", "idb"]
    assert [r.document_id for r in catalog.list("acme", limit=2, offset=2)] == ["idc", "idd"]
    assert [r.document_id for r in catalog.list("acme", offset=3)] == ["idd"]
    assert catalog.count("acme") == 4
    assert [r.document_id for r in catalog.list("other")] == ["idz"]
    assert catalog.count("other") == 1
    assert catalog.list("nobody") == [] and catalog.count("nobody") == 0


def test_same_path_is_ordered_by_document_id(catalog: Catalog) -> None:
    for document_id in ["id2", "id3", "id1"]:
        catalog.save("acme", _document(document_id, path="/data/same.pdf"))

    assert [r.document_id for r in catalog.list("acme")] == ["id1", "id2", "id3"]


def test_a_record_of_another_tenant_is_not_found(catalog: Catalog) -> None:
    catalog.save("acme", _document())

    assert catalog.get("other", "doc1") is None
    with pytest.raises(DocumentNotFoundError):
        catalog.require("other", "doc1")
    with pytest.raises(DocumentNotFoundError):
        catalog.require("acme", "unknown")


def test_saving_a_foreign_document_id_raises_and_keeps_the_owner_record(
    catalog: Catalog,
) -> None:
    catalog.save("acme", _document(version=1))

    with pytest.raises(DocumentNotFoundError):
        catalog.save("other", _document(version=9))

    assert catalog.require("acme", "doc1").version == 1
    assert catalog.count("other") == 0


def test_update_changes_an_existing_record_only(catalog: Catalog, clock: Clock) -> None:
    catalog.save("acme", _document())
    clock(1)

    assert catalog.update("acme", _document(status=DocumentStatus.FAILED, error="boom"))
    updated = catalog.require("acme", "doc1")
    assert (updated.status, updated.error) == (DocumentStatus.FAILED, "boom")
    assert (updated.created_at, updated.updated_at) == (T0, T0 + timedelta(minutes=1))

    assert not catalog.update("acme", _document("unknown"))
    assert catalog.get("acme", "unknown") is None
    assert not catalog.update("other", _document(version=9))
    assert catalog.get("other", "doc1") is None
    assert catalog.require("acme", "doc1").version == 1


def test_update_never_recreates_a_deleted_document(catalog: Catalog) -> None:
    catalog.save("acme", _document())
    assert catalog.delete("acme", "doc1")

    assert not catalog.update("acme", _document(status=DocumentStatus.INDEXED))
    assert catalog.get("acme", "doc1") is None
    assert catalog.count("acme") == 0


def test_delete_is_tenant_scoped(catalog: Catalog) -> None:
    catalog.save("acme", _document())

    assert not catalog.delete("other", "doc1")
    assert catalog.get("acme", "doc1") is not None
    assert catalog.delete("acme", "doc1")
    assert catalog.get("acme", "doc1") is None
    assert not catalog.delete("acme", "doc1")


def _before_insert_into(engine: Engine, table: str, rival: Callable[[], object]) -> None:
    """Run ``rival`` (another process's write, on its own engine) once, right before
    ``engine`` next inserts into ``table``: a race, made deterministic."""

    pending = [rival]

    def hook(*args: object) -> None:
        if pending and str(args[2]).startswith(f"INSERT INTO {table}"):
            pending.pop()()

    event.listen(engine, "before_cursor_execute", hook)


def test_two_first_saves_of_one_document_racing_both_succeed(
    catalog: Catalog, catalog_url: str
) -> None:
    rival = Catalog.open(catalog_url)
    _before_insert_into(catalog.engine, "documents", lambda: rival.save("acme", _document()))
    try:
        saved = catalog.save("acme", _document(version=2))
    finally:
        rival.close()

    assert saved.version == 2


# --- Catalog: caption cache -------------------------------------------------------------


def test_caption_cache_round_trip_over_many_ids(catalog: Catalog) -> None:
    texts = {f"img{i:04d}": f"caption {i}" for i in range(1234)}  # > 500: chunked IN
    catalog.store_captions("model-a", texts)

    asked = [*texts, "missing1", "img0000", "missing2"]  # unknown ids and a repeat
    assert catalog.cached_captions("model-a", asked) == texts
    assert catalog.cached_captions("model-b", texts) == {}
    assert catalog.cached_captions("model-a", []) == {}


def test_storing_the_same_captions_again_does_not_raise(catalog: Catalog) -> None:
    first = {f"img{i:04d}": f"caption {i}" for i in range(600)}
    catalog.store_captions("model-a", first)

    again = {image_id: "another text" for image_id in first} | {"img9999": "new"}
    catalog.store_captions("model-a", again)
    catalog.store_captions("model-a", {})

    assert catalog.cached_captions("model-a", again) == first | {"img9999": "new"}


def test_a_caption_cached_meanwhile_loses_none_of_the_others(
    catalog: Catalog, catalog_url: str
) -> None:
    rival = Catalog.open(catalog_url)
    rival_store = lambda: rival.store_captions("model-a", {"img1": "a cat"})  # noqa: E731
    _before_insert_into(catalog.engine, "captions", rival_store)
    try:
        catalog.store_captions("model-a", {"img1": "a cat", "img2": "a dog"})
    finally:
        rival.close()

    assert catalog.cached_captions("model-a", ["img1", "img2"]) == {
        "img1": "a cat",
        "img2": "a dog",
    }


# --- Catalog: reopening and schema upgrades ---------------------------------------------


def test_a_reopened_catalog_sees_the_data(catalog_url: str) -> None:
    first = Catalog.open(catalog_url)
    first.save("acme", _document(filename="a.pdf", run_id="r1"))
    first.store_captions("model-a", {"img1": "a cat"})
    job = _add_job(JobBook(first.engine))
    first.close()

    second = Catalog.open(catalog_url)
    try:
        record = second.require("acme", "doc1")
        assert (record.filename, record.run_id) == ("a.pdf", "r1")
        assert second.cached_captions("model-a", ["img1"]) == {"img1": "a cat"}
        assert JobBook(second.engine).get(job.job_id) == job
    finally:
        second.close()


_OLD_DOCUMENTS = """
CREATE TABLE documents (
    document_id VARCHAR(32) PRIMARY KEY,
    tenant VARCHAR(64) NOT NULL,
    path TEXT NOT NULL,
    content_hash VARCHAR(64) NOT NULL,
    status VARCHAR(16) NOT NULL,
    version INTEGER NOT NULL,
    file_type VARCHAR(16) NOT NULL DEFAULT '',
    error TEXT NOT NULL DEFAULT '',
    warnings TEXT NOT NULL DEFAULT '[]',
    pages INTEGER NOT NULL DEFAULT 0,
    chunks INTEGER NOT NULL DEFAULT 0,
    images INTEGER NOT NULL DEFAULT 0,
    points INTEGER NOT NULL DEFAULT 0,
    created_at {timestamp} NOT NULL,
    updated_at {timestamp} NOT NULL
)
"""

_OLD_ROW = """
INSERT INTO documents (document_id, tenant, path, content_hash, status, version,
                       created_at, updated_at)
VALUES ('old1', 'acme', '/data/old.pdf', 'h', 'indexed', 2,
        '2024-01-02 03:04:05', '2024-01-02 03:04:05')
"""


def test_an_old_schema_is_upgraded_on_open(catalog_url: str) -> None:
    engine = create_engine(catalog_url)
    timestamp = "DATETIME" if engine.dialect.name == "sqlite" else "TIMESTAMP WITH TIME ZONE"
    with engine.begin() as connection:
        connection.execute(text(_OLD_DOCUMENTS.format(timestamp=timestamp)))
        connection.execute(text(_OLD_ROW))
    engine.dispose()

    catalog = Catalog.open(catalog_url)
    try:
        columns = {c["name"] for c in inspect(catalog.engine).get_columns("documents")}
        assert {"filename", "run_id"} <= columns
        old = catalog.require("acme", "old1")
        assert (old.filename, old.run_id, old.version) == ("", "", 2)
        assert old.created_at is not None and old.created_at.tzinfo is not None

        catalog.save("acme", _document("new1", filename="new.pdf", run_id="r2"))
        assert catalog.update("acme", replace(old, filename="old.pdf", run_id="r1"))
        assert [(r.filename, r.run_id) for r in catalog.list("acme")] == [
            ("new.pdf", "r2"),
            ("old.pdf", "r1"),
        ]
    finally:
        catalog.close()


# --- JobBook: records -------------------------------------------------------------------


def test_add_then_get_is_tenant_scoped(book: JobBook) -> None:
    job = _add_job(book)

    assert book.get(job.job_id) == job
    assert book.get(job.job_id, tenant="acme") == job
    assert book.get(job.job_id, tenant="other") is None
    assert book.get("unknown") is None
    assert job.state is JobState.QUEUED and job.progress == JobProgress()


def test_latest_is_the_newest_job_of_the_document(book: JobBook) -> None:
    _add_job(book, created_at=100.0)
    newest = _add_job(book, created_at=300.0)
    _add_job(book, created_at=200.0)
    _add_job(book, document_id="doc2", created_at=400.0)
    _add_job(book, tenant="other", created_at=500.0)

    latest = book.latest("acme", "doc1")
    assert latest is not None and latest.job_id == newest.job_id
    assert book.latest("acme", "unknown") is None
    assert book.latest("nobody", "doc1") is None


# --- JobBook: claims and leases ---------------------------------------------------------


def test_claim_starts_a_queued_job(book: JobBook) -> None:
    job = _add_job(book)
    before = time.time()

    claimed = book.claim(job.job_id, "worker-1", lease_s=30)

    assert claimed is not None and claimed == book.get(job.job_id)
    assert claimed.state is JobState.RUNNING
    assert claimed.attempts == 1
    assert len(claimed.run_id) == 32
    assert claimed.lease_owner == "worker-1"
    assert claimed.lease_expires >= before + 30
    assert claimed.started_at >= before
    assert claimed.progress.stage == "parsing"


def test_a_second_claim_while_the_lease_lives_returns_none(book: JobBook) -> None:
    job = _add_job(book)
    first = book.claim(job.job_id, "worker-1", lease_s=30)

    assert book.claim(job.job_id, "worker-2", lease_s=30) is None
    assert book.claim(job.job_id, "worker-1", lease_s=30) is None  # not even its owner
    assert book.get(job.job_id) == first
    assert book.claim("unknown", "worker-2", lease_s=30) is None


def test_an_expired_lease_is_claimed_by_another_worker(book: JobBook) -> None:
    job = _add_job(book)
    first = book.claim(job.job_id, "worker-1", lease_s=0.05)
    assert first is not None
    time.sleep(0.1)

    second = book.claim(job.job_id, "worker-2", lease_s=30)

    assert second is not None
    assert (second.attempts, second.lease_owner) == (2, "worker-2")
    assert second.run_id not in ("", first.run_id)
    assert second.started_at == first.started_at
    assert not book.renew(job.job_id, "worker-1", lease_s=30)


def test_renew_by_the_owner_extends_the_lease_and_stores_progress(book: JobBook) -> None:
    job = _add_job(book)
    claimed = book.claim(job.job_id, "worker-1", lease_s=1)
    assert claimed is not None
    progress = JobProgress(stage="indexing", pages=3, pages_total=9, chunks=12, images=2)

    assert book.renew(job.job_id, "worker-1", lease_s=60, progress=progress)
    renewed = book.get(job.job_id)
    assert renewed is not None
    assert renewed.progress == progress
    assert renewed.lease_expires > claimed.lease_expires + 50

    assert book.renew(job.job_id, "worker-1", lease_s=60)  # no progress: kept
    assert book.get(job.job_id).progress == progress  # type: ignore[union-attr]


def test_renew_by_another_owner_fails(book: JobBook) -> None:
    job = _add_job(book)
    claimed = book.claim(job.job_id, "worker-1", lease_s=30)

    assert not book.renew(job.job_id, "worker-2", lease_s=600, progress=JobProgress("x"))
    assert book.get(job.job_id) == claimed
    assert not book.renew(_add_job(book).job_id, "worker-1", lease_s=30)  # queued: nobody's


def test_finish_by_the_owner_records_the_outcome(book: JobBook) -> None:
    job = _add_job(book)
    book.claim(job.job_id, "worker-1", lease_s=30)
    progress = JobProgress(stage="indexing", pages=2)

    assert not book.finish(job.job_id, "worker-2", JobState.DONE, progress=progress)
    assert book.finish(
        job.job_id,
        "worker-1",
        JobState.FAILED,
        progress=progress,
        error="cannot parse",
        error_kind="CorruptFileError",
    )

    finished = book.get(job.job_id)
    assert finished is not None
    assert (finished.state, finished.error, finished.error_kind) == (
        JobState.FAILED,
        "cannot parse",
        "CorruptFileError",
    )
    assert (finished.lease_owner, finished.lease_expires) == ("", 0.0)
    assert finished.finished_at >= finished.started_at > 0
    assert finished.progress == replace(progress, stage="failed")
    assert not book.finish(job.job_id, "worker-1", JobState.DONE, progress=progress)
    assert book.claim(job.job_id, "worker-2", lease_s=30) is None


@pytest.mark.parametrize(
    ("retry", "retries", "stage"), [(True, 1, "retrying"), (False, 0, "queued")]
)
def test_release_returns_the_job_to_the_queue(
    book: JobBook, retry: bool, retries: int, stage: str
) -> None:
    job = _add_job(book)
    book.claim(job.job_id, "worker-1", lease_s=30)

    assert not book.release(job.job_id, "worker-2", "not mine", retry=retry)
    assert book.release(job.job_id, "worker-1", "timeout", retry=retry)

    released = book.get(job.job_id)
    assert released is not None
    assert (released.state, released.retries, released.error) == (
        JobState.QUEUED,
        retries,
        "timeout",
    )
    assert (released.lease_owner, released.lease_expires) == ("", 0.0)
    assert released.progress.stage == stage
    assert book.queued() == [job.job_id]
    assert not book.release(job.job_id, "worker-1", "again", retry=retry)  # no longer running


def test_retries_accumulate_over_releases(book: JobBook) -> None:
    job = _add_job(book)
    for _ in range(3):
        book.claim(job.job_id, "worker-1", lease_s=30)
        book.release(job.job_id, "worker-1", "flaky", retry=True)

    released = book.get(job.job_id)
    assert released is not None and (released.retries, released.attempts) == (3, 3)


# --- JobBook: cancel and requeue --------------------------------------------------------


def test_cancel_stops_the_active_jobs_of_that_document_only(book: JobBook) -> None:
    queued = _add_job(book)
    running = _add_job(book)
    book.claim(running.job_id, "worker-1", lease_s=30)
    done = _add_job(book)
    book.claim(done.job_id, "worker-2", lease_s=30)
    book.finish(done.job_id, "worker-2", JobState.DONE, progress=JobProgress())
    other_document = _add_job(book, document_id="doc2")
    other_tenant = _add_job(book, tenant="other")

    cancelled = book.cancel("acme", "doc1")

    assert sorted(cancelled) == sorted([queued.job_id, running.job_id])
    assert _state(book, queued) is JobState.CANCELLED
    assert _state(book, running) is JobState.CANCELLED
    assert _state(book, done) is JobState.DONE
    assert _state(book, other_document) is JobState.QUEUED
    assert _state(book, other_tenant) is JobState.QUEUED
    assert not book.renew(running.job_id, "worker-1", lease_s=30)
    assert not book.finish(running.job_id, "worker-1", JobState.DONE, progress=JobProgress())
    assert book.claim(queued.job_id, "worker-3", lease_s=30) is None
    assert book.get(queued.job_id).progress.stage == "cancelled"  # type: ignore[union-attr]
    # The running job's worker still has to drop what it wrote: "cancelling" until then.
    assert book.get(running.job_id).progress.stage == "cancelling"  # type: ignore[union-attr]
    assert [job.job_id for job in book.abandoned_cancellations()] == []  # its lease is alive
    assert [job.job_id for job in book.abandoned_cancellations(everything=True)] == [running.job_id]
    assert not book.settle_cancelled(running.job_id, "worker-2")
    assert book.settle_cancelled(running.job_id, "worker-1")
    settled = book.get(running.job_id)
    assert settled is not None and settled.progress.stage == "cancelled"
    assert settled.lease_owner == "" and book.abandoned_cancellations(everything=True) == []
    assert book.cancel("acme", "doc1") == []


def test_requeue_expired_takes_back_only_lapsed_running_jobs(book: JobBook) -> None:
    lapsed = _add_job(book, document_id="doc1")
    alive = _add_job(book, document_id="doc2")
    queued = _add_job(book, document_id="doc3")
    book.claim(lapsed.job_id, "worker-1", lease_s=0.05)
    book.claim(alive.job_id, "worker-2", lease_s=30)
    time.sleep(0.1)

    assert book.requeue_expired() == [lapsed.job_id]
    requeued = book.get(lapsed.job_id)
    assert requeued is not None
    assert (requeued.state, requeued.lease_owner) == (JobState.QUEUED, "")
    assert not book.renew(lapsed.job_id, "worker-1", lease_s=30)
    assert _state(book, alive) is JobState.RUNNING
    assert _state(book, queued) is JobState.QUEUED
    assert book.requeue_expired() == []


def test_requeue_everything_takes_back_every_running_job(book: JobBook) -> None:
    jobs = [_add_job(book, document_id=f"doc{i}") for i in range(3)]
    for job in jobs[:2]:
        book.claim(job.job_id, "worker-1", lease_s=30)

    assert sorted(book.requeue_expired(everything=True)) == sorted(j.job_id for j in jobs[:2])
    assert all(_state(book, job) is JobState.QUEUED for job in jobs)
    assert book.requeue_expired(everything=True) == []


def test_requeue_everything_leaves_live_processes_their_jobs(book: JobBook) -> None:
    """Two processes on one data directory (two collections): a restart of one must not
    take the running jobs of the other, only those of processes that are gone."""
    import socket
    import subprocess
    import sys

    from mmrag.jobs import worker_name

    mine, gone = _add_job(book, document_id="doc1"), _add_job(book, document_id="doc2")
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead_owner = f"{socket.gethostname()}:{finished.stdout.strip()}:abc123"
    book.claim(mine.job_id, worker_name(), lease_s=30)
    book.claim(gone.job_id, dead_owner, lease_s=30)

    assert book.requeue_expired(everything=True) == [gone.job_id]
    assert _state(book, mine) is JobState.RUNNING


# --- JobBook: overviews -----------------------------------------------------------------


def test_queued_lists_queued_jobs_in_creation_order(book: JobBook) -> None:
    third = _add_job(book, document_id="doc3", created_at=300.0)
    first = _add_job(book, document_id="doc1", created_at=100.0)
    running = _add_job(book, document_id="doc0", created_at=50.0)
    book.claim(running.job_id, "worker-1", lease_s=30)
    second = _add_job(book, tenant="other", created_at=200.0)

    assert book.queued() == [first.job_id, second.job_id, third.job_id]
    assert book.queued(limit=2) == [first.job_id, second.job_id]


def test_counts_has_every_state(book: JobBook) -> None:
    assert book.counts() == {state.value: 0 for state in JobState}

    _add_job(book)
    _add_job(book, tenant="other")
    running = _add_job(book)
    book.claim(running.job_id, "worker-1", lease_s=30)

    assert book.counts() == {"queued": 2, "running": 1, "done": 0, "failed": 0, "cancelled": 0}


def test_failures_are_grouped_by_error_kind(book: JobBook) -> None:
    kinds = ["CorruptFileError", "CorruptFileError", "ModelTimeoutError", ""]
    for kind in kinds:
        job = _add_job(book)
        book.claim(job.job_id, "worker-1", lease_s=30)
        book.finish(
            job.job_id, "worker-1", JobState.FAILED, progress=JobProgress(), error_kind=kind
        )
    done = _add_job(book)
    book.claim(done.job_id, "worker-1", lease_s=30)
    book.finish(done.job_id, "worker-1", JobState.DONE, progress=JobProgress())

    assert book.failures() == {"CorruptFileError": 2, "ModelTimeoutError": 1, "unknown": 1}


# --- Concurrency ------------------------------------------------------------------------


def test_exactly_one_of_eight_racing_workers_claims_a_job(book: JobBook) -> None:
    job = _add_job(book)
    start = threading.Barrier(8)
    won: list[str] = []
    errors: list[BaseException] = []

    def race(owner: str) -> None:
        start.wait()
        try:
            if book.claim(job.job_id, owner, lease_s=30) is not None:
                won.append(owner)
        except BaseException as exc:  # surfaced below: a thread's error is otherwise lost
            errors.append(exc)

    threads = [threading.Thread(target=race, args=(f"worker-{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert len(won) == 1
    claimed = book.get(job.job_id)
    assert claimed is not None
    assert (claimed.lease_owner, claimed.attempts) == (won[0], 1)
