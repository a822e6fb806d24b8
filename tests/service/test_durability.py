"""Durability across real processes: ``mmrag serve`` and ``mmrag worker`` killed with
SIGKILL and restarted, ``mmrag ingest`` beside a running service, concurrent workers.

Every document must end indexed with exactly the points of a clean, uninterrupted run:
none lost, none duplicated, none left over from an abandoned run. Run with
``pytest -m multiprocess tests/service``; MMRAG_TEST_SEED=N replays a run's kill times.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from mmrag.errors import StoreError
from mmrag.jobs import IngestJob, JobBook, JobState
from mmrag.models.base import Captioner, TextEmbedder
from mmrag.services import Services, build_services
from mmrag.settings import Settings, StoreSettings
from mmrag.store import (
    CollectionSchema,
    PointFilter,
    VectorKind,
    VectorSpec,
    VectorStore,
    open_store,
    point_id,
)
from mmrag.testing.documents import write_long_pdf, write_pdf, write_text
from mmrag.testing.servers import HOST, free_port
from mmrag.types import DocumentStatus, StoredPoint

pytestmark = pytest.mark.multiprocess

MMRAG = Path(sys.executable).with_name("mmrag")  # the venv's console script
TENANT = "default"  # the CLI's and a keyless API's tenant
LONG_PAGES = (40, 45, 50, 60)
# Killed workers' files: the long PDFs mostly outlive a worker (killed 0.5-4 s into a job);
# the small files end at random points of a round.
WORKER_FILES = ("long-40.pdf", "long-60.pdf", "plain.txt", "report.pdf")
KILL_ROUNDS = 10
POLL_S = 0.1
# Small batches: a killed run has upserted points before it dies. Element indices depend
# on the batch size, so every run here, the clean one included, uses the same.
BATCH_SIZE = 16
CHILD_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "COLUMNS": "1000",  # rich wraps at 80 columns off a terminal: keep messages whole
    "MMRAG_QUEUE__POLL_S": "0.2",
    "MMRAG_QUEUE__LEASE_S": "2",  # a killed worker's job is handed out again quickly
    "MMRAG_INGEST__BATCH_SIZE": str(BATCH_SIZE),
}
T = TypeVar("T")


class MmragProcess:
    """One ``mmrag`` command in a process group of its own, its output in a log file."""

    def __init__(self, args: list[str], *, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [str(MMRAG), *args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # kill() takes its children (tesseract) too
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the process and its children, as a crash would."""
        if self.alive():  # a reaped process's group id may belong to someone else by now
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM (a clean shutdown flushes the store); SIGKILL if it hangs."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self, chars: int = 4000) -> str:
        return f"--- {self.log_path.name} ---\n{self.output()[-chars:]}"


class Launcher:
    """Starts one test's ``mmrag`` processes; the fixture kills whatever is left."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: list[MmragProcess] = []

    def start(self, data_dir: Path, *args: str, env: dict[str, str] | None = None) -> MmragProcess:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("MMRAG_")}
        environment.update(CHILD_ENV, **(env or {}))
        log_path = self.folder / f"{len(self.started):02d}-{args[0]}.log"
        root = ["--data-dir", str(data_dir), "--profile", "offline"]
        process = MmragProcess([*root, *args], env=environment, log_path=log_path)
        self.started.append(process)
        return process

    def run(
        self, data_dir: Path, *args: str, env: dict[str, str] | None = None, timeout_s: float
    ) -> tuple[int, str]:
        """Run a command to its end: exit code and output."""
        process = self.start(data_dir, *args, env=env)
        try:
            code = process.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            pytest.fail(f"mmrag {' '.join(args)} ran over {timeout_s:.0f}s\n{process.tail()}")
        return code, process.output()

    def kill_all(self) -> None:
        for process in self.started:
            process.kill()


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    folder = tmp_path / "logs"
    folder.mkdir()
    started = Launcher(folder)
    try:
        yield started
    finally:
        started.kill_all()


def wait_until(
    condition: Callable[[], T | None],
    *,
    timeout_s: float,
    what: str,
    process: MmragProcess | None = None,
) -> T:
    """Poll until ``condition`` gives something truthy; fail after ``timeout_s``, or at
    once when ``process`` exits."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        log = f"\n{process.tail()}" if process else ""
        if process is not None and not process.alive():
            pytest.fail(f"waiting for {what}: mmrag exited ({process.process.returncode}){log}")
        if time.monotonic() > deadline:
            pytest.fail(f"waiting for {what}: not within {timeout_s:.0f}s{log}")
        time.sleep(POLL_S)


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def start_serve(launcher: Launcher, data_dir: Path) -> tuple[MmragProcess, str]:
    """``mmrag serve`` on a free port, once it answers (models loaded, consumer running)."""
    port = free_port()
    serve = launcher.start(data_dir, "serve", "--port", str(port))
    url = f"http://{HOST}:{port}"
    wait_until(functools.partial(healthy, url), timeout_s=120, what="serve", process=serve)
    return serve, url


# ---------------------------------------------------------------- points


def settings_for(data_dir: Path, **sections: Any) -> Settings:
    """The settings of this module's runs in the test process (the children's: CHILD_ENV)."""
    return Settings(
        data_dir=data_dir, profile="offline", ingest={"batch_size": BATCH_SIZE}, **sections
    )


def points_of(services: Services, document_id: str) -> list[dict[str, Any]]:
    return services.store.payloads(
        PointFilter(match={"tenant": TENANT, "document_id": document_id})
    )


def signature(payloads: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What must equal a clean run's: every point's element, kind, page and text."""
    return sorted((p["element_index"], p["kind"], repr(p["page"]), p["text"]) for p in payloads)


@dataclass(frozen=True)
class CleanRun:
    """The test files and, per file name, the points an uninterrupted ingest gives them."""

    long_set: list[Path]  # long PDFs, then two small files
    small_set: list[Path]  # twelve small documents
    points: dict[str, list[tuple[Any, ...]]]
    text_embedder: TextEmbedder
    captioner: Captioner | None


def write_note(path: Path, number: int) -> Path:
    path.write_text(
        f"Field note {number}: the lighthouse at Cape {number * 3 + 1} keeps "
        f"{number * 7 + 5} lamps burning.\n\nIts keeper logs {number + 11} ships a week.\n"
    )
    return path


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> CleanRun:
    """Every test file ingested once, sequentially, in this process (`ingest_here`)."""
    folder = tmp_path_factory.mktemp("files")
    long_set = [write_long_pdf(folder / f"long-{n}.pdf", pages=n) for n in LONG_PAGES]
    long_set += [write_text(folder / "plain.txt"), write_pdf(folder / "report.pdf")]
    notes = [write_note(folder / f"note-{number:02d}.txt", number) for number in range(10)]
    settings = settings_for(tmp_path_factory.mktemp("clean"))
    with build_services(settings) as services:
        results = services.ingest_here([*long_set, *notes], tenant=TENANT)
        assert [r.outcome for r in results] == ["indexed"] * len(results), results
        points = {
            r.record.filename: signature(points_of(services, r.record.document_id))
            for r in results
            if r.record is not None
        }
        return CleanRun(
            long_set, long_set[-2:] + notes, points, services.text_embedder, services.captioner
        )


def assert_clean_points(services: Services, document_ids: list[str], clean: CleanRun) -> None:
    """Each document indexed with exactly a clean run's points, every one of them from
    the run its record names, ids unique; and no other points in the store."""
    total = 0
    for document_id in document_ids:
        record = services.catalog.get(TENANT, document_id)
        assert record is not None and record.status is DocumentStatus.INDEXED, record
        payloads = points_of(services, document_id)
        stale = [p["run_id"] for p in payloads if p["run_id"] != record.run_id]
        assert not stale, f"{record.filename}: {len(stale)} points not of run {record.run_id}"
        ids = {
            point_id(TENANT, document_id, p["content_hash"], p["element_index"]) for p in payloads
        }
        assert len(ids) == len(payloads), f"{record.filename}: duplicate points"
        assert signature(payloads) == clean.points[record.filename], record.filename
        assert record.points == len(payloads), record.filename
        total += len(payloads)
    assert services.store.count() == total, "points of no listed document"


# ---------------------------------------------------------------- jobs


def jobs_of(book: JobBook, job_ids: list[str]) -> list[IngestJob]:
    return [job for job in map(book.get, job_ids) if job is not None]


def owner_pid(job: IngestJob) -> int | None:
    """The process holding a job's lease (owners are host:pid:random)."""
    parts = job.lease_owner.split(":")
    return int(parts[-2]) if len(parts) >= 3 else None


def running_in(book: JobBook, job_ids: list[str], pid: int) -> list[IngestJob]:
    jobs = jobs_of(book, job_ids)
    return [job for job in jobs if job.state is JobState.RUNNING and owner_pid(job) == pid]


def all_terminal(book: JobBook, job_ids: list[str]) -> list[IngestJob]:
    jobs = jobs_of(book, job_ids)
    return jobs if len(jobs) == len(job_ids) and all(j.state.terminal for j in jobs) else []


def most_at_once(jobs: list[IngestJob]) -> int:
    """The most jobs that ran at the same time (from their start and finish times)."""
    events = sorted([(job.started_at, 1) for job in jobs] + [(job.finished_at, -1) for job in jobs])
    running = most = 0
    for _, change in events:
        running += change
        most = max(most, running)
    return most


def running_upload(http: httpx.Client, job_ids: list[str]) -> str | None:
    """An upload's job that is running and has stored points (its first batch)."""
    for job_id in job_ids:
        job = http.get(f"/v1/jobs/{job_id}").json()
        if job["state"] == "running" and job["progress"]["chunks"] > 0:
            return job_id
    return None


def uploads_finished(http: httpx.Client, document_ids: list[str]) -> bool:
    statuses = [http.get(f"/v1/documents/{i}").json()["status"] for i in document_ids]
    return all(status not in ("queued", "processing") for status in statuses)


# ---------------------------------------------------------------- tests


def test_killed_service_finishes_queued_and_running_uploads_after_restart(
    tmp_path: Path, launcher: Launcher, clean: CleanRun
) -> None:
    data_dir = tmp_path / "data"
    settings = settings_for(data_dir)
    serve, url = start_serve(launcher, data_dir)
    with httpx.Client(base_url=url, timeout=60) as http:
        files = [("files", (path.name, path.read_bytes())) for path in clean.long_set]
        response = http.post("/v1/documents", files=files)
        assert response.status_code == 202, response.text
        uploads = response.json()["documents"]
        job_ids = [upload["job_id"] for upload in uploads]
        running = functools.partial(running_upload, http, job_ids)
        wait_until(running, timeout_s=120, what="an upload indexing", process=serve)
    serve.kill()
    with build_services(settings) as services:  # serve is gone: the store is free
        at_kill = jobs_of(services.jobs, job_ids)
        killed = {job.job_id: job.document_id for job in at_kill if job.state is JobState.RUNNING}
        left = [
            services.store.count(PointFilter(match={"document_id": d})) for d in killed.values()
        ]
    states = Counter(job.state for job in at_kill)
    assert states[JobState.RUNNING] == 1 and states[JobState.QUEUED] >= 1, states
    assert left[0] > 0, "the killed run left no points behind to clean up"

    serve, url = start_serve(launcher, data_dir)
    document_ids = [upload["id"] for upload in uploads]
    with httpx.Client(base_url=url, timeout=60) as http:
        finished = functools.partial(uploads_finished, http, document_ids)
        wait_until(finished, timeout_s=240, what="every upload finished", process=serve)
        jobs = [http.get(f"/v1/jobs/{job_id}").json() for job_id in job_ids]
    serve.stop()

    assert [job["state"] for job in jobs] == ["done"] * len(jobs), jobs
    # The job killed mid-document ran again, once; no other job ran twice.
    attempts = {job["filename"]: job["attempts"] for job in jobs}
    assert attempts == {job["filename"]: 1 + (job["id"] in killed) for job in jobs}
    with build_services(settings) as services:
        assert services.catalog.count(TENANT) == len(uploads)
        assert_clean_points(services, document_ids, clean)


def submit(services: Services, paths: list[Path], *, force: bool = False) -> list[str]:
    submitted = [services.documents.submit_file(TENANT, path, force=force) for path in paths]
    return [submission.job.job_id for submission in submitted if submission.job is not None]


def kill_workers(
    launcher: Launcher, data_dir: Path, env: dict[str, str], services: Services, paths: list[Path]
) -> tuple[list[str], Counter[str]]:
    """Submit the files, then start a worker and SIGKILL it a random 0.5-4 s into a
    running job, ten times. The jobs, and how often each was killed while it ran."""
    seed = int(os.environ.get("MMRAG_TEST_SEED") or random.SystemRandom().randrange(2**32))
    print(f"kill times: seed {seed} (MMRAG_TEST_SEED={seed} replays them)")
    rng = random.Random(seed)
    job_ids, kills, again = submit(services, paths), Counter[str](), 0
    for round_number in range(1, KILL_ROUNDS + 1):
        if all_terminal(services.jobs, job_ids):  # a fast machine got through: index again
            job_ids += submit(services, paths, force=True)
            again += 1
        worker = launcher.start(data_dir, "worker", env=env)
        running = functools.partial(running_in, services.jobs, job_ids, worker.pid)
        wait_until(running, timeout_s=120, what=f"kill {round_number}: a job", process=worker)
        time.sleep(rng.uniform(0.5, 4.0))
        worker.kill()
        kills.update(job.job_id for job in running_in(services.jobs, job_ids, worker.pid))
    print(f"killed mid-job {sum(kills.values())} times: {sorted(kills.values())}; ", end="")
    print(f"files submitted again {again} times (forced) after every job had finished")
    return job_ids, kills


def test_killed_workers_jobs_are_redelivered_with_a_clean_runs_points(
    tmp_path: Path, launcher: Launcher, clean: CleanRun, redis_url: str
) -> None:
    data_dir = tmp_path / "data"
    env = {"MMRAG_QUEUE__URL": redis_url}
    settings = settings_for(data_dir, queue={"url": redis_url})
    paths = [path for path in clean.long_set if path.name in WORKER_FILES]
    with build_services(settings) as services:  # the catalog and queue only: no store
        job_ids, kills = kill_workers(launcher, data_dir, env, services, paths)
        last = launcher.start(data_dir, "worker", env=env)
        finished = functools.partial(all_terminal, services.jobs, job_ids)
        jobs = wait_until(finished, timeout_s=240, what="every job finished", process=last)
        last.stop()

    assert kills, "no worker was killed while running a job"
    assert [job.state for job in jobs] == [JobState.DONE] * len(jobs), jobs
    attempts = {job.job_id: job.attempts for job in jobs}
    assert attempts == {job_id: kills[job_id] + 1 for job_id in job_ids}  # none ran twice
    with build_services(settings) as services:
        document_ids = list(dict.fromkeys(job.document_id for job in jobs))
        assert len(document_ids) == len(paths)
        assert_clean_points(services, document_ids, clean)


@dataclass(frozen=True)
class Service:
    """A running ``mmrag serve`` on the embedded footprint."""

    process: MmragProcess
    url: str
    data_dir: Path


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One service shared by the tests of commands run beside it (each its own files)."""
    folder = tmp_path_factory.mktemp("service")
    started = Launcher(folder)
    try:
        serve, url = start_serve(started, folder / "data")
        yield Service(serve, url, folder / "data")
    finally:
        started.kill_all()


def test_ingest_and_delete_beside_a_running_service(
    tmp_path: Path, launcher: Launcher, service: Service
) -> None:
    folder = tmp_path / "docs"
    write_text(folder / "plain.txt")
    write_pdf(folder / "report.pdf")
    url = service.url

    code, output = launcher.run(service.data_dir, "ingest", str(folder), timeout_s=180)
    assert code == 0, output
    pid = service.process.pid
    assert f"submitting 2 file(s) to mmrag serve (pid {pid}, {url})" in output, output
    with httpx.Client(base_url=url, timeout=60) as http:
        listed = {d["filename"]: d for d in http.get("/v1/documents").json()["documents"]}
        statuses = {name: listed[name]["status"] for name in ("plain.txt", "report.pdf")}
        assert statuses == {"plain.txt": "indexed", "report.pdf": "indexed"}
        search = http.post("/v1/search", json={"query": "Zephyr turbine megawatts"})
        top = search.json()["hits"][0]
        assert top["document_id"] == listed["report.pdf"]["id"] and "42 megawatts" in top["text"]

        kept = listed["plain.txt"]["id"]
        code, output = launcher.run(service.data_dir, "docs", "delete", kept, timeout_s=120)
        assert code == 2 and url in output and "Traceback" not in output, output
        assert http.get(f"/v1/documents/{kept}").json()["status"] == "indexed"


def job_finished(http: httpx.Client, job_id: str) -> dict[str, Any] | None:
    job: dict[str, Any] = http.get(f"/v1/jobs/{job_id}").json()
    return job if job["state"] in ("done", "failed", "cancelled") else None


def test_refused_delete_leaves_a_running_ingest_alone(
    tmp_path: Path, launcher: Launcher, service: Service
) -> None:
    # Long enough to be running still when the delete comes, however fast the machine.
    path = write_long_pdf(tmp_path / "refused-delete.pdf", pages=300, image_every=0)
    with httpx.Client(base_url=service.url, timeout=60) as http:
        response = http.post("/v1/documents", files=[("files", (path.name, path.read_bytes()))])
        (upload,) = response.json()["documents"]
        running = functools.partial(running_upload, http, [upload["job_id"]])
        wait_until(running, timeout_s=120, what="the upload running", process=service.process)
        code, output = launcher.run(service.data_dir, "docs", "delete", upload["id"], timeout_s=120)
        assert code == 2 and service.url in output, output
        finished = functools.partial(job_finished, http, upload["job_id"])
        job = wait_until(finished, timeout_s=300, what="its job", process=service.process)
        record = http.get(f"/v1/documents/{upload['id']}").json()
    assert (job["state"], record["status"]) == ("done", "indexed"), (job, record)


def test_concurrent_workers_on_qdrant_client_local_mode(
    tmp_path: Path, clean: CleanRun, redis_url: str
) -> None:
    settings = settings_for(
        tmp_path / "data",
        store={"qdrant_url": ":memory:"},
        # No worker dies here: a lease long enough that three workers on two busy cores
        # renew it in time (2 s once let a job be delivered twice on a slow CPU).
        queue={"url": redis_url, "lease_s": 15, "poll_s": 0.2},
    )
    models = {"text_embedder": clean.text_embedder, "captioner": clean.captioner}
    with build_services(settings, image_embedder=None, **models) as services:
        consumer = services.queue.consumer(services.job_runner(), workers=3)
        consumer.start(jobs=services.jobs)
        try:
            submitted = [services.documents.submit_file(TENANT, p) for p in clean.small_set]
            job_ids = [s.job.job_id for s in submitted if s.job is not None]
            assert len(job_ids) == len(clean.small_set)
            finished = functools.partial(all_terminal, services.jobs, job_ids)
            jobs = wait_until(finished, timeout_s=180, what="every job finished")
        finally:
            consumer.stop()
        assert [(job.state, job.attempts) for job in jobs] == [(JobState.DONE, 1)] * len(jobs)
        assert most_at_once(jobs) > 1, "the three workers never ran two jobs at once"
        assert_clean_points(services, [job.document_id for job in jobs], clean)


def hammer(store: VectorStore, worker: int, rounds: int, errors: list[str]) -> None:
    """What an ingest job does to the store, over and over: upsert a run's points, drop
    the document's older runs, count what is left."""
    for round_number in range(rounds):
        document_id, run_id = f"w{worker}-{round_number % 5}", f"run-{worker}-{round_number}"
        points = [
            StoredPoint(
                point_id(TENANT, document_id, "hash", index),
                {"text": [1.0, float(index), float(worker), 0.5], "sparse": ([1, 2], [0.5, 0.5])},
                {"tenant": TENANT, "document_id": document_id, "run_id": run_id},
            )
            for index in range(5)
        ]
        document = {"tenant": TENANT, "document_id": document_id}
        try:
            store.upsert(points)
            store.delete(PointFilter(match=document, exclude={"run_id": run_id}))
            store.count(PointFilter(match=document))
        except StoreError as exc:
            errors.append(str(exc))
            return


def test_local_mode_store_takes_writes_from_worker_threads() -> None:
    store = open_store(StoreSettings(qdrant_url=":memory:"), embedded_root=Path("unused"))
    store.ensure_collection(
        CollectionSchema(
            (VectorSpec("text", VectorKind.DENSE, 4), VectorSpec("sparse", VectorKind.SPARSE))
        )
    )
    errors: list[str] = []
    threads = [
        threading.Thread(target=hammer, args=(store, n, 300, errors), daemon=True) for n in range(3)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    for thread in threads:
        thread.join(timeout=max(deadline - time.monotonic(), 0.1))
    assert not any(thread.is_alive() for thread in threads), "store calls hung"
    store.close()
    assert not errors, errors


PARSE_IN_THREADS = """
import sys, threading
from pathlib import Path
from mmrag.parsing import parse_file
from mmrag.settings import ParsingSettings

def parse_all(paths):
    for _ in range(30):
        for path in paths:
            sum(1 for _ in parse_file(path, ParsingSettings()).elements)

paths = [Path(p) for p in sys.argv[1:]]
threads = [threading.Thread(target=parse_all, args=(paths,)) for _ in range(3)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
"""


def test_worker_threads_parse_pdfs_at_once_without_crashing(tmp_path: Path) -> None:
    paths = [write_long_pdf(tmp_path / f"pdf-{n}.pdf", pages=8, image_every=0) for n in range(6)]
    # A child process: the crash would take the test runner with it.
    command = [sys.executable, "-c", PARSE_IN_THREADS, *map(str, paths)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=45)
    except subprocess.TimeoutExpired:  # a corrupted heap may deadlock rather than crash
        pytest.fail("parsing PDFs on three threads hung for 45 s (killed)")
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr[-2000:]}"
