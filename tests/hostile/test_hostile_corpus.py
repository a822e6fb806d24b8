"""The hostile corpus (`mmrag.testing.hostile`) through the real programs, under limits.

a) One ``mmrag ingest`` run over the whole corpus, in a subprocess: it must end normally
   (exit 1: finished, some files failed), report every bad file by name with a reason
   (output and catalog; a file over a limit names the limit), index every good file
   and find it by its phrase, never expand an entity, report every link as skipped and
   index nothing from outside the folder, keep every job within parsing.timeout_s (and a
   grace), and keep the process tree under 2 GiB (see `TreeWatcher` for how).
b) The bombs uploaded one by one to a running ``mmrag serve`` while /healthz is polled
   every 150 ms: every poll answers 200 within 2 s, every bomb ends failed with a reason
   (or is refused at upload with one), every good upload ends indexed.

The harness stops a run past 4 GiB, or a file that runs far past its limit, and says
what was running; the other tests then say what was never reached. Run with
``pytest -m hostile tests/hostile -s`` (-s shows the summary tables).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import psutil
import pytest

from mmrag.catalog import Catalog
from mmrag.jobs import IngestJob, JobBook, JobState
from mmrag.services import build_services
from mmrag.settings import load_settings
from mmrag.store import PointFilter
from mmrag.testing.hostile import (
    OUTSIDE_PHRASE,
    Expect,
    HostileCorpus,
    HostileFile,
    write_hostile_corpus,
)
from mmrag.testing.servers import HOST, free_port
from mmrag.types import DocumentRecord, DocumentStatus

pytestmark = pytest.mark.hostile

TIMEOUT_S = 20.0  # parsing.timeout_s
MEMORY_MB = 256  # parsing.memory_mb: with it the tree stays under 2 GiB with room
GRACE_S = 10.0  # over parsing.timeout_s: a parser process to start, be stopped, report
MODEL_LOAD_S = 60.0  # and the first job (the corpus's warm-up note) loads the models
EMBED_S_PER_CHUNK = 0.1  # and a job that indexed N chunks embedded them
PEAK_LIMIT = 2 << 30  # the whole run's process tree
HARD_CAP = 4 << 30  # the harness stops a run here, to spare the machine
STALL_S = 3 * TIMEOUT_S + 60  # one file running this long: the harness stops the run
RUN_DEADLINE_S = 900.0
SERVE_BUDGET_S = 480.0  # uploads left when this is spent are reported, not made
POLL_S = 0.05
HEALTH_EVERY_S = 0.15
HEALTH_TIMEOUT_S = 2.0
TENANT = "default"
MMRAG = Path(sys.executable).with_name("mmrag")
RUNNING = re.compile(r"mmrag\.ingest: running (.*) \(job [0-9a-f]+, attempt \d+\)")
UPLOADED = {"zip-bomb", "pixel-bomb", "entity-expansion", "deep-nesting", "huge-line", "long-pdf"}
UPLOADED_GOOD = ("good/pdf-text-01.pdf", "good/docx-picture-01.docx", "good/png-01.png")


# ------------------------------------------------------------------ processes


def write_config(path: Path, data_dir: Path) -> Path:
    """Offline profile, OCR captions, no pixel channel, and the limits under test."""
    path.write_text(
        f"""data_dir = "{data_dir}"
profile = "offline"

[captioner]
backend = "ocr"

[image_embedder]
backend = "none"

[parsing]
isolate = true
timeout_s = {TIMEOUT_S}
memory_mb = {MEMORY_MB}

[ingest]
follow_symlinks = false

[queue]
poll_s = 0.2
""",
        encoding="utf-8",
    )
    return path


def start_mmrag(config: Path, *args: str, stdout: IO[bytes] | int) -> subprocess.Popen[bytes]:
    """``mmrag --config CONFIG ARGS`` in a process group of its own (so its parser
    children can be stopped with it); stderr is piped."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("MMRAG_")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    env["COLUMNS"] = "1000"  # rich wraps at 80 columns off a terminal
    return subprocess.Popen(
        [str(MMRAG), "--config", str(config), *args],
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )


def stop_group(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)


class TreeWatcher(threading.Thread):
    """Sums the RSS of a process and all its descendants every 50 ms, keeping the peak
    and what was being done then; stops the process group past `HARD_CAP`.

    RSS counts a page once per process that maps it, so pages a fork server shares with
    the parser children it forks count several times. Whenever the RSS sum is over
    `PEAK_LIMIT`, the proportional set size (PSS: a shared page split between its
    sharers) is summed too (at most every 250 ms: the kernel walks every mapping); the
    tree's memory is that PSS, which is never more than the RSS sum."""

    def __init__(self, process: subprocess.Popen[bytes], doing: Callable[[], str]) -> None:
        super().__init__(name="tree-watcher", daemon=True)
        self._process, self._doing = process, doing
        self._done = threading.Event()
        self.started = time.monotonic()
        self.peak, self.peak_at, self.peak_during, self.killed = 0, 0.0, "", ""
        self.pss_peak, self.pss_during, self._pss_at = 0, "", 0.0

    def _tree(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self._process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    def _sum(self, tree: list[psutil.Process], measure: Callable[[psutil.Process], int]) -> int:
        total = 0
        for member in tree:
            with contextlib.suppress(psutil.Error, OSError, ValueError):
                total += measure(member)
        return total

    def run(self) -> None:
        while not self._done.wait(POLL_S) and self._process.poll() is None:
            tree = self._tree()
            total = self._sum(tree, lambda member: member.memory_info().rss)
            if total > self.peak:
                self.peak, self.peak_during = total, self._doing()
                self.peak_at = time.monotonic() - self.started
            if total > PEAK_LIMIT and time.monotonic() - self._pss_at > 0.25:
                self._pss_at = time.monotonic()
                pss = self._sum(tree, _pss)
                if pss > self.pss_peak:
                    self.pss_peak, self.pss_during = pss, self._doing()
            if total > HARD_CAP:
                self.killed = f"process tree at {total / 2**30:.1f} GiB during {self._doing()}"
                stop_group(self._process)
                return

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=5)

    @property
    def memory(self) -> int:
        """The tree's peak: the RSS sum, or its PSS sum where the RSS sum was over."""
        return self.peak if self.peak <= PEAK_LIMIT else self.pss_peak

    def describe(self) -> str:
        text = (
            f"peak RSS sum {self.peak / 2**30:.2f} GiB at {self.peak_at:.0f}s "
            f"during {self.peak_during or '-'}"
        )
        if self.pss_peak:
            text += f"; peak PSS sum {self.pss_peak / 2**30:.2f} GiB during {self.pss_during}"
        return text


def _pss(process: psutil.Process) -> int:
    """Proportional set size from /proc (psutil's memory_full_info reads all of smaps:
    too slow to poll)."""
    with open(f"/proc/{process.pid}/smaps_rollup", encoding="ascii") as rollup:
        for line in rollup:
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    return 0


class StderrLog(threading.Thread):
    """Copies a process's stderr to a file with a timestamp per line; follows the
    ``running FILE`` lines of the job runner (which file runs, since when)."""

    def __init__(self, stream: IO[bytes], path: Path) -> None:
        super().__init__(name="stderr-log", daemon=True)
        self._stream, self.path = stream, path
        self.started = time.monotonic()
        self.lines: list[tuple[float, str]] = []
        self.current: tuple[str, float] = ("(starting)", self.started)

    def run(self) -> None:
        with self.path.open("w", encoding="utf-8", errors="backslashreplace") as log:
            for raw in self._stream:
                line = raw.decode("utf-8", "backslashreplace").rstrip("\n")
                now = time.monotonic()
                self.lines.append((now - self.started, line))
                log.write(f"{now - self.started:8.2f} {line}\n")
                log.flush()
                if found := RUNNING.search(line):
                    self.current = (found.group(1), now)

    def doing(self) -> str:
        name, since = self.current
        return f"{name} ({time.monotonic() - since:.0f}s in)"

    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def tail(self, count: int = 40) -> str:
        return "\n".join(line for _, line in self.lines[-count:])


# ------------------------------------------------------------------ a) one ingest run


@dataclass(repr=False)  # pytest shows it with every failure: `context` says what matters
class IngestRun:
    corpus: HostileCorpus
    config: Path
    code: int | None  # None: stopped by the harness
    stopped: str  # why the harness stopped it
    seconds: float
    rows: list[dict[str, Any]]  # ``--json`` output
    log: StderrLog
    memory: TreeWatcher
    records: list[DocumentRecord] = field(default_factory=list)
    jobs: dict[str, IngestJob] = field(default_factory=dict)

    def row(self, entry: HostileFile) -> dict[str, Any] | None:
        return next((row for row in self.rows if entry.is_at(str(row.get("path", "")))), None)

    def record(self, entry: HostileFile) -> DocumentRecord | None:
        return next((r for r in self.records if entry.is_at(r.path)), None)

    def timings(self) -> list[tuple[float, str, str, str]]:
        """Every job the catalog has, slowest first: seconds, file, state, error."""
        root = f"{self.corpus.root}/"
        timed = [
            (job.seconds, record.path.removeprefix(root), job.state.value, job.error)
            for record in self.records
            if (job := self.jobs.get(record.document_id)) is not None
        ]
        return sorted(timed, reverse=True)

    def context(self) -> str:
        """What every failure message ends with."""
        how = f"exit {self.code}" if self.code is not None else f"stopped: {self.stopped}"
        return (
            f"\n[run: {how} after {self.seconds:.0f}s; {self.memory.describe()}; "
            f"log {self.log.path}]\n--- last stderr lines ---\n{self.log.tail(15)}"
        )


def watch(process: subprocess.Popen[bytes], log: StderrLog, memory: TreeWatcher) -> str:
    """Wait for the run to end; why the harness had to stop it, if it did."""
    while process.poll() is None and not memory.killed:
        name, since = log.current
        if time.monotonic() - since > STALL_S:
            return f"{name} ran over {STALL_S:.0f}s"
        if time.monotonic() - log.started > RUN_DEADLINE_S:
            return f"the run passed {RUN_DEADLINE_S:.0f}s, during {log.doing()}"
        time.sleep(0.2)
    return memory.killed


def run_ingest(corpus: HostileCorpus, config: Path, folder: Path) -> IngestRun:
    """``mmrag ingest --json CORPUS`` to its end, under the watchers."""
    stdout_path = folder / "ingest-stdout.json"
    with stdout_path.open("wb") as stdout:
        process = start_mmrag(config, "ingest", "--json", str(corpus.root), stdout=stdout)
        assert process.stderr is not None
        log = StderrLog(process.stderr, folder / "ingest-stderr.log")
        memory = TreeWatcher(process, log.doing)
        log.start()
        memory.start()
        try:
            stopped = watch(process, log, memory)
        finally:
            stop_group(process)  # also when the test run is interrupted
            code = process.wait()
            memory.stop()
            log.join(timeout=10)
    text = stdout_path.read_text(encoding="utf-8", errors="backslashreplace")
    try:
        rows = json.loads(text) if text.strip() else []
    except json.JSONDecodeError:
        rows = []
    seconds = time.monotonic() - log.started
    code_or_none = None if stopped else code
    run = IngestRun(corpus, config, code_or_none, stopped, seconds, rows, log, memory)
    catalog = Catalog.open(load_settings(config).catalog_url)
    try:
        run.records = catalog.list(TENANT)
        book = JobBook(catalog.engine)
        for record in run.records:
            if (job := book.latest(TENANT, record.document_id)) is not None:
                run.jobs[record.document_id] = job
    finally:
        catalog.close()
    return run


def ingest_summary(run: IngestRun) -> str:
    lines = [
        f"hostile ingest: {len(run.corpus.files)} files + {len(run.corpus.links)} links, "
        f"{run.corpus.total_bytes() / 1e6:.0f} MB, written in {run.corpus.seconds:.1f}s",
        f"run: exit {run.code}, {run.seconds:.0f}s, {run.memory.describe()}"
        + (f", STOPPED: {run.stopped}" if run.stopped else ""),
        f"{'seconds':>8}  {'job':<9} file / error",
    ]
    for seconds, path, state, error in run.timings()[:12]:
        lines.append(f"{seconds:8.1f}  {state:<9} {path}  {error[:110]}")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> HostileCorpus:
    return write_hostile_corpus(tmp_path_factory.mktemp("hostile") / "corpus")


@pytest.fixture(scope="module")
def ingest_run(
    corpus: HostileCorpus, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> IngestRun:
    folder = tmp_path_factory.mktemp("hostile-ingest")
    config = write_config(folder / "mmrag.toml", folder / "data")
    run = run_ingest(corpus, config, folder)
    show(request, ingest_summary(run))
    return run


def show(request: pytest.FixtureRequest, text: str) -> None:
    """Print a summary table now, past pytest's output capture."""
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("\n" + text)


def test_the_corpus_has_every_class(corpus: HostileCorpus) -> None:
    counts = corpus.counts()
    assert len(corpus.files) >= 200 and len(corpus.good) >= 40, counts
    assert {"loop", "dangling", "escape"} <= {c.removeprefix("link-") for c in counts["skipped"]}
    assert corpus.total_bytes() < 100e6 and corpus.seconds < 30, (corpus.total_bytes(), counts)
    assert all(entry.phrase for entry in corpus.good)


def test_the_run_finishes_normally(ingest_run: IngestRun) -> None:
    """Exit 1 is "finished; some files failed" (ingest.cli.EXIT_FAILED_FILES)."""
    assert ingest_run.code == 1, f"expected exit 1{ingest_run.context()}"
    assert len(ingest_run.rows) >= len(ingest_run.corpus.files), ingest_run.context()


def test_no_file_fails_unexpectedly(ingest_run: IngestRun) -> None:
    """A hostile file is a DocumentError with a reason, not an error nobody expected
    (the job runner's last-resort boundary logs a traceback for those)."""
    unexpected = [
        f"{row.get('path')}: {str(row.get('error'))[:200]}"
        for row in ingest_run.rows
        if ": unexpected " in str(row.get("error") or "")
    ]
    tracebacks = ingest_run.log.text().count("Traceback (most recent call last)")
    assert not unexpected and not tracebacks, (
        f"{tracebacks} traceback(s) logged; unexpected failures:\n"
        + "\n".join(unexpected)
        + ingest_run.context()
    )


def test_every_bad_file_is_reported_with_a_reason(ingest_run: IngestRun) -> None:
    problems, unreached = [], []
    for entry in ingest_run.corpus.bad:
        row, record = ingest_run.row(entry), ingest_run.record(entry)
        if row is None and record is None:
            unreached.append(entry.relative)
            continue
        error = str(row.get("error") or "") if row else ""
        if row is not None and (row.get("outcome") != "failed" or not entry.named_in(error)):
            problems.append(f"{entry.relative}: output {row.get('outcome')} {error[:120]!r}")
        if record is None:
            problems.append(f"{entry.relative}: not in the catalog")
        elif record.status is not DocumentStatus.FAILED or not record.error.strip():
            problems.append(f"{entry.relative}: catalog {record.status.value} {record.error!r}")
        elif not gives_reason(entry, record.error):
            reason = f"{record.error[:150]!r}"
            problems.append(f"{entry.relative}: says none of {entry.reason}: {reason}")
    assert not problems and not unreached, report(problems, unreached) + ingest_run.context()


def report(problems: list[str], unreached: list[str]) -> str:
    """Problems one a line; files the run never reached (stopped) in one line."""
    if unreached:
        shown = ", ".join(unreached[:6]) + (", ..." if len(unreached) > 6 else "")
        problems = [*problems, f"{len(unreached)} never reached (no output, no catalog): {shown}"]
    return "\n".join(problems)


def gives_reason(entry: HostileFile, error: str) -> bool:
    """A file refused by a limit says which (any reason will do for the others)."""
    return not entry.reason or any(hint.lower() in error.lower() for hint in entry.reason)


def test_contained_files_are_never_expanded(ingest_run: IngestRun) -> None:
    """Entities in HTML: indexed or reported, either is right; expanded, never."""
    problems: list[str] = []
    unreached: list[str] = []
    with build_services(load_settings(ingest_run.config)) as services:
        for entry in ingest_run.corpus.contained:
            record = ingest_run.record(entry)
            if record is None:
                unreached.append(entry.relative)
                continue
            if record.status is DocumentStatus.FAILED and not entry.named_in(record.error):
                problems.append(f"{entry.relative}: failed without its name {record.error!r}")
            elif record.status not in (DocumentStatus.FAILED, DocumentStatus.INDEXED):
                problems.append(f"{entry.relative}: left {record.status.value}")
            where = PointFilter(match={"tenant": TENANT, "document_id": record.document_id})
            for payload in services.store.payloads(where):
                text = str(payload.get("text", ""))
                if "lollol" in text or "Quokka" in text:
                    problems.append(f"{entry.relative}: expanded into the index: {text[:80]!r}")
                    break
    assert not problems and not unreached, report(problems, unreached) + ingest_run.context()


def test_every_good_file_is_indexed(ingest_run: IngestRun) -> None:
    problems, unreached = [], []
    for entry in ingest_run.corpus.good:
        row, record = ingest_run.row(entry), ingest_run.record(entry)
        if row is None and record is None:
            unreached.append(entry.relative)
            continue
        if row is not None and row.get("outcome") != "indexed":
            detail = f"{row.get('outcome')} {str(row.get('error'))[:120]!r}"
            problems.append(f"{entry.relative}: output {detail}")
        if record is None or record.status is not DocumentStatus.INDEXED or not record.points:
            detail = f"{record.status.value} {record.error[:120]!r}" if record else "missing"
            problems.append(f"{entry.relative}: catalog {detail}")
    assert not problems and not unreached, report(problems, unreached) + ingest_run.context()


def test_every_good_file_is_found_by_its_phrase(ingest_run: IngestRun) -> None:
    missed: list[str] = []
    unreached: list[str] = []
    with build_services(load_settings(ingest_run.config)) as services:
        for entry in ingest_run.corpus.good:
            record = ingest_run.record(entry)
            if record is None:
                unreached.append(entry.relative)
                continue
            hits = services.retriever.search(entry.phrase, tenant=TENANT, limit=10).hits
            if not any(hit.document_id == record.document_id for hit in hits):
                top = [Path(hit.source).name for hit in hits[:3]]
                missed.append(f"{entry.relative}: {entry.phrase!r} found {top}")
    assert not missed and not unreached, report(missed, unreached) + ingest_run.context()


def test_every_link_is_reported_as_skipped(ingest_run: IngestRun) -> None:
    texts = [line for _, line in ingest_run.log.lines]
    texts += [json.dumps(row, ensure_ascii=False) for row in ingest_run.rows]
    problems = []
    for link in ingest_run.corpus.links:
        said = [text for text in texts if link.relative in text]
        if not any("skip" in text.lower() for text in said):
            problems.append(f"{link.relative} ({link.note}): not reported as skipped {said[:2]}")
        indexed = [r.path for r in ingest_run.records if link.relative in r.path]
        if indexed:
            problems.append(f"{link.relative}: in the catalog as {indexed}")
    assert not problems, "\n".join(problems) + ingest_run.context()


def test_nothing_outside_the_folder_is_indexed(ingest_run: IngestRun) -> None:
    root = str(ingest_run.corpus.root) + "/"
    outside = [
        f"{r.path} ({r.status.value})" for r in ingest_run.records if not r.path.startswith(root)
    ]
    with build_services(load_settings(ingest_run.config)) as services:
        hits = services.retriever.search(OUTSIDE_PHRASE, tenant=TENANT, limit=20).hits
    leaked = [f"{hit.source}: {hit.text[:80]!r}" for hit in hits if "Quokka" in hit.text]
    assert not outside and not leaked, (
        f"catalog entries outside {root}: {outside}\noutside text in the index: {leaked}"
        + ingest_run.context()
    )


def test_no_file_runs_over_the_time_limit(ingest_run: IngestRun) -> None:
    """Jobs (claim to outcome, from the catalog) within parsing.timeout_s and a grace.
    parsing.timeout_s leaves out the time the models take, so the first job may also
    load them, and an indexed document may also embed its chunks."""
    first = min(ingest_run.jobs.values(), key=lambda job: job.started_at or 1e12, default=None)
    slow = []
    for record in ingest_run.records:
        job = ingest_run.jobs.get(record.document_id)
        if job is None:
            continue
        limit = TIMEOUT_S + GRACE_S + (MODEL_LOAD_S if job is first else 0.0)
        if job.state is JobState.DONE:
            limit += EMBED_S_PER_CHUNK * record.chunks
        if job.seconds > limit:
            slow.append(f"{job.seconds:.0f}s (limit {limit:.0f}s) {job.state.value} {record.path}")
    if ingest_run.stopped:
        slow.append(f"still running when stopped: {ingest_run.log.doing()}")
    assert not slow, "\n".join(slow) + ingest_run.context()


def test_peak_memory_of_the_run_stays_under_2_gib(ingest_run: IngestRun) -> None:
    memory = ingest_run.memory
    assert memory.memory < PEAK_LIMIT, memory.describe() + ingest_run.context()


# ------------------------------------------------------------------ b) uploads to serve


@dataclass
class Upload:
    entry: HostileFile
    http_status: int = 0
    status: str = ""  # indexed, failed, refused, unfinished, error, not attempted
    error: str = ""
    seconds: float = 0.0


@dataclass(repr=False)
class ServeRun:
    uploads: list[Upload]
    polls: list[tuple[float, str, bool, float, str]]  # at, upload, ok, seconds, detail
    memory: TreeWatcher
    log: StderrLog
    alive_at_end: bool

    def context(self) -> str:
        return (
            f"\n[serve: {self.memory.describe()}; alive at end: {self.alive_at_end}; "
            f"log {self.log.path}]\n--- last stderr lines ---\n{self.log.tail(15)}"
        )


class HealthPoller(threading.Thread):
    def __init__(self, url: str, doing: Callable[[], str]) -> None:
        super().__init__(name="health-poller", daemon=True)
        self._url, self._doing = url, doing
        self._done = threading.Event()
        self.started = time.monotonic()
        self.polls: list[tuple[float, str, bool, float, str]] = []

    def run(self) -> None:
        with httpx.Client(timeout=HEALTH_TIMEOUT_S) as client:
            while not self._done.wait(HEALTH_EVERY_S):
                label, before = self._doing(), time.monotonic()
                try:
                    response = client.get(f"{self._url}/healthz")
                    ok, detail = response.status_code == 200, str(response.status_code)
                except httpx.HTTPError as exc:
                    ok, detail = False, type(exc).__name__
                took = time.monotonic() - before
                ok = ok and took <= HEALTH_TIMEOUT_S
                self.polls.append((before - self.started, label, ok, took, detail))

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=5)


def upload_one(client: httpx.Client, url: str, root: Path, upload: Upload) -> None:
    """POST the file, then follow its document to indexed or failed (or give up, and
    delete it, so the next upload is not queued behind it)."""
    started = time.monotonic()
    with upload.entry.path(root).open("rb") as handle:
        files = [("files", (upload.entry.name, handle, "application/octet-stream"))]
        response = client.post(f"{url}/v1/documents", files=files, timeout=300)
    upload.http_status = response.status_code
    if response.status_code != 202:
        upload.status = "refused" if 400 <= response.status_code < 500 else "error"
        upload.error = response.text[:300]
        upload.seconds = time.monotonic() - started
        return
    document_id = response.json()["documents"][0]["id"]
    deadline = started + TIMEOUT_S + 60
    while time.monotonic() < deadline:
        document = client.get(f"{url}/v1/documents/{document_id}", timeout=30).json()
        if document.get("status") in ("indexed", "failed"):
            upload.status, upload.error = document["status"], document.get("error") or ""
            break
        time.sleep(0.25)
    else:
        upload.status = "unfinished"
        with contextlib.suppress(httpx.HTTPError):
            client.delete(f"{url}/v1/documents/{document_id}", timeout=30)
    upload.seconds = time.monotonic() - started


def upload_plan(corpus: HostileCorpus) -> list[Upload]:
    """The bombs, with a good file after every tenth, and the bracket files (good)."""
    bombs = [e for e in (*corpus.bad, *corpus.contained) if e.category in UPLOADED]
    good = [e for e in corpus.good if e.relative in UPLOADED_GOOD]
    good += [e for e in corpus.good if e.category == "markdown-brackets"]
    plan: list[HostileFile] = []
    for index, entry in enumerate(bombs):
        plan.append(entry)
        if index % 10 == 9 and good:
            plan.append(good.pop(0))
    return [Upload(entry) for entry in plan + good]


@pytest.fixture(scope="module")
def serve_run(
    corpus: HostileCorpus, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[ServeRun]:
    folder = tmp_path_factory.mktemp("hostile-serve")
    config = write_config(folder / "mmrag.toml", folder / "data")
    port = free_port()
    url = f"http://{HOST}:{port}"
    process = start_mmrag(config, "serve", "--port", str(port), stdout=subprocess.DEVNULL)
    assert process.stderr is not None
    log = StderrLog(process.stderr, folder / "serve-stderr.log")
    log.start()
    uploads = upload_plan(corpus)
    current = ["(idle)"]
    memory = TreeWatcher(process, lambda: current[0])
    try:
        wait_for_health(url, process, log)
        memory.start()
        poller = HealthPoller(url, lambda: current[0])
        poller.start()
        budget_end = time.monotonic() + SERVE_BUDGET_S
        with httpx.Client() as client:
            for upload in uploads:
                if time.monotonic() > budget_end or process.poll() is not None:
                    upload.status = "not attempted"
                    continue
                current[0] = upload.entry.relative
                try:
                    upload_one(client, url, corpus.root, upload)
                except httpx.HTTPError as exc:
                    upload.status, upload.error = "error", f"{type(exc).__name__}: {exc}"
                current[0] = "(idle)"
        poller.stop()
        run = ServeRun(uploads, poller.polls, memory, log, process.poll() is None)
        show(request, serve_summary(run))
        yield run
    finally:
        memory.stop()
        stop_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            stop_group(process)
            process.wait(timeout=30)


def wait_for_health(url: str, process: subprocess.Popen[bytes], log: StderrLog) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"mmrag serve exited ({process.returncode})\n{log.tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    pytest.fail(f"mmrag serve did not answer within 180s\n{log.tail()}")


def serve_summary(run: ServeRun) -> str:
    failed_polls = [poll for poll in run.polls if not poll[2]]
    slowest = max((poll[3] for poll in run.polls), default=0.0)
    lines = [
        f"hostile uploads to mmrag serve: {len(run.uploads)} files, {len(run.polls)} health "
        f"polls ({len(failed_polls)} failed, slowest {slowest:.2f}s), {run.memory.describe()}",
        f"{'seconds':>8}  {'status':<13} {'http':>4} {'expect':<5} file / error",
    ]
    for upload in sorted(run.uploads, key=lambda u: u.seconds, reverse=True):
        head = f"{upload.seconds:8.1f}  {upload.status:<13} {upload.http_status:>4}"
        lines.append(
            f"{head} {upload.entry.expect.value:<5} {upload.entry.relative}  {upload.error[:80]}"
        )
    return "\n".join(lines)


def test_serve_answers_health_checks_throughout(serve_run: ServeRun) -> None:
    failed = [
        f"at {at:.1f}s during {label}: {detail} in {took:.2f}s"
        for at, label, ok, took, detail in serve_run.polls
        if not ok
    ]
    assert serve_run.polls, "no health poll was made" + serve_run.context()
    assert not failed, (
        f"{len(failed)} failed polls:\n" + "\n".join(failed[:30]) + serve_run.context()
    )
    assert serve_run.alive_at_end, "mmrag serve died" + serve_run.context()


def test_every_uploaded_bomb_fails_with_a_reason_and_good_uploads_index(
    serve_run: ServeRun,
) -> None:
    problems = []
    for upload in serve_run.uploads:
        if upload.entry.expect is Expect.GOOD:
            ok = upload.status == "indexed"
        elif upload.entry.expect is Expect.CONTAINED:
            ok = upload.status in ("indexed", "failed", "refused")
        else:
            refused = upload.status in ("failed", "refused") and bool(upload.error.strip())
            ok = refused and gives_reason(upload.entry, upload.error)
        if not ok:
            what = f"{upload.status} after {upload.seconds:.1f}s {upload.error[:150]!r}"
            problems.append(f"{upload.entry.relative} ({upload.entry.expect.value}): {what}")
    assert not problems, "\n".join(problems) + serve_run.context()
