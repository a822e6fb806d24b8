"""Ingest pages/s with 1 and 2 ``mmrag worker`` processes, and the queue's overhead per job.

A benchmark, not a test. It starts a real ``redis-server`` (`run_redis`) and, per
worker count, real ``mmrag worker`` subprocesses on the offline profile:

- **Scaling** (1 and 2 workers): a generated corpus (16 born-digital PDFs of 30 pages,
  a chart every 10th page) is submitted as jobs from this process with the library
  (`DocumentService.submit_file`), and the workers run them. Timed: from the first
  submission, once every worker is ready (started, models loaded, one warm-up job
  run), until the last job finished. Worker start-up is reported apart.
- **Queue overhead** (1 worker, Redis queue and the embedded SQLite queue): tiny text
  files, one job at a time with the worker otherwise idle; from the job rows, per job:
  the enqueue call (``JobQueue.dispatch``), the wait until the worker claimed it, and
  the end-to-end time (job created -> finished). Right after each queued job, the same
  file runs in this process with `Services.ingest_here` (no queue, its own data dir,
  the models loaded once), so both see the same machine load; the overhead is the
  per-job difference. Then as many other tiny files at once ("burst"): wall time per
  job, queued against in-process.

Footprint. No Qdrant server exists on the benchmark machine, and the embedded Qdrant
store allows one owner process, so each worker gets its own data directory
(``MMRAG_DATA_DIR``: its own embedded Qdrant shard), while the catalog
(``MMRAG_CATALOG__URL=sqlite:///SHARED/catalog.sqlite3``), the blob store
(``MMRAG_BLOBS__ROOT=SHARED/blobs``) and the queue (``MMRAG_QUEUE__URL=redis://...``)
are shared. This measures queue + pipeline scaling; with a Qdrant server every worker
would write one collection. The embedded SQLite queue case runs one worker on the
submitter's data directory (queue.url unset), as ``mmrag serve`` would.

Each PDF carries its file number in its text and chart labels: identical files would
have their charts OCR'd once and then served from the shared caption cache. Each
worker gets ``cores // workers`` CPU threads (``--threads``), so 2 workers do not
oversubscribe the cores that 1 worker uses. ``MMRAG_*`` variables of the caller are
ignored. Timings are wall clock: the report prints the load average.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/queue_workers.py  # --files 16 --pages 30
    ... --workers 1 2 4 --overhead-jobs 200 --threads inherit --out bench-out/q.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from eval.metrics import percentile
from mmrag.jobs import JobState

if TYPE_CHECKING:
    from mmrag.jobs import IngestJob, JobBook
    from mmrag.services import Services
    from mmrag.testing.servers import RunningServer

logger = logging.getLogger("benchmarks.queue_workers")

TENANT = "default"
READY_MARK = "Ctrl-C to stop"  # the ready line `mmrag worker` prints on stderr
RUNNING = re.compile(r"mmrag\.ingest: running .* \(job ([0-9a-f]+), attempt \d+\)")
FOOTPRINT = (
    "each worker has its own data dir (its own embedded Qdrant shard: no Qdrant server "
    "here, and the embedded store allows one owner process); catalog (SQLite), blob store "
    "and queue are shared. This measures queue + pipeline scaling; with a Qdrant server "
    "every worker would write one collection."
)


@dataclass
class Limits:
    """Seconds allowed for each kind of wait."""

    ready_s: float
    phase_s: float
    stop_s: float = 30.0


# --------------------------------------------------------------------------- corpus


def write_pdf_corpus(target: Path, files: int, pages: int, image_every: int) -> list[Path]:
    """``files`` born-digital PDFs (`write_long_pdf` variants): no file's text or charts
    repeat another's, so none hits the caption cache of another."""
    from mmrag.testing.documents import write_long_pdf

    target.mkdir(parents=True, exist_ok=True)
    return [
        write_long_pdf(target / f"file-{n:03d}.pdf", pages, image_every, variant=n)
        for n in range(1, files + 1)
    ]


def write_tiny_files(target: Path, count: int) -> list[Path]:
    """``count`` distinct one-paragraph text files: jobs with almost no work."""
    target.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(count):
        path = target / f"tiny-{number:04d}.txt"
        path.write_text(f"Note {number}: the inspection crew logged station {number % 17}.\n")
        paths.append(path)
    return paths


# --------------------------------------------------------------------------- workers


class WorkerProcess:
    """One ``mmrag worker`` subprocess; a thread drains its stderr into a log file,
    notices its ready line and records the job ids it ran."""

    def __init__(self, name: str, env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self.ready = threading.Event()
        self.job_ids: list[str] = []
        self.started = time.perf_counter()
        self.startup_s = 0.0
        self.process = subprocess.Popen(
            [*worker_command(), "worker"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self._reader = threading.Thread(target=self._read, name=f"{name}-stderr", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        stream: IO[str] | None = self.process.stderr
        if stream is None:
            return
        with self.log_path.open("w", encoding="utf-8") as log:
            for line in stream:
                log.write(line)
                log.flush()
                if READY_MARK in line and not self.ready.is_set():
                    self.startup_s = time.perf_counter() - self.started
                    self.ready.set()
                if found := RUNNING.search(line):
                    self.job_ids.append(found.group(1))

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with status {self.process.returncode}; "
                f"log {self.log_path}:\n{self.log_tail()}"
            )

    def cpu_seconds(self) -> float:
        """CPU time of the worker and its reaped children (tesseract runs), from /proc."""
        try:
            stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        except OSError:
            return 0.0
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (name)"
        ticks = sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
        return ticks / os.sysconf("SC_CLK_TCK")

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return "(no log)"

    def stop(self, timeout_s: float) -> None:
        """SIGTERM (the worker hands running jobs back and exits), then SIGKILL."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop within %.0fs: killing it", self.name, timeout_s)
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=5)


def write_report(path: Path, payload: dict[str, Any]) -> None:
    """The benchmark's figures as JSON, for comparing runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    print(f"Wrote {path}")


def worker_command() -> list[str]:
    """The ``mmrag`` entry point of this interpreter's environment."""
    script = Path(sys.executable).with_name("mmrag")
    if script.is_file():
        return [str(script)]
    found = shutil.which("mmrag")
    if found is None:
        raise RuntimeError("the mmrag command is not installed (pip install -e .)")
    return [found]


def worker_env(
    data_dir: Path, shared: Path | None, redis_url: str | None, threads: int
) -> dict[str, str]:
    """The worker's environment: its own data dir; with ``shared``, the shared catalog,
    blob store and Redis queue."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("MMRAG_")}
    env.update(MMRAG_PROFILE="offline", MMRAG_DATA_DIR=str(data_dir), HF_HUB_OFFLINE="1")
    env["COLUMNS"] = "400"  # rich wraps the ready line at 80 columns on a pipe otherwise
    if shared is not None:
        env["MMRAG_CATALOG__URL"] = f"sqlite:///{shared / 'catalog.sqlite3'}"
        env["MMRAG_BLOBS__ROOT"] = str(shared / "blobs")
    if redis_url is not None:
        env["MMRAG_QUEUE__URL"] = redis_url
    if threads > 0:  # torch and tesseract (OpenMP) threads
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        env["OMP_THREAD_LIMIT"] = str(threads)
    return env


@contextmanager
def running_workers(
    envs: list[dict[str, str]], folder: Path, limits: Limits
) -> Iterator[list[WorkerProcess]]:
    """Start the workers together, wait until each is ready; stop (or kill) them all on
    exit, also when the block raises."""
    workers: list[WorkerProcess] = []
    try:
        for number, env in enumerate(envs, start=1):
            workers.append(WorkerProcess(f"worker-{number}", env, folder / f"worker-{number}.log"))
        deadline = time.monotonic() + limits.ready_s
        for worker in workers:
            while not worker.ready.wait(0.2):
                worker.check_alive()
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{worker.name} not ready within {limits.ready_s:.0f}s; "
                        f"log {worker.log_path}:\n{worker.log_tail()}"
                    )
        yield workers
    finally:
        for worker in workers:
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.stop(limits.stop_s)


# --------------------------------------------------------------------------- waiting


def wait_for_jobs(
    jobs: JobBook, total: int, workers: list[WorkerProcess], timeout_s: float
) -> dict[str, int]:
    """Poll the job book until ``total`` jobs are finished (done, failed, cancelled)."""
    deadline = time.monotonic() + timeout_s
    while True:
        counts = jobs.counts()
        if counts["done"] + counts["failed"] + counts["cancelled"] >= total:
            return counts
        for worker in workers:
            worker.check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{total} jobs not finished within {timeout_s:.0f}s: {counts}")
        time.sleep(0.1)


def wait_for_job(
    jobs: JobBook, job_id: str, workers: list[WorkerProcess], timeout_s: float
) -> IngestJob:
    deadline = time.monotonic() + timeout_s
    while True:
        job = jobs.get(job_id)
        if job is not None and job.state.terminal:
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} not finished within {timeout_s:.0f}s: {job}")
        for worker in workers:
            worker.check_alive()
        time.sleep(0.005)


def warm_up(services: Services, workers: list[WorkerProcess], folder: Path, limits: Limits) -> int:
    """Run one-page PDFs with a chart, one at a time, until every worker ran one (the
    first job of a process pays one-off costs: parser, OCR); the number of jobs."""
    files = write_pdf_corpus(folder, 4 * len(workers), pages=1, image_every=1)
    for count, path in enumerate(files):
        if all(worker.job_ids for worker in workers):
            return count
        submission = services.documents.submit_file(TENANT, path)
        if submission.job is None:
            raise RuntimeError(f"{path}: not submitted ({submission.message})")
        wait_for_job(services.jobs, submission.job.job_id, workers, limits.phase_s)
        time.sleep(0.05)  # the reader thread sees the "running" line
    idle = [worker.name for worker in workers if not worker.job_ids]
    if idle:
        logger.warning("no warm-up job reached %s", ", ".join(idle))
    return len(files)


# --------------------------------------------------------------------------- settings


def shared_services(shared: Path, redis_url: str) -> Services:
    """The submitter: its own data dir, the shared catalog, blobs and Redis queue."""
    from mmrag.services import build_services
    from mmrag.settings import Settings

    settings = Settings(
        data_dir=shared / "submitter",
        profile="offline",
        queue={"url": redis_url},
        catalog={"url": f"sqlite:///{shared / 'catalog.sqlite3'}"},
        blobs={"root": shared / "blobs"},
    )
    return build_services(settings)


def embedded_services(data_dir: Path) -> Services:
    """The submitter on a data dir with the embedded SQLite queue (queue.url unset)."""
    from mmrag.services import build_services
    from mmrag.settings import Settings

    return build_services(Settings(data_dir=data_dir, profile="offline"))


def threads_for(setting: str, workers: int) -> int:
    """CPU threads per worker: auto = cores // workers; inherit = 0 (library default)."""
    if setting == "inherit":
        return 0
    if setting == "auto":
        return max(1, len(os.sched_getaffinity(0)) // workers)
    return int(setting)


# --------------------------------------------------------------------------- scaling


@dataclass
class ScalingResult:
    workers: int
    threads_per_worker: int  # 0: the library default
    files: int
    failed: int
    pages: int
    images: int
    chunks: int
    submit_seconds: float
    seconds: float
    startup_seconds: list[float]
    warm_up_jobs: int
    jobs_per_worker: list[int]
    worker_cpu_seconds: float  # all workers, during the timed run
    load_average: tuple[float, float, float] = (0.0, 0.0, 0.0)
    speed_up: float = 0.0

    @property
    def pages_per_second(self) -> float:
        return self.pages / self.seconds if self.seconds else 0.0

    @property
    def files_per_second(self) -> float:
        return self.files / self.seconds if self.seconds else 0.0


def run_scaling(
    count: int, files: list[Path], redis: RunningServer, work: Path, threads: int, limits: Limits
) -> ScalingResult:
    """``count`` workers on a fresh shared folder; times the corpus from the first
    submission until its last job finished."""
    shared = work / f"scaling-{count}w"
    shutil.rmtree(shared, ignore_errors=True)
    shared.mkdir(parents=True)
    envs = [
        worker_env(shared / f"worker-{n}", shared, redis.url, threads) for n in range(1, count + 1)
    ]
    with ExitStack() as stack:
        services = stack.enter_context(shared_services(shared, redis.url))
        services.queue.huey.flush()  # nothing left over from an earlier phase
        workers = stack.enter_context(running_workers(envs, shared, limits))
        logger.info("%d worker(s) ready: start-up %s s", count, [w.startup_s for w in workers])
        warm_jobs = warm_up(services, workers, shared / "warm-up", limits)
        already = {job_id for worker in workers for job_id in worker.job_ids}
        cpu_before = sum(worker.cpu_seconds() for worker in workers)
        started_wall, started = time.time(), time.perf_counter()
        submissions = [services.documents.submit_file(TENANT, path) for path in files]
        submit_seconds = time.perf_counter() - started
        job_ids = [s.job.job_id for s in submissions if s.job is not None]
        wait_for_jobs(services.jobs, warm_jobs + len(job_ids), workers, limits.phase_s)
        cpu_seconds = sum(worker.cpu_seconds() for worker in workers) - cpu_before
        finished = [services.jobs.get(job_id) for job_id in job_ids]
        seconds = max(job.finished_at for job in finished if job) - started_wall
        records = [
            services.catalog.get(TENANT, s.record.document_id) for s in submissions if s.record
        ]
        per_worker = [len(set(w.job_ids) - already) for w in workers]
        startup = [round(w.startup_s, 1) for w in workers]
    return ScalingResult(
        workers=count,
        threads_per_worker=threads,
        files=len(files),
        failed=sum(1 for job in finished if job is None or job.state is not JobState.DONE),
        pages=sum(r.pages for r in records if r),
        images=sum(r.images for r in records if r),
        chunks=sum(r.chunks for r in records if r),
        submit_seconds=submit_seconds,
        seconds=seconds,
        startup_seconds=startup,
        warm_up_jobs=warm_jobs,
        jobs_per_worker=per_worker,
        worker_cpu_seconds=cpu_seconds,
        load_average=os.getloadavg(),
    )


# --------------------------------------------------------------------------- overhead


@dataclass
class Spread:
    """Median and 95th percentile, in milliseconds."""

    p50: float
    p95: float

    @classmethod
    def of(cls, seconds: list[float]) -> Spread | None:
        if not seconds:
            return None  # not measured
        return cls(percentile(seconds, 50) * 1000, percentile(seconds, 95) * 1000)


@dataclass
class OverheadResult:
    queue: str  # redis, sqlite (embedded), or its in-process twin run (no queue)
    jobs: int
    failed: int
    submit: Spread | None  # submit_file without dispatch: hash, blob copy, catalog rows
    enqueue: Spread | None  # the dispatch call alone
    claim_wait: Spread | None  # dispatch called (in-process: job created) -> claimed
    run: Spread | None  # claimed -> finished
    end_to_end: Spread | None  # job created -> finished
    burst_ms_per_job: float  # all jobs submitted at once: wall / jobs
    load_average: tuple[float, float, float] = (0.0, 0.0, 0.0)
    overhead: Spread | None = None  # per job: end-to-end minus its in-process twin's
    burst_overhead_ms_per_job: float | None = None


@dataclass
class _Timings:
    submit: list[float] = field(default_factory=list)
    enqueue: list[float] = field(default_factory=list)
    claim_wait: list[float] = field(default_factory=list)
    run: list[float] = field(default_factory=list)
    end_to_end: list[float] = field(default_factory=list)
    failed: int = 0

    def add_job(self, job: IngestJob | None, dispatched_at: float | None) -> None:
        if job is None:
            self.failed += 1
            return
        self.failed += job.state is not JobState.DONE
        self.claim_wait.append(job.started_at - (dispatched_at or job.created_at))
        self.run.append(job.finished_at - job.started_at)
        self.end_to_end.append(job.finished_at - job.created_at)

    def result(self, queue: str, burst_seconds: float, jobs: int) -> OverheadResult:
        return OverheadResult(
            queue=queue,
            jobs=jobs,
            failed=self.failed,
            submit=Spread.of(self.submit),
            enqueue=Spread.of(self.enqueue),
            claim_wait=Spread.of(self.claim_wait),
            run=Spread.of(self.run),
            end_to_end=Spread.of(self.end_to_end),
            burst_ms_per_job=burst_seconds / jobs * 1000,
            load_average=os.getloadavg(),
        )


def one_at_a_time(
    services: Services,
    local: Services,
    files: list[Path],
    workers: list[WorkerProcess],
    limits: Limits,
) -> tuple[_Timings, _Timings]:
    """Per file: submit, dispatch, wait until the worker finished it; then run the same
    file in this process (its twin, no queue), so both see the same machine load. The
    worker is idle between its jobs."""
    queued, here = _Timings(), _Timings()
    for path in files:
        started = time.perf_counter()
        submission = services.documents.submit_file(TENANT, path, dispatch=False)
        queued.submit.append(time.perf_counter() - started)
        if submission.job is None:
            raise RuntimeError(f"{path}: not submitted ({submission.message})")
        dispatched_at, started = time.time(), time.perf_counter()
        services.queue.dispatch(submission.job.job_id)
        queued.enqueue.append(time.perf_counter() - started)
        job = wait_for_job(services.jobs, submission.job.job_id, workers, limits.phase_s)
        queued.add_job(job, dispatched_at)
        (twin,) = local.ingest_here([path], tenant=TENANT)
        here.add_job(twin.job, None)
    return queued, here


def burst(
    services: Services, files: list[Path], workers: list[WorkerProcess], limits: Limits
) -> float:
    """Submit every file at once; seconds until the last one finished."""
    before = services.jobs.counts()
    started_wall = time.time()
    job_ids = []
    for path in files:
        submission = services.documents.submit_file(TENANT, path)
        if submission.job is None:
            raise RuntimeError(f"{path}: not submitted ({submission.message})")
        job_ids.append(submission.job.job_id)
    wait_for_jobs(services.jobs, sum(before.values()) + len(files), workers, limits.phase_s)
    finished = [services.jobs.get(job_id) for job_id in job_ids]
    return max(job.finished_at for job in finished if job) - started_wall


def local_services(data_dir: Path, models: Services) -> Services:
    """An in-process ingest on its own data dir, sharing the loaded models."""
    from mmrag.services import build_services
    from mmrag.settings import Settings

    parts = {name: getattr(models, name) for name in ("text_embedder", "image_embedder")}
    return build_services(
        Settings(data_dir=data_dir, profile="offline"), captioner=models.captioner, **parts
    )


def run_overhead(
    kind: str,
    tiny: list[Path],
    redis: RunningServer,
    work: Path,
    limits: Limits,
    *,
    threads: int,
    models: Services,
) -> list[OverheadResult]:
    """One worker on the Redis queue (shared folder) or the embedded SQLite queue (on the
    submitter's data dir), each job twinned with an in-process run; two rows."""
    folder = work / f"overhead-{kind.split()[0]}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with ExitStack() as stack:
        if kind == "redis":
            services = stack.enter_context(shared_services(folder, redis.url))
            services.queue.huey.flush()
            worker = worker_env(folder / "worker-1", folder, redis.url, threads)
        else:
            services = stack.enter_context(embedded_services(folder / "data"))
            services.queue  # noqa: B018 - create the queue file before the worker opens it
            worker = worker_env(folder / "data", None, None, threads)
        local = stack.enter_context(local_services(folder / "in-process", models))
        local.ingest_here(write_tiny_files(folder / "warm-up-here", 2), tenant=TENANT)
        workers = stack.enter_context(running_workers([worker], folder, limits))
        warm_up(services, workers, folder / "warm-up", limits)
        queued, here = one_at_a_time(services, local, tiny, workers, limits)
        burst_files = write_tiny_files(folder / "burst", len(tiny))
        burst_seconds = burst(services, burst_files, workers, limits)
        started = time.perf_counter()
        local.ingest_here(burst_files, tenant=TENANT)
        local_burst_seconds = time.perf_counter() - started
    queue_row = queued.result(kind, burst_seconds, len(tiny))
    twin_row = here.result(f"in-process twin of {kind}", local_burst_seconds, len(tiny))
    differences = [q - h for q, h in zip(queued.end_to_end, here.end_to_end, strict=False)]
    queue_row.overhead = Spread.of(differences)
    queue_row.burst_overhead_ms_per_job = queue_row.burst_ms_per_job - twin_row.burst_ms_per_job
    return [queue_row, twin_row]


# --------------------------------------------------------------------------- report


def scaling_table(results: list[ScalingResult]) -> str:
    rows = [
        "| workers | threads/worker | files | pages | images | chunks | failed | seconds "
        "| pages/s | files/s | speed-up | worker CPU s (cores busy) | worker start-up s "
        "| jobs per worker | load 1m |",
        "|" + "---|" * 15,
    ]
    for r in results:
        threads = r.threads_per_worker or "default"
        rows.append(
            f"| {r.workers} | {threads} | {r.files} | {r.pages} | {r.images} | {r.chunks} "
            f"| {r.failed} | {r.seconds:.1f} | {r.pages_per_second:.2f} "
            f"| {r.files_per_second:.3f} | {r.speed_up:.2f}x "
            f"| {r.worker_cpu_seconds:.0f} ({r.worker_cpu_seconds / r.seconds:.2f}) "
            f"| {', '.join(f'{s:.1f}' for s in r.startup_seconds)} "
            f"| {', '.join(map(str, r.jobs_per_worker))} | {r.load_average[0]:.1f} |"
        )
    return "\n".join(rows)


def overhead_table(results: list[OverheadResult]) -> str:
    def spread(value: Spread | None, *, signed: bool = False) -> str:
        if value is None:
            return "-"
        sign = "+" if signed else ""
        return f"{value.p50:{sign}.1f} / {value.p95:{sign}.1f}"

    rows = [
        "| queue | jobs | failed | submit ms p50 / p95 | enqueue ms p50 / p95 "
        "| dispatch -> claimed ms p50 / p95 | run ms p50 / p95 | end-to-end ms p50 / p95 "
        "| overhead vs in-process ms p50 / p95 | burst ms/job | burst overhead ms/job "
        "| load 1m |",
        "|" + "---|" * 12,
    ]
    for r in results:
        burst_overhead = r.burst_overhead_ms_per_job
        rows.append(
            f"| {r.queue} | {r.jobs} | {r.failed} | {spread(r.submit)} | {spread(r.enqueue)} "
            f"| {spread(r.claim_wait)} | {spread(r.run)} | {spread(r.end_to_end)} "
            f"| {spread(r.overhead, signed=True)} | {r.burst_ms_per_job:.1f} "
            f"| {'-' if burst_overhead is None else f'{burst_overhead:+.1f}'} "
            f"| {r.load_average[0]:.1f} |"
        )
    return "\n".join(rows)


def compare(scaling: list[ScalingResult]) -> None:
    """Fill in the speed-ups, against the first worker count."""
    if scaling and scaling[0].pages_per_second:
        for result in scaling:
            result.speed_up = result.pages_per_second / scaling[0].pages_per_second


def machine() -> dict[str, Any]:
    from mmrag.models.device import cpu_name

    return {
        "cpu": cpu_name(),
        "cores": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "redis_server": subprocess.run(
            ["redis-server", "--version"], capture_output=True, text=True, check=False
        ).stdout.strip(),
    }


def print_report(
    arguments: argparse.Namespace,
    scaling: list[ScalingResult],
    overhead: list[OverheadResult],
    info: dict[str, Any],
    loads: dict[str, tuple[float, ...]],
) -> None:
    print(f"Machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}; CPU only.")
    start, end = loads["start"], loads["end"]
    print(
        f"Load average (1/5/15 min): at start {start[0]:.2f} {start[1]:.2f} {start[2]:.2f}, "
        f"at end {end[0]:.2f} {end[1]:.2f} {end[2]:.2f} ({info['cores']} cores; above that, "
        "other processes shared the CPU)."
    )
    print(f"Footprint: {FOOTPRINT}")
    print()
    if scaling:
        print(
            f"Ingest scaling: {arguments.files} PDFs x {arguments.pages} pages (a chart every "
            f"{arguments.image_every} pages), offline profile, Redis queue; timed from the "
            "first submission (workers ready and warmed up) until the last job finished."
        )
        print()
        print(scaling_table(scaling))
        print()
    if overhead:
        print(
            f"Queue overhead per job: {arguments.overhead_jobs} tiny text files, one worker, "
            f"{overhead[0].queue} first. One job at a time (the worker idle in between), "
            "from the job rows, each followed by its in-process twin (Services.ingest_here, "
            "no queue); overhead = end-to-end (job created -> finished) minus the twin's, "
            "per job. Then as many files at once (burst: wall time / jobs). In-process "
            "'dispatch -> claimed' is job created -> claimed."
        )
        print()
        print(overhead_table(overhead))


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--files", type=int, default=16, help="PDFs in the corpus")
    parser.add_argument("--pages", type=int, default=30, help="pages per PDF")
    parser.add_argument("--image-every", type=int, default=10, help="a chart every N pages")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2], help="worker counts to time"
    )
    parser.add_argument(
        "--threads",
        default="auto",
        help="CPU threads per worker: auto (cores // workers), inherit (library default), "
        "or a number",
    )
    parser.add_argument(
        "--overhead-jobs", type=int, default=60, help="tiny jobs per overhead run (0: skip)"
    )
    parser.add_argument("--no-sqlite", action="store_true", help="skip the embedded queue case")
    parser.add_argument("--ready-timeout", type=float, default=300.0, help="worker start-up s")
    parser.add_argument("--phase-timeout", type=float, default=900.0, help="seconds per phase")
    parser.add_argument("--out", type=Path, default=Path("bench-out/queue_workers.json"))
    parser.add_argument("--keep", type=Path, help="work here (kept) instead of a temp dir")
    arguments = parser.parse_args(argv)
    if arguments.threads not in ("auto", "inherit") and not arguments.threads.isdigit():
        parser.error("--threads: auto, inherit or a number")
    return arguments


def run_all(
    arguments: argparse.Namespace, work: Path
) -> tuple[list[ScalingResult], list[OverheadResult]]:
    from mmrag.testing.servers import run_redis

    limits = Limits(ready_s=arguments.ready_timeout, phase_s=arguments.phase_timeout)
    scaling: list[ScalingResult] = []
    overhead: list[OverheadResult] = []
    tiny = write_tiny_files(work / "tiny", arguments.overhead_jobs)
    with run_redis(work / "redis") as redis:
        if arguments.files > 0 and arguments.workers:
            files = write_pdf_corpus(
                work / "corpus", arguments.files, arguments.pages, arguments.image_every
            )
            for count in arguments.workers:
                threads = threads_for(arguments.threads, count)
                scaling.append(run_scaling(count, files, redis, work, threads, limits))
                logger.info("%d worker(s): %.1fs", count, scaling[-1].seconds)
        if arguments.overhead_jobs > 0:
            threads = threads_for(arguments.threads, 1)
            kinds = ["redis"] if arguments.no_sqlite else ["redis", "sqlite (embedded)"]
            with embedded_services(work / "models") as models:
                models.text_embedder  # noqa: B018 - load once for every in-process twin
                for kind in kinds:
                    rows = run_overhead(
                        kind, tiny, redis, work, limits, threads=threads, models=models
                    )
                    overhead.extend(rows)
                    logger.info("overhead %s done", kind)
    compare(scaling)
    return scaling, overhead


def main(argv: list[str] | None = None) -> int:
    arguments = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("mmrag").setLevel(logging.WARNING)  # no line per in-process job
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    for key in [key for key in os.environ if key.startswith("MMRAG_")]:
        del os.environ[key]  # the benchmark's settings are its own
    loads: dict[str, tuple[float, ...]] = {"start": os.getloadavg()}
    started = time.perf_counter()
    if arguments.keep:
        arguments.keep.mkdir(parents=True, exist_ok=True)
        scaling, overhead = run_all(arguments, arguments.keep.resolve())
    else:
        with tempfile.TemporaryDirectory(prefix="mmrag-queue-bench-") as work:
            scaling, overhead = run_all(arguments, Path(work))
    loads["end"] = os.getloadavg()
    info = machine()
    print_report(arguments, scaling, overhead, info, loads)
    total = time.perf_counter() - started
    print(f"\nTotal benchmark time (corpus, worker start-ups, runs): {total:.0f} s")
    payload = {
        "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(arguments).items()},
        "machine": info,
        "footprint": FOOTPRINT,
        "load_average": loads,
        "total_seconds": total,
        "scaling": [
            {
                **asdict(r),
                "pages_per_second": r.pages_per_second,
                "files_per_second": r.files_per_second,
            }
            for r in scaling
        ],
        "overhead_ms": [asdict(r) for r in overhead],
    }
    write_report(arguments.out, payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
