"""Run the retrieval stack over a labelled dataset and score every channel configuration.

One search per question fetches every channel's ranking once; each configuration
(a channel alone, each shipped fusion, the configured default) is then fused from those
same rankings, so configurations differ only in how they combine evidence. Retrieved
hits are collapsed to the unit a question is judged on (page, document or image, first
occurrence wins) before Recall/Hit/nDCG/MRR@k.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from eval.datasets import Dataset, Query
from eval.metrics import hit_at_k, mrr_at_k, ndcg_at_k, recall_at_k
from mmrag.documents import Submission
from mmrag.errors import InvalidRequestError
from mmrag.observe import IngestObserver
from mmrag.retrieval import CHANNELS, fuse
from mmrag.services import Services, build_services
from mmrag.settings import Settings
from mmrag.types import Hit

KS = (1, 5, 10)
CURVE_KS = tuple(range(1, 11))  # recall@k for the curves in the report
FUSIONS = {  # the fusions mmrag ships, by name: channel weights for weighted RRF
    "text+sparse": {"text": 1.0, "sparse": 1.0},
    "text+sparse+caption": {"text": 1.0, "sparse": 1.0, "caption": 1.0},
    "all-equal": dict.fromkeys(CHANNELS, 1.0),
}


@dataclass(frozen=True)
class QueryResult:
    query_id: str
    tags: tuple[str, ...]
    latency_s: float
    scores: dict[str, dict[str, float]]  # configuration -> metric -> value
    top_units: dict[str, list[str]]  # configuration -> first retrieved units (for reading)


@dataclass
class EvalRun:
    dataset: Dataset
    settings: Settings
    collection: str
    configurations: dict[str, dict[str, float]]
    results: list[QueryResult] = field(default_factory=list)
    ingest: dict[str, Any] = field(default_factory=dict)
    answers: dict[str, Any] = field(default_factory=dict)


def index_fingerprint(settings: Settings) -> str:
    """What the index depends on: parsing and the models that write vectors."""
    parts = [
        settings.parsing,
        settings.text_embedder.model,
        settings.image_embedder.backend,
        settings.image_embedder.model,
        settings.captioner.backend,
        settings.captioner.model,
        settings.captioner.prompt,
        settings.captioner.ocr_text,
    ]
    text = json.dumps(
        [p.model_dump() if hasattr(p, "model_dump") else p for p in parts],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def eval_settings(settings: Settings, dataset: Dataset) -> Settings:
    """The dataset gets its own collection and tenant, named by dataset and index settings:
    re-runs reuse the index; a change to chunking or models builds a new one."""
    name = "".join(c if c.isalnum() else "-" for c in dataset.name)[:40]
    collection = f"eval-{name}-{index_fingerprint(settings)}"
    return settings.model_copy(
        update={
            "store": settings.store.model_copy(update={"collection": collection}),
            "ingest": settings.ingest.model_copy(
                update={"tenant": collection, "keep_originals": False}
            ),
        }
    )


def parse_configuration(text: str) -> tuple[str, dict[str, float]]:
    """``NAME=channel:weight,channel:weight`` (e.g. ``cap-half=text:1,sparse:1,caption:0.5``)."""
    name, _, spec = text.partition("=")
    weights: dict[str, float] = {}
    try:
        for part in spec.split(","):
            channel, _, weight = part.partition(":")
            weights[channel.strip()] = float(weight or 1.0)
    except ValueError:
        raise InvalidRequestError(f"configuration {text!r}: use NAME=channel:weight,...") from None
    unknown = set(weights) - set(CHANNELS)
    if not name or not spec or unknown:
        raise InvalidRequestError(
            f"configuration {text!r}: use NAME=channel:weight,... with channels from "
            f"{', '.join(CHANNELS)}"
        )
    return name, weights


def configurations(
    services: Services, extra: dict[str, dict[str, float]] | None = None
) -> dict[str, dict[str, float]]:
    """Each available channel alone, each shipped fusion, the configured default, and any
    ``extra`` weightings to try."""
    available = services.retriever.channels()
    chosen = {channel: {channel: 1.0} for channel in available}
    for name, weights in FUSIONS.items():
        usable = {c: w for c, w in weights.items() if c in available}
        if len(usable) > 1 and usable not in chosen.values():  # e.g. all-equal without pixels
            chosen[name] = usable
    default = {c: w for c, w in services.settings.retrieval.weights().items() if c in available}
    chosen["default"] = default
    for name, weights in (extra or {}).items():
        chosen[name] = {c: w for c, w in weights.items() if c in available}
    return chosen


def units_for(query: Query) -> tuple[Callable[[Hit], str], set[str]]:
    """How a hit is judged for this query, and the relevant units."""
    if any(r.image for r in query.relevant):
        return (lambda hit: hit.source), {r.image or "" for r in query.relevant}
    if all(r.page is not None for r in query.relevant):
        return (
            (lambda hit: f"{hit.source}#{hit.page}"),
            {f"{r.doc}#{r.page}" for r in query.relevant},
        )
    return (lambda hit: hit.source), {r.doc or "" for r in query.relevant}


def score_ranking(hits: list[Hit], query: Query, root: Path) -> tuple[dict[str, float], list[str]]:
    unit_of, relevant = units_for(query)
    units: list[str] = []
    for hit in hits:
        relative = _relative(hit, root)
        unit = unit_of(relative)
        if unit not in units:
            units.append(unit)
    ranked = [unit if unit in relevant else None for unit in units]
    scores = {f"recall@{k}": recall_at_k(ranked, relevant, k) for k in CURVE_KS}
    for k in KS:
        scores[f"hit@{k}"] = hit_at_k(ranked, relevant, k)
        scores[f"ndcg@{k}"] = ndcg_at_k(ranked, relevant, k)
        scores[f"mrr@{k}"] = mrr_at_k(ranked, relevant, k)
    return scores, units[:10]


def _relative(hit: Hit, root: Path) -> Hit:
    """The hit with its source relative to the dataset root (how relevance names files)."""
    try:
        source = Path(hit.source).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        source = hit.source
    return replace(hit, source=source)


def run_eval(
    dataset: Dataset,
    settings: Settings,
    *,
    observer: IngestObserver | None = None,
    finished: Callable[[Submission], None] | None = None,
    limit: int | None = None,
    answers: bool = False,
    services: Services | None = None,
    extra: dict[str, dict[str, float]] | None = None,
) -> EvalRun:
    """Ingest the corpus (reused when unchanged), then score every answerable query."""
    built = services or build_services(eval_settings(settings, dataset))
    run = EvalRun(
        dataset=dataset,
        settings=built.settings,
        collection=built.settings.store.collection,
        configurations=configurations(built, extra),
    )
    started = time.perf_counter()
    results = built.ingest_here(
        list(dataset.corpus),
        tenant=built.settings.ingest.tenant,
        observer=observer,
        finished=finished,
    )
    run.ingest = {
        "seconds": time.perf_counter() - started,
        "indexed": sum(r.outcome == "indexed" for r in results),
        "unchanged": sum(r.outcome == "unchanged" for r in results),
        "failed": [r.message for r in results if r.outcome == "failed"],
        "points": built.store.count(),
    }
    queries = [q for q in dataset.queries if q.answerable and q.relevant][:limit]
    for query in queries:
        run.results.append(_evaluate(built, run.configurations, query, dataset.root))
    if answers:
        from eval.answers import evaluate_answers

        run.answers = evaluate_answers(built, dataset, limit=limit)
    if services is None:
        built.close()
    return run


def _evaluate(
    services: Services, chosen: dict[str, dict[str, float]], query: Query, root: Path
) -> QueryResult:
    retrieval = services.settings.retrieval
    result = services.retriever.search(
        query.question, tenant=services.settings.ingest.tenant, limit=retrieval.candidates
    )
    scores, tops = {}, {}
    for name, weights in chosen.items():
        rankings = {c: ranked for c, ranked in result.rankings.items() if c in weights}
        hits = fuse(rankings, weights, retrieval.rrf_k, retrieval.candidates)
        scores[name], tops[name] = score_ranking(hits, query, root)
    return QueryResult(
        query_id=query.id,
        tags=query.tags,
        latency_s=result.timings["total_s"],
        scores=scores,
        top_units=tops,
    )
