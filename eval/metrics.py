"""Retrieval metrics, latency percentiles and a paired bootstrap; pure functions.

Relevance is judged per retrieved item by the caller (a page, a document or an image
can match a relevant unit), so every ranking metric takes the ranking already mapped
onto relevant units:

``ranked_relevant_ids[i]`` is the id of the relevant unit that the i-th retrieved item
matches, or ``None`` when it matches none. ``relevant`` holds the relevant unit ids of
the question: a set, or a mapping from each id to its graded relevance (a positive
number; a set means grade 1 for every unit). Each relevant unit is credited once: a
second retrieved item matching an already-credited unit counts as a miss. Ids in the
ranking that are not in ``relevant`` count as misses too.

Recall, Hit and MRR are binary: any relevant unit counts, whatever its grade. nDCG uses
the grades as gains, as trec_eval's ``ndcg_cut`` does (so BEIR numbers computed with
pytrec_eval are comparable): a unit not judged relevant, or judged 0, gains nothing and
stays out of ``relevant``.

An empty ``relevant`` raises `ValueError`: such questions (unanswerable ones) have no
retrieval target, and callers skip them.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np


def _credited(
    ranked: Sequence[str | None], relevant: Collection[str], k: int
) -> list[tuple[int, str]]:
    """(1-based rank, unit) within the top k wherever a not-yet-credited relevant unit
    appears, in rank order."""
    if not relevant:
        raise ValueError("relevant is empty: the metric is undefined for a question without one")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    credited: dict[str, int] = {}
    for position, unit in enumerate(ranked[:k], start=1):
        if unit is not None and unit in relevant and unit not in credited:
            credited[unit] = position
    return [(position, unit) for unit, position in credited.items()]


def recall_at_k(
    ranked_relevant_ids: Sequence[str | None], relevant: Collection[str], k: int
) -> float:
    """Fraction of the relevant units found in the top ``k`` (each unit counted once)."""
    return len(_credited(ranked_relevant_ids, relevant, k)) / len(relevant)


def hit_at_k(ranked_relevant_ids: Sequence[str | None], relevant: Collection[str], k: int) -> float:
    """1.0 if any relevant unit appears in the top ``k``, else 0.0."""
    return 1.0 if _credited(ranked_relevant_ids, relevant, k) else 0.0


def mrr_at_k(ranked_relevant_ids: Sequence[str | None], relevant: Collection[str], k: int) -> float:
    """Reciprocal rank (1/rank, rank 1-based) of the first relevant unit in the top ``k``.

    0.0 when none appears in the top ``k``.
    """
    credited = _credited(ranked_relevant_ids, relevant, k)
    return 1.0 / credited[0][0] if credited else 0.0


def ndcg_at_k(
    ranked_relevant_ids: Sequence[str | None],
    relevant: Mapping[str, float] | Collection[str],
    k: int,
) -> float:
    """Normalised discounted cumulative gain at ``k`` with graded gains (trec_eval's).

    A relevant unit of grade g at rank r gains ``g / log2(r + 1)`` the first time it
    appears (linear gain); a repeat gains 0. The ideal DCG puts the grades in descending
    order at ranks 1.. and sums the first ``k`` the same way. With a set, or all grades
    1, this is binary nDCG. A grade that is not positive raises `ValueError`: leave a
    unit judged not relevant out of ``relevant``.
    """
    grades = _grades(relevant)
    credited = _credited(ranked_relevant_ids, grades, k)
    gained = sum(grades[unit] / math.log2(rank + 1) for rank, unit in credited)
    best = sorted(grades.values(), reverse=True)[:k]
    ideal = sum(grade / math.log2(rank + 1) for rank, grade in enumerate(best, start=1))
    return gained / ideal


def _grades(relevant: Mapping[str, float] | Collection[str]) -> dict[str, float]:
    """Each relevant unit's grade: the mapping's values, or 1 for each unit of a set."""
    if not isinstance(relevant, Mapping):
        return dict.fromkeys(relevant, 1.0)
    grades = {unit: float(grade) for unit, grade in relevant.items()}
    for unit, grade in grades.items():
        if not grade > 0:  # also catches NaN
            raise ValueError(f"relevant unit {unit!r} has grade {grade}: grades must be > 0")
    return grades


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
