"""Run the retrieval stack over a labelled dataset and score every channel configuration.

One search per question fetches every channel's ranking once; each configuration
(a channel alone, each shipped fusion, the configured default) is then fused from those
same rankings, so configurations differ only in how they combine evidence. A hit is
tied to its dataset file by document id (the id ingest gave that file), never by its
source path, which is the resolved file and lies elsewhere when the corpus holds links.
Retrieved hits are collapsed to the unit a question is judged on (page, document or
image, first occurrence wins) before Recall/Hit/nDCG/MRR@k; nDCG uses graded relevance.
A run where no hit belongs to a dataset file says so in `EvalRun.warnings`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eval.datasets import Dataset, Query
from eval.metrics import hit_at_k, mrr_at_k, ndcg_at_k, recall_at_k
from mmrag.channels import channel_names
from mmrag.documents import Submission
from mmrag.errors import InvalidRequestError
from mmrag.observe import IngestObserver
from mmrag.profiles import resolve_profile
from mmrag.services import Services, build_services
from mmrag.settings import Settings, SparseSettings
from mmrag.types import Hit

logger = logging.getLogger(__name__)

KS = (1, 5, 10)
CURVE_KS = tuple(range(1, 11))  # recall@k for the curves in the report
FUSIONS = {  # the fusions mmrag ships, by name: channel weights for weighted RRF
    "text+sparse": {"text": 1.0, "sparse": 1.0},
    "text+sparse+caption": {"text": 1.0, "sparse": 1.0, "caption": 1.0},
}
ALL_EQUAL = "all-equal"  # every available channel at weight 1


@dataclass(frozen=True)
class QueryResult:
    query_id: str
    tags: tuple[str, ...]
    latency_s: float
    scores: dict[str, dict[str, float]]  # configuration -> metric -> value
    top_units: dict[str, list[str]]  # configuration -> first retrieved units (for reading)
    retrieved: int = 0  # distinct hits over all configurations
    matched: int = 0  # of those, the hits on a dataset file


@dataclass
class EvalRun:
    dataset: Dataset
    settings: Settings
    collection: str
    configurations: dict[str, dict[str, float]]
    results: list[QueryResult] = field(default_factory=list)
    ingest: dict[str, Any] = field(default_factory=dict)
    answers: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # why the scores may mislead


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
    if settings.page_embedder.backend != "none":  # indexes without it keep their names
        parts += [settings.page_embedder.backend, settings.page_embedder.model]
    if settings.sparse != SparseSettings():  # so do indexes with the default BM25
        parts.append(settings.sparse)
    text = json.dumps(
        [p.model_dump() if hasattr(p, "model_dump") else p for p in parts],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def eval_settings(settings: Settings, dataset: Dataset) -> Settings:
    """The dataset gets its own collection and tenant, named by dataset and index settings
    (as the profile resolves them: the models that actually write vectors): re-runs reuse
    the index; a change to chunking or models builds a new one."""
    name = "".join(c if c.isalnum() else "-" for c in dataset.name)[:40]
    effective = resolve_profile(settings).settings
    collection = f"eval-{name}-{index_fingerprint(effective)}"
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
    unknown = set(weights) - set(channel_names())
    if not name or not spec or unknown:
        raise InvalidRequestError(
            f"configuration {text!r}: use NAME=channel:weight,... with channels from "
            f"{', '.join(channel_names())}"
        )
    return name, weights


def configurations(
    services: Services, extra: dict[str, dict[str, float]] | None = None
) -> dict[str, dict[str, float]]:
    """Each available channel alone, each shipped fusion, the configured default, and any
    ``extra`` weightings to try."""
    available = services.retriever.channels()
    chosen = {channel: {channel: 1.0} for channel in available}
    fusions = {**FUSIONS, ALL_EQUAL: dict.fromkeys(available, 1.0)}
    for name, weights in fusions.items():
        usable = {c: w for c, w in weights.items() if c in available}
        if len(usable) > 1 and usable not in chosen.values():  # e.g. all-equal = the above
            chosen[name] = usable
    chosen["default"] = services.retriever.weights()
    for name, weights in (extra or {}).items():
        chosen[name] = {c: w for c, w in weights.items() if c in available}
    return chosen


@dataclass(frozen=True)
class CorpusDocuments:
    """Which dataset file each ingested document is: hits are related to files by id.

    ``paths`` maps a document id to the file's path relative to the dataset root. Two
    corpus names linked to one file are one document (ingest identifies a file by its
    resolved path); the first name stands for it, and ``aliases`` maps the others to it.
    """

    paths: dict[str, str]
    aliases: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_submissions(
        cls, dataset: Dataset, submissions: Sequence[Submission]
    ) -> CorpusDocuments:
        """From what ingesting ``dataset.corpus`` returned, one submission per file in
        corpus order; a file that could not be submitted has no document."""
        if len(submissions) != len(dataset.corpus):
            raise ValueError(
                f"{len(submissions)} submissions for {len(dataset.corpus)} corpus files"
            )
        paths: dict[str, str] = {}
        aliases: dict[str, str] = {}
        for file, submission in zip(dataset.corpus, submissions, strict=True):
            if submission.record is None:
                continue
            name = file.relative_to(dataset.root).as_posix()
            first = paths.setdefault(submission.record.document_id, name)
            if first != name:
                aliases[name] = first
        return cls(paths, aliases)

    def path_of(self, hit: Hit) -> str | None:
        """The dataset path of the hit's document; None when it is not a dataset file."""
        return self.paths.get(hit.document_id)

    def canonical(self, path: str) -> str:
        """The name that stands for a dataset path (itself unless it is an alias)."""
        return self.aliases.get(path, path)


def units_for(
    query: Query, documents: CorpusDocuments
) -> tuple[Callable[[str, int], str], dict[str, int]]:
    """How a retrieved item (its path and page) is judged for this query, and the grade
    of each relevant unit (the highest, where several entries fall on one unit)."""
    by_page = not any(r.image for r in query.relevant) and all(
        r.page is not None for r in query.relevant
    )
    unit_of = _file_page if by_page else _whole_file
    grades: dict[str, int] = {}
    for relevant in query.relevant:
        unit = unit_of(documents.canonical(relevant.path), relevant.page or 0)
        grades[unit] = max(grades.get(unit, 0), relevant.grade)
    return unit_of, grades


def _whole_file(path: str, page: int) -> str:
    return path


def _file_page(path: str, page: int) -> str:
    return f"{path}#{page}"


def score_ranking(
    hits: list[Hit], query: Query, documents: CorpusDocuments
) -> tuple[dict[str, float], list[str]]:
    """Every metric at every k for one ranking, and its first units (for reading).

    A hit on a file outside the dataset is a miss, named by its source path."""
    unit_of, grades = units_for(query, documents)
    units: list[str] = []
    for hit in hits:
        unit = unit_of(documents.path_of(hit) or hit.source, hit.page)
        if unit not in units:
            units.append(unit)
    ranked = [unit if unit in grades else None for unit in units]
    scores = {f"recall@{k}": recall_at_k(ranked, grades, k) for k in CURVE_KS}
    for k in KS:
        scores[f"hit@{k}"] = hit_at_k(ranked, grades, k)
        scores[f"ndcg@{k}"] = ndcg_at_k(ranked, grades, k)
        scores[f"mrr@{k}"] = mrr_at_k(ranked, grades, k)
    return scores, units[:10]


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
    documents = CorpusDocuments.from_submissions(dataset, results)
    run.ingest = {
        "seconds": time.perf_counter() - started,
        "indexed": sum(r.outcome == "indexed" for r in results),
        "unchanged": sum(r.outcome == "unchanged" for r in results),
        "failed": [r.message for r in results if r.outcome == "failed"],
        "unfinished": [
            f"{r.source}: {r.outcome}"
            for r in results
            if r.outcome not in ("indexed", "unchanged", "failed")
        ],
        "points": built.store.count(),
    }
    queries = [q for q in dataset.queries if q.answerable and q.relevant][:limit]
    for query in queries:
        run.results.append(_evaluate(built, run.configurations, query, documents))
    if answers:
        from eval.answers import evaluate_answers

        run.answers = evaluate_answers(built, dataset, documents, limit=limit)
    run.warnings = run_warnings(run, documents)
    for warning in run.warnings:
        logger.warning(warning)
    if services is None:
        built.close()
    return run


def run_warnings(run: EvalRun, documents: CorpusDocuments) -> list[str]:
    """What makes the run's scores misleading: corpus files that failed to ingest, names
    linked to one file, and above all no hit at all on a dataset file (every score 0)."""
    warnings = []
    failed = len(run.ingest.get("failed", []))
    if failed:
        warnings.append(
            f"{failed} of {len(run.dataset.corpus)} corpus files failed to ingest "
            "(ingest.failed in report.json): questions about them cannot score"
        )
    unfinished = run.ingest.get("unfinished", [])
    if unfinished:
        warnings.append(
            f"{len(unfinished)} corpus files did not finish ingesting (ingest.unfinished in "
            "report.json): questions about them cannot score"
        )
    for alias, name in documents.aliases.items():
        warnings.append(f"{alias} is the same file as {name}: hits on it count as {name}")
    retrieved = sum(result.retrieved for result in run.results)
    if run.results and not retrieved:
        warnings.append(
            f"no hit for any of the {len(run.results)} questions (is collection "
            f"{run.collection} empty?): every score is 0"
        )
    elif run.results and not any(result.matched for result in run.results):
        warnings.append(
            f"none of the {retrieved} hits for {len(run.results)} questions is on a file "
            f"of the dataset's corpus ({len(documents.paths)} documents ingested): every "
            "score is 0"
        )
    return warnings


def _evaluate(
    services: Services,
    chosen: dict[str, dict[str, float]],
    query: Query,
    documents: CorpusDocuments,
) -> QueryResult:
    retrieval = services.settings.retrieval
    result = services.retriever.search(
        query.question, tenant=services.settings.ingest.tenant, limit=retrieval.candidates
    )
    scores, tops = {}, {}
    seen: dict[str, bool] = {}  # point id -> whether it is on a dataset file
    reranked: dict[str, float] = {}  # each hit is reranked once, whichever weighting
    for name, weights in chosen.items():
        rankings = {c: ranked for c, ranked in result.rankings.items() if c in weights}
        hits = services.retriever.rank(
            query.question, rankings, weights, retrieval.candidates, reranked
        )
        scores[name], tops[name] = score_ranking(hits, query, documents)
        seen.update((hit.point_id, documents.path_of(hit) is not None) for hit in hits)
    return QueryResult(
        query_id=query.id,
        tags=query.tags,
        latency_s=result.timings["total_s"],
        scores=scores,
        top_units=tops,
        retrieved=len(seen),
        matched=sum(seen.values()),
    )
