"""Fusing ranked lists from several channels: pure functions, new objects out.

A point's fused score is a weighted sum over the channels that returned it, of one of:

- ``rrf`` (reciprocal-rank fusion): a point ranked r (1-based) earns w / (k + r). Only
  ranks count, so a channel's near-ties and clear winners weigh the same.
- ``dbsf`` (distribution-based score fusion, as Qdrant names it): each channel's raw
  scores are scaled by that channel's own candidates, from their mean minus three
  standard deviations (0) to the mean plus three (1), clipped, then weighted. Cosine
  similarities of MiniLM, BM25 sums and MaxSim totals live on unrelated scales; scaling
  each by its own spread makes them comparable while keeping how far a hit stands out.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from mmrag.settings import FusionMethod
from mmrag.store import ScoredPoint
from mmrag.types import ChannelScore

# A point's fused score from its per-channel ranks and raw scores.
Scorer = Callable[[Mapping[str, ChannelScore]], float]
SPREAD = 3.0  # dbsf: standard deviations either side of a channel's mean


@dataclass(frozen=True)
class Fused:
    point_id: str
    score: float
    payload: dict
    channels: dict[str, ChannelScore] = field(default_factory=dict)


def rank_scorer(weights: Mapping[str, float], k: int = 60) -> Scorer:
    """Reciprocal-rank fusion: sum of weight / (k + rank)."""

    def score(channels: Mapping[str, ChannelScore]) -> float:
        return sum(weights.get(name, 1.0) / (k + c.rank) for name, c in channels.items())

    return score


def distribution_scorer(
    rankings: Mapping[str, Sequence[ScoredPoint]], weights: Mapping[str, float]
) -> Scorer:
    """Distribution-based score fusion over these rankings' candidates: each channel's
    scores scaled from mean - 3 sd (0) to mean + 3 sd (1), clipped, weighted, summed. A
    channel whose candidates all score alike gives each of them 0.5."""
    ranges: dict[str, tuple[float, float]] = {}
    for name, ranked in rankings.items():
        if ranked:
            values = [point.score for point in ranked]
            mean, deviation = statistics.fmean(values), statistics.pstdev(values)
            ranges[name] = (mean - SPREAD * deviation, 2 * SPREAD * deviation)

    def scaled(name: str, value: float) -> float:
        low, width = ranges.get(name, (value, 0.0))
        if width <= 1e-12:
            return 0.5
        return min(1.0, max(0.0, (value - low) / width))

    def score(channels: Mapping[str, ChannelScore]) -> float:
        return sum(weights.get(name, 1.0) * scaled(name, c.score) for name, c in channels.items())

    return score


def scorer_for(
    method: FusionMethod,
    rankings: Mapping[str, Sequence[ScoredPoint]],
    weights: Mapping[str, float],
    k: int = 60,
) -> Scorer:
    """The scorer of fusion ``method`` for one query's rankings."""
    if method == "dbsf":
        return distribution_scorer(rankings, weights)
    return rank_scorer(weights, k)


def fuse_rankings(rankings: Mapping[str, Sequence[ScoredPoint]], scorer: Scorer) -> list[Fused]:
    """Fuse per-channel rankings; ties are broken by the best single-channel rank."""
    payloads: dict[str, dict] = {}
    channels: dict[str, dict[str, ChannelScore]] = {}
    for channel, ranked in rankings.items():
        for rank, point in enumerate(ranked, start=1):
            payloads.setdefault(point.point_id, point.payload)
            channels.setdefault(point.point_id, {})[channel] = ChannelScore(rank, point.score)
    scores = {point_id: scorer(found) for point_id, found in channels.items()}

    def order(point_id: str) -> tuple[float, int]:
        best_rank = min(score.rank for score in channels[point_id].values())
        return (-scores[point_id], best_rank)

    return [
        Fused(point_id, scores[point_id], payloads[point_id], channels[point_id])
        for point_id in sorted(scores, key=order)
    ]


def _one_per_vector(
    channels: dict[str, ChannelScore], vectors: Mapping[str, str]
) -> dict[str, ChannelScore]:
    """Of channels that search the same vector, only the best-ranked one counts."""
    best: dict[str, str] = {}
    for name, score in channels.items():
        vector = vectors.get(name, name)
        if vector not in best or score.rank < channels[best[vector]].rank:
            best[vector] = name
    return {name: channels[name] for name in best.values()}


def _inside(inner: Sequence[float], outer: Sequence[float], slack: float = 2.0) -> bool:
    return (
        inner[0] >= outer[0] - slack
        and inner[1] >= outer[1] - slack
        and inner[2] <= outer[2] + slack
        and inner[3] <= outer[3] + slack
    )


def merge_regions(
    fused: Sequence[Fused], scorer: Scorer, vectors: Mapping[str, str] | None = None
) -> list[Fused]:
    """Fold text hits lying inside an image's box (OCR lines of a picture, labels of a
    figure) into that image's hit: one region, one hit. Per channel the better rank
    counts, and channels searching the same named vector (``vectors``: channel -> vector;
    ``text`` and ``caption`` share the dense text vector) count as one, so a region is not
    credited twice for the same evidence. The region is rescored by ``scorer``.

    The region keeps the folded text: its hit's text is the image's own text followed by
    the text of every hit folded into it, so a page whose text lies on a full-page photo
    still answers with that text.

    Page renders are not merge targets: their text chunks keep their own boxes.
    """
    vectors = vectors or {}
    images = [f for f in fused if f.payload.get("kind") == "image" and f.payload.get("bbox")]
    merged: dict[str, Fused] = {f.point_id: f for f in fused}
    for item in fused:
        box = item.payload.get("bbox")
        if item.payload.get("kind") not in ("text", "table") or not box:
            continue
        target = next(
            (
                image
                for image in images
                if image.payload["document_id"] == item.payload["document_id"]
                and image.payload.get("page") == item.payload.get("page")
                and _inside(box, image.payload["bbox"])
            ),
            None,
        )
        if target is None:
            continue
        current = merged[target.point_id]
        channels = dict(current.channels)
        for name, ranked in item.channels.items():
            if name not in channels or ranked.rank < channels[name].rank:
                channels[name] = ranked
        channels = _one_per_vector(channels, vectors)
        fused_score = scorer(channels)
        own = current.payload.get("text") or ""
        text = f"{own}\n{item.payload.get('text') or ''}".strip()
        payload = {**current.payload, "text": text}
        merged[target.point_id] = Fused(current.point_id, fused_score, payload, channels)
        del merged[item.point_id]
    return sorted(merged.values(), key=lambda f: -f.score)


def pool_pages(fused: Sequence[Fused], share: float) -> list[Fused]:
    """Let a page's elements lend each other evidence: each hit's score gains ``share``
    times the summed fused scores of the other hits on its page (same document, same
    page), so a page matched by several chunks, a table and a figure outranks a page with
    one lucky chunk. ``share`` 0 leaves the ranking as it is."""
    if share <= 0:
        return list(fused)
    totals: dict[tuple[str, int], float] = {}
    for item in fused:
        key = (item.payload["document_id"], int(item.payload.get("page", 1)))
        totals[key] = totals.get(key, 0.0) + item.score
    pooled = [
        replace(
            item,
            score=item.score
            + share
            * (
                totals[(item.payload["document_id"], int(item.payload.get("page", 1)))] - item.score
            ),
        )
        for item in fused
    ]
    return sorted(pooled, key=lambda item: -item.score)
