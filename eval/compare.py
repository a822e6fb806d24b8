"""Compare two reports question by question: mean difference with a paired bootstrap CI."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.datasets import DatasetError
from eval.metrics import paired_bootstrap

DEFAULT_METRICS = ("recall@5", "ndcg@5", "mrr@10")


@dataclass(frozen=True)
class Difference:
    configuration: str
    metric: str
    before: float
    after: float
    difference: float
    low: float
    high: float
    p_value: float
    questions: int


def load_report(path: Path) -> dict[str, Any]:
    file = path / "report.json" if path.is_dir() else path
    if not file.is_file():
        raise DatasetError(f"{file}: no report here (run `mmrag eval run` first)")
    report: dict[str, Any] = json.loads(file.read_text())
    return report


def compare(
    before: dict[str, Any], after: dict[str, Any], metrics: tuple[str, ...] = DEFAULT_METRICS
) -> list[Difference]:
    """Differences (after - before) on the questions both reports scored."""
    if before["dataset"]["hash"] != after["dataset"]["hash"]:
        raise DatasetError("the reports are on different datasets (their hashes differ)")
    first = {q["id"]: q for q in before["per_query"]}
    second = {q["id"]: q for q in after["per_query"]}
    shared = sorted(first.keys() & second.keys())
    rows = []
    for name in before["configurations"]:
        if name not in after["configurations"]:
            continue
        for metric in metrics:
            a = [first[q]["scores"][name][metric] for q in shared]
            b = [second[q]["scores"][name][metric] for q in shared]
            result = paired_bootstrap(a, b)
            rows.append(
                Difference(
                    name,
                    metric,
                    sum(a) / len(a),
                    sum(b) / len(b),
                    result.mean_difference,
                    result.low,
                    result.high,
                    result.p_value,
                    len(shared),
                )
            )
    return rows
