"""Search under load: N concurrent clients on ``POST /v1/search`` against ``mmrag serve``.

A benchmark, not a test. It indexes a generated born-digital PDF (`write_long_pdf`,
``--index-pages`` pages) with ``mmrag ingest``, starts ``mmrag serve`` on 127.0.0.1 (a
free port, offline profile, embedded store and queue), warms it up, then runs two
phases of ``--duration`` seconds each with ``--clients`` concurrent clients (one asyncio
task each, one request at a time, the query-latency benchmark's questions in turn):

1. **search alone**;
2. **search during an ingest**: a second generated PDF (``--ingest-pages`` pages, a chart
   every 10) is uploaded at the start of the phase and ingested by the service's own
   worker while the clients search (skipped with ``--no-ingest``).

Per phase: requests/s, errors (by status or exception), latency p50/p95/p99, and the
service's CPU seconds; then the throughput cost of the concurrent ingest and how far the
ingest got. The report names the CPU and the load average before the start (the machine
is called busy when it is at least half the cores): timings are wall clock. Every
request goes to 127.0.0.1, and every loop ends at its phase's deadline.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/load_search.py      # 30 clients, 2 x 120 s
    ... --clients 30 --duration 20 --no-ingest --out bench-out/load.json
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from query_latency import QUESTIONS  # a sibling script: the same questions, same PDF text
from queue_workers import worker_command, worker_env, write_report

from eval.metrics import percentile
from mmrag.models.device import cpu_name
from mmrag.testing.documents import write_long_pdf
from mmrag.testing.servers import HOST, free_port

logger = logging.getLogger("benchmarks.load_search")
REQUEST_TIMEOUT_S = 60.0


@dataclass
class Phase:
    """One phase's requests: latencies of the successful ones, errors by kind."""

    name: str
    clients: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    server_cpu_seconds: float = 0.0
    ingest: dict[str, Any] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return len(self.latencies) + sum(self.errors.values())

    @property
    def per_second(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def latency_ms(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000 if self.latencies else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in asdict(self).items() if k != "latencies"},
            "errors": dict(self.errors),
            "requests": self.requests,
            "requests_per_second": self.per_second,
            "p50_ms": self.latency_ms(50),
            "p95_ms": self.latency_ms(95),
            "p99_ms": self.latency_ms(99),
        }


# --------------------------------------------------------------------------- clients


async def client_loop(
    client: httpx.AsyncClient, url: str, number: int, deadline: float, phase: Phase
) -> None:
    """One client: one search at a time until the deadline."""
    index = number
    while time.monotonic() < deadline:
        query = QUESTIONS[index % len(QUESTIONS)]
        index += 1
        started = time.perf_counter()
        try:
            response = await client.post(f"{url}/v1/search", json={"query": query, "limit": 10})
        except httpx.HTTPError as exc:
            phase.errors[type(exc).__name__] += 1
            continue
        if response.status_code == 200:
            phase.latencies.append(time.perf_counter() - started)
        else:
            phase.errors[f"HTTP {response.status_code}"] += 1


async def run_clients(url: str, clients: int, duration_s: float, phase: Phase) -> None:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S, limits=limits) as client:
        started = time.monotonic()
        deadline = started + duration_s
        await asyncio.gather(
            *(client_loop(client, url, n, deadline, phase) for n in range(clients))
        )
        phase.seconds = time.monotonic() - started


# --------------------------------------------------------------------------- service


class Service:
    """``mmrag serve`` on a free loopback port; stopped (SIGTERM, then SIGKILL) on exit."""

    def __init__(self, data_dir: Path, log_path: Path, ready_s: float) -> None:
        self.url = f"http://{HOST}:{free_port()}"
        port = self.url.rsplit(":", 1)[1]
        env = worker_env(data_dir, None, None, threads=0)
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [*worker_command(), "serve", "--host", HOST, "--port", port],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        self.log_path = log_path
        self._wait_ready(ready_s)

    def _wait_ready(self, ready_s: float) -> None:
        deadline = time.monotonic() + ready_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mmrag serve exited; log {self.log_path}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"mmrag serve not ready within {ready_s:.0f}s; log {self.log_path}")

    def cpu_seconds(self) -> float:
        """CPU time of the service and its children so far."""
        try:
            root = psutil.Process(self.process.pid)
            total = sum(root.cpu_times()[:2])
            for child in root.children(recursive=True):
                total += sum(child.cpu_times()[:2])
            return float(total)
        except psutil.Error:
            return 0.0

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)


def index_corpus(data_dir: Path, pdf: Path, timeout_s: float) -> None:
    """``mmrag ingest PDF`` on the data directory, before the service holds it."""
    env = worker_env(data_dir, None, None, threads=0)
    subprocess.run(
        [*worker_command(), "ingest", str(pdf)],
        env=env,
        check=True,
        timeout=timeout_s,
        capture_output=True,
    )


def upload(url: str, path: Path) -> str:
    """Upload a file for the service's worker to ingest; its job id."""
    with path.open("rb") as handle:
        files = [("files", (path.name, handle, "application/pdf"))]
        response = httpx.post(f"{url}/v1/documents", files=files, timeout=120)
    response.raise_for_status()
    return str(response.json()["documents"][0]["job_id"])


def ingest_state(url: str, job_id: str) -> dict[str, Any]:
    """How far the job got: state, pages done of total, seconds run."""
    job = httpx.get(f"{url}/v1/jobs/{job_id}", timeout=30).json()
    progress = job.get("progress") or {}
    return {
        "state": job.get("state"),
        "pages": f"{progress.get('pages', 0)}/{progress.get('pages_total', 0)}",
        "seconds": round(float(job.get("seconds") or 0.0), 1),
    }


# --------------------------------------------------------------------------- phases


def run_phase(
    service: Service, name: str, clients: int, duration_s: float, upload_path: Path | None
) -> Phase:
    phase = Phase(name, clients)
    job_id = upload(service.url, upload_path) if upload_path else None
    cpu_before = service.cpu_seconds()
    asyncio.run(run_clients(service.url, clients, duration_s, phase))
    phase.server_cpu_seconds = service.cpu_seconds() - cpu_before
    if job_id:
        phase.ingest = ingest_state(service.url, job_id)
    logger.info("%s: %.1f req/s, %d errors", name, phase.per_second, sum(phase.errors.values()))
    return phase


def warm_up(service: Service) -> None:
    for query in QUESTIONS[:5]:
        httpx.post(f"{service.url}/v1/search", json={"query": query}, timeout=60).raise_for_status()


def measure(arguments: argparse.Namespace, work: Path) -> list[Phase]:
    data_dir = work / "data"
    started = time.perf_counter()
    indexed = write_long_pdf(work / "corpus" / "manual.pdf", arguments.index_pages)
    index_corpus(data_dir, indexed, arguments.ready_timeout * 4)
    logger.info("indexed %d pages in %.0fs", arguments.index_pages, time.perf_counter() - started)
    service = Service(data_dir, work / "serve.log", arguments.ready_timeout)
    try:
        warm_up(service)
        phases = [run_phase(service, "search alone", arguments.clients, arguments.duration, None)]
        if not arguments.no_ingest:
            extra = write_long_pdf(work / "upload" / "log.pdf", arguments.ingest_pages, variant=1)
            name = f"search + ingest of a {arguments.ingest_pages}-page PDF"
            try:
                phases.append(
                    run_phase(service, name, arguments.clients, arguments.duration, extra)
                )
            except httpx.HTTPStatusError as exc:  # the upload was refused: no second phase
                logger.error("upload refused, no ingest phase: %s %s", exc, exc.response.text)
        return phases
    finally:
        service.stop()


# --------------------------------------------------------------------------- report


def print_report(phases: list[Phase], info: dict[str, Any]) -> None:
    start, end = info["load_average"]["start"], info["load_average"]["end"]
    busy = "busy" if start[0] >= info["cores"] / 2 else "quiet"
    print(f"Machine: {info['cpu']}, {info['cores']} cores; CPU only.")
    print(
        f"Load average (1/5/15 min) before start {start[0]:.2f} {start[1]:.2f} {start[2]:.2f} "
        f"({busy}), at end {end[0]:.2f} {end[1]:.2f} {end[2]:.2f}."
    )
    print()
    print(
        "| phase | clients | seconds | requests | req/s | errors | p50 ms | p95 ms | p99 ms "
        "| server CPU s (cores busy) |"
    )
    print("|" + "---|" * 10)
    for p in phases:
        errors = ", ".join(f"{k}: {v}" for k, v in p.errors.items()) or "0"
        cores = p.server_cpu_seconds / p.seconds if p.seconds else 0.0
        print(
            f"| {p.name} | {p.clients} | {p.seconds:.1f} | {p.requests} | {p.per_second:.1f} "
            f"| {errors} | {p.latency_ms(50):.0f} | {p.latency_ms(95):.0f} "
            f"| {p.latency_ms(99):.0f} | {p.server_cpu_seconds:.0f} ({cores:.2f}) |"
        )
    if len(phases) == 2 and phases[0].per_second:
        alone, loaded = phases
        cost = 1 - loaded.per_second / alone.per_second
        print()
        print(
            f"Throughput cost of the concurrent ingest: {cost:.0%} fewer req/s; "
            f"p95 {loaded.latency_ms(95) - alone.latency_ms(95):+.0f} ms. "
            f"Ingest at the end of the phase: {loaded.ingest}"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=30, help="concurrent clients")
    parser.add_argument("--duration", type=float, default=120.0, help="seconds per phase")
    parser.add_argument("--index-pages", type=int, default=100, help="pages indexed first")
    parser.add_argument("--ingest-pages", type=int, default=200, help="pages ingested alongside")
    parser.add_argument("--no-ingest", action="store_true", help="search alone only")
    parser.add_argument("--ready-timeout", type=float, default=300.0, help="serve start-up s")
    parser.add_argument("--out", type=Path, default=Path("bench-out/load_search.json"))
    parser.add_argument("--keep", type=Path, help="work here (kept) instead of a temp dir")
    arguments = parser.parse_args(argv)
    if arguments.clients < 1 or arguments.duration <= 0:
        parser.error("--clients and --duration must be positive")
    return arguments


def main(argv: list[str] | None = None) -> int:
    arguments = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    for key in [key for key in os.environ if key.startswith("MMRAG_")]:
        del os.environ[key]  # the benchmark's settings are its own
    info: dict[str, Any] = {"cpu": cpu_name(), "cores": len(os.sched_getaffinity(0))}
    info["load_average"] = {"start": os.getloadavg()}
    if arguments.keep:
        arguments.keep.mkdir(parents=True, exist_ok=True)
        phases = measure(arguments, arguments.keep.resolve())
    else:
        with tempfile.TemporaryDirectory(prefix="mmrag-load-bench-") as work:
            phases = measure(arguments, Path(work))
    info["load_average"]["end"] = os.getloadavg()
    print_report(phases, info)
    payload = {
        "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(arguments).items()},
        "machine": info,
        "phases": [phase.as_dict() for phase in phases],
    }
    write_report(arguments.out, payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
