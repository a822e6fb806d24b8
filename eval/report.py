"""Reports: report.json (every number, settings, model ids, dataset hash, git commit,
warnings), report.md (warnings first, then tables) and PNG plots (recall@k per
configuration, per-tag bars)."""

from __future__ import annotations

import json
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eval.metrics import percentile, summarize
from eval.runner import CURVE_KS, KS, EvalRun

TABLE_METRICS = [f"{m}@{k}" for m in ("recall", "ndcg", "mrr") for k in KS]


def git_commit(folder: Path) -> str:
    try:
        found = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=folder,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout.strip()
    return found.stdout.strip() + ("+dirty" if dirty else "")


def build_report(run: EvalRun) -> dict[str, Any]:
    names = list(run.configurations)
    overall = {n: summarize([r.scores[n] for r in run.results]) for n in names}
    tags = sorted({tag for r in run.results for tag in r.tags})
    per_tag = {
        n: {t: summarize([r.scores[n] for r in run.results if t in r.tags]) for t in tags}
        for n in names
    }
    latencies = [r.latency_s * 1000 for r in run.results]
    settings = run.settings
    return {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(Path(__file__).resolve().parent),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "python": platform.python_version(),
        },
        "dataset": {
            "name": run.dataset.name,
            "root": str(run.dataset.root),
            "hash": run.dataset.content_hash(),
            "level": run.dataset.level,
            "queries": len(run.dataset.queries),
            "evaluated": len(run.results),
            "tag_counts": {t: sum(t in r.tags for r in run.results) for t in tags},
        },
        "collection": run.collection,
        "warnings": list(run.warnings),
        "models": {
            "text_embedder": settings.text_embedder.model,
            "image_embedder": f"{settings.image_embedder.backend}:{settings.image_embedder.model}",
            "captioner": f"{settings.captioner.backend}:{settings.captioner.model}",
            "answerer": f"{settings.answerer.backend}:{settings.answerer.model}",
        },
        "settings": settings.model_dump(mode="json"),
        "ingest": run.ingest,
        "configurations": run.configurations,
        "overall": overall,
        "per_tag": per_tag,
        "latency_ms": {"p50": percentile(latencies, 50), "p95": percentile(latencies, 95)}
        if latencies
        else {},
        "answers": run.answers,
        "per_query": [
            {
                "id": r.query_id,
                "tags": list(r.tags),
                "latency_s": r.latency_s,
                "scores": r.scores,
                "top_units": r.top_units,
            }
            for r in run.results
        ],
    }


def markdown(report: dict[str, Any]) -> str:
    dataset = report["dataset"]
    lines = [
        f"# Retrieval evaluation: {dataset['name']}",
        "",
        f"{dataset['evaluated']} answerable questions of {dataset['queries']}, judged by "
        f"{dataset['level']}; dataset {dataset['hash'][:12]}; commit "
        f"{report['git_commit']}; {report['created_at']}.",
        "",
        "Models: " + ", ".join(f"{k} `{v}`" for k, v in report["models"].items()),
        "",
    ]
    warnings = report.get("warnings") or []  # reports written before warnings had none
    if warnings:
        lines += ["## Warnings", "", *(f"- **warning:** {text}" for text in warnings), ""]
    lines += [
        "## Overall",
        "",
        _table(report["overall"]),
        "",
    ]
    if report["latency_ms"]:
        latency = report["latency_ms"]
        lines += [
            f"Search latency (all channels, one call): p50 {latency['p50']:.0f} ms, "
            f"p95 {latency['p95']:.0f} ms.",
            "",
        ]
    for tag, count in dataset["tag_counts"].items():
        rows = {name: tags[tag] for name, tags in report["per_tag"].items()}
        lines += [f"## Tag: {tag} ({count} questions)", "", _table(rows), ""]
    if report["answers"]:
        lines += (
            ["## Answers", ""]
            + [f"- {k}: {_number(v)}" for k, v in report["answers"].items()]
            + [""]
        )
    return "\n".join(lines)


def _number(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _table(rows: dict[str, dict[str, float]]) -> str:
    header = "| configuration | " + " | ".join(TABLE_METRICS) + " |"
    lines = [header, "|" + "---|" * (len(TABLE_METRICS) + 1)]
    for name, scores in rows.items():
        cells = " | ".join(f"{scores.get(m, 0.0):.3f}" for m in TABLE_METRICS)
        lines.append(f"| {name} | {cells} |")
    return "\n".join(lines)


def plot(report: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for name, scores in report["overall"].items():
        axes.plot(CURVE_KS, [scores[f"recall@{k}"] for k in CURVE_KS], marker="o", label=name)
    axes.set(
        xlabel="k", ylabel="recall@k", ylim=(0, 1), title=f"Recall@k, {report['dataset']['name']}"
    )
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out / "recall_at_k.png", dpi=120)
    written.append(out / "recall_at_k.png")
    plt.close(figure)
    tags = list(report["dataset"]["tag_counts"])
    if tags:
        figure, axes = plt.subplots(figsize=(max(6, len(tags) * 1.2), 4.5))
        names = list(report["per_tag"])
        width = 0.8 / len(names)
        for index, name in enumerate(names):
            values = [report["per_tag"][name][tag].get("ndcg@5", 0.0) for tag in tags]
            axes.bar([t + index * width for t in range(len(tags))], values, width, label=name)
        axes.set_xticks([t + 0.4 - width / 2 for t in range(len(tags))], tags, rotation=20)
        axes.set(ylabel="nDCG@5", ylim=(0, 1), title="nDCG@5 per tag")
        axes.legend(fontsize=7)
        figure.tight_layout()
        figure.savefig(out / "per_tag_ndcg5.png", dpi=120)
        written.append(out / "per_tag_ndcg5.png")
        plt.close(figure)
    return written


def write_report(run: EvalRun, out: Path) -> dict[str, Any]:
    """Write report.json, report.md and the plots into ``out``; returns the report."""
    out.mkdir(parents=True, exist_ok=True)
    report = build_report(run)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(markdown(report))
    plot(report, out)
    return report
