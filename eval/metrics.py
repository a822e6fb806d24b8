"""Retrieval metrics, latency percentiles and a paired bootstrap; pure functions.

Relevance is judged per retrieved item by the caller (a page, a document or an image
can match a relevant unit), so every ranking metric takes the ranking already mapped
onto relevant units:

``ranked_relevant_ids[i]`` is the id of the relevant unit that the i-th retrieved item
matches, or ``None`` when it matches none. ``relevant`` is the set of all relevant unit
ids of the question. Each relevant unit is credited once: a second retrieved item
matching an already-credited unit counts as a miss. Ids in the ranking that are not in
``relevant`` count as misses too.

An empty ``relevant`` raises `ValueError`: such questions (unanswerable ones) have no
retrieval target, and callers skip them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def _credited_ranks(ranked: Sequence[str | None], relevant: set[str], k: int) -> list[int]:
    """The 1-based ranks within the top k at which a not-yet-credited relevant unit appears."""
    if not relevant:
        raise ValueError("relevant is empty: the metric is undefined for a question without one")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    credited: set[str] = set()
    ranks: list[int] = []
    for position, unit in enumerate(ranked[:k], start=1):
        if unit is not None and unit in relevant and unit not in credited:
            credited.add(unit)
            ranks.append(position)
    return ranks


def recall_at_k(ranked_relevant_ids: Sequence[str | None], relevant: set[str], k: int) -> float:
    """Fraction of the relevant units found in the top ``k`` (each unit counted once)."""
    return len(_credited_ranks(ranked_relevant_ids, relevant, k)) / len(relevant)


def hit_at_k(ranked_relevant_ids: Sequence[str | None], relevant: set[str], k: int) -> float:
    """1.0 if any relevant unit appears in the top ``k``, else 0.0."""
    return 1.0 if _credited_ranks(ranked_relevant_ids, relevant, k) else 0.0


def mrr_at_k(ranked_relevant_ids: Sequence[str | None], relevant: set[str], k: int) -> float:
    """Reciprocal rank (1/rank, rank 1-based) of the first relevant unit in the top ``k``.

    0.0 when none appears in the top ``k``.
    """
    ranks = _credited_ranks(ranked_relevant_ids, relevant, k)
    return 1.0 / ranks[0] if ranks else 0.0


def ndcg_at_k(ranked_relevant_ids: Sequence[str | None], relevant: set[str], k: int) -> float:
    """Normalised discounted cumulative gain at ``k`` with binary gains.

    A relevant unit at rank r gains ``1 / log2(r + 1)`` the first time it appears; a
    repeat gains 0. The ideal ranking puts ``min(k, len(relevant))`` relevant units
    first, so the ideal DCG is the sum of ``1 / log2(r + 1)`` for r in 1..min(k, |relevant|).
    """
    ranks = _credited_ranks(ranked_relevant_ids, relevant, k)
    gained = sum(1.0 / math.log2(rank + 1) for rank in ranks)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(k, len(relevant)) + 1))
    return gained / ideal


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) with linear interpolation, like numpy's default.

    The sorted values sit at positions 0..n-1; the percentile lies at position
    ``(n - 1) * q / 100``, interpolated linearly between its two neighbours.
    """
    if not values:
        raise ValueError("percentile of an empty sequence")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"q must be within 0..100, got {q}")
    ordered = sorted(float(value) for value in values)
    position = (len(ordered) - 1) * q / 100.0
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    fraction = position - lower
    return ordered[lower] + (ordered[upper] - ordered[lower]) * fraction


@dataclass(frozen=True)
class BootstrapResult:
    """Outcome of `paired_bootstrap` for the per-query difference ``b - a``."""

    mean_difference: float
    low: float
    high: float
    p_value: float


_BLOCK_DRAWS = 4_000_000  # indices drawn per block, to bound memory on large query sets


def paired_bootstrap(
    a: Sequence[float],
    b: Sequence[float],
    *,
    resamples: int = 10000,
    confidence: float = 0.95,
    seed: int = 0,
) -> BootstrapResult:
    """Compare two systems' per-query scores with a paired percentile bootstrap.

    ``a[i]`` and ``b[i]`` are the two systems' scores on query i. The differences
    ``d[i] = b[i] - a[i]`` are resampled with replacement (``resamples`` times, n queries
    each, numpy's PCG64 generator seeded with ``seed``, so results are deterministic).

    - ``mean_difference``: the mean of ``d`` (positive means b scores higher).
    - ``low``/``high``: the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2``
      percentiles (linear interpolation) of the resampled means.
    - ``p_value``: two-sided. If the observed mean is positive it is
      ``2 * (share of resampled means <= 0)``; if negative,
      ``2 * (share of resampled means >= 0)``; if exactly zero, 1.0. Capped at 1.0. Its
      resolution is ``1 / resamples``: 0.0 means "below 2 / resamples".
    """
    if len(a) != len(b):
        raise ValueError(f"a and b must be paired: {len(a)} scores against {len(b)}")
    if not a:
        raise ValueError("paired_bootstrap needs at least one query")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence}")
    differences = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    means = _resampled_means(differences, resamples, seed)
    observed = float(differences.mean())
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = (float(value) for value in np.percentile(means, [tail, 100.0 - tail]))
    if observed > 0:
        p_value = 2.0 * float(np.mean(means <= 0.0))
    elif observed < 0:
        p_value = 2.0 * float(np.mean(means >= 0.0))
    else:
        p_value = 1.0
    return BootstrapResult(observed, low, high, min(1.0, p_value))


def _resampled_means(differences: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """Means of ``resamples`` with-replacement resamples of ``differences``."""
    generator = np.random.default_rng(seed)
    count = len(differences)
    block = max(1, _BLOCK_DRAWS // count)
    parts = []
    for start in range(0, resamples, block):
        size = min(block, resamples - start)
        indices = generator.integers(0, count, size=(size, count))
        parts.append(differences[indices].mean(axis=1))
    return np.concatenate(parts)


def summarize(per_query: list[dict[str, float]]) -> dict[str, float]:
    """Average each metric over the queries that report it.

    Keys keep the order in which they first appear. An empty list gives an empty dict.
    """
    totals: dict[str, float] = {}
    counts: dict[str, int] = {}
    for scores in per_query:
        for name, value in scores.items():
            totals[name] = totals.get(name, 0.0) + float(value)
            counts[name] = counts.get(name, 0) + 1
    return {name: totals[name] / counts[name] for name in totals}
