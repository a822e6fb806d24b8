"""Hand-computed cases for the retrieval metrics, percentiles and the paired bootstrap."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence

import numpy as np
import pytest

from eval.metrics import (
    BootstrapResult,
    hit_at_k,
    mrr_at_k,
    ndcg_at_k,
    paired_bootstrap,
    percentile,
    recall_at_k,
    summarize,
)

KS = (1, 5, 10)
Metric = Callable[[Sequence[str | None], Collection[str], int], float]
METRICS: list[Metric] = [recall_at_k, hit_at_k, ndcg_at_k, mrr_at_k]

# Two relevant units, found at ranks 2 and 4.
TWO_AT_2_AND_4 = [None, "a", None, "b", None, None, None, None, None, None]
# Three relevant units, "a" at rank 1 and "b" at rank 7; "c" never retrieved.
THREE_AT_1_AND_7 = ["a", None, None, None, None, None, "b", None, None, None]
# "a" retrieved three times (ranks 1, 2, 5), "b" at rank 3: repeats gain nothing.
DUPLICATES = ["a", "a", "b", None, "a", None, None, None, None, None]


def log2(value: float) -> float:
    return math.log2(value)


@pytest.mark.parametrize(
    ("k", "expected"),
    [
        (1, 0.0),  # rank 1 is a miss: 0 of 2
        (5, 1.0),  # ranks 2 and 4: 2 of 2
        (10, 1.0),
    ],
)
def test_recall_two_relevant_at_ranks_2_and_4(k: int, expected: float) -> None:
    assert recall_at_k(TWO_AT_2_AND_4, {"a", "b"}, k) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("k", "expected"),
    [
        (1, 1 / 3),  # "a" at rank 1: 1 of 3
        (5, 1 / 3),  # still only "a"
        (10, 2 / 3),  # "a" and "b" (rank 7): 2 of 3
    ],
)
def test_recall_three_relevant(k: int, expected: float) -> None:
    assert recall_at_k(THREE_AT_1_AND_7, {"a", "b", "c"}, k) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("ranked", "relevant", "k", "expected"),
    [
        (TWO_AT_2_AND_4, {"a", "b"}, 1, 0.0),
        (TWO_AT_2_AND_4, {"a", "b"}, 5, 1.0),
        (TWO_AT_2_AND_4, {"a", "b"}, 10, 1.0),
        (THREE_AT_1_AND_7, {"a", "b", "c"}, 1, 1.0),
        (THREE_AT_1_AND_7, {"a", "b", "c"}, 5, 1.0),
        (THREE_AT_1_AND_7, {"a", "b", "c"}, 10, 1.0),
        ([None] * 10, {"a"}, 10, 0.0),
    ],
)
def test_hit(ranked: list[str | None], relevant: set[str], k: int, expected: float) -> None:
    assert hit_at_k(ranked, relevant, k) == expected


@pytest.mark.parametrize(
    ("ranked", "relevant", "k", "expected"),
    [
        (TWO_AT_2_AND_4, {"a", "b"}, 1, 0.0),  # first relevant at rank 2 > k
        (TWO_AT_2_AND_4, {"a", "b"}, 5, 1 / 2),  # first relevant at rank 2
        (TWO_AT_2_AND_4, {"a", "b"}, 10, 1 / 2),
        (THREE_AT_1_AND_7, {"a", "b", "c"}, 1, 1.0),  # rank 1
        (THREE_AT_1_AND_7, {"a", "b", "c"}, 5, 1.0),
        (THREE_AT_1_AND_7, {"a", "b", "c"}, 10, 1.0),
        ([None, None, None, None, None, None, "z"], {"z"}, 5, 0.0),  # rank 7 > 5
        ([None, None, None, None, None, None, "z"], {"z"}, 10, 1 / 7),
    ],
)
def test_mrr(ranked: list[str | None], relevant: set[str], k: int, expected: float) -> None:
    assert mrr_at_k(ranked, relevant, k) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("k", "expected"),
    [
        # ideal DCG@1 = 1 (one of two relevant fits); DCG@1 = 0 (rank 1 is a miss)
        (1, 0.0),
        # DCG = 1/log2(2+1) + 1/log2(4+1); ideal = min(5, 2) = 2 ones: 1/log2(2) + 1/log2(3)
        (5, (1 / log2(3) + 1 / log2(5)) / (1 + 1 / log2(3))),
        (10, (1 / log2(3) + 1 / log2(5)) / (1 + 1 / log2(3))),
    ],
)
def test_ndcg_two_relevant_at_ranks_2_and_4(k: int, expected: float) -> None:
    assert ndcg_at_k(TWO_AT_2_AND_4, {"a", "b"}, k) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("k", "expected"),
    [
        # DCG@1 = 1/log2(2) = 1; ideal@1 = 1
        (1, 1.0),
        # DCG@5 = 1; ideal = 3 ones at ranks 1..3 = 1 + 1/log2(3) + 1/log2(4)
        (5, 1 / (1 + 1 / log2(3) + 1 / log2(4))),
        # DCG@10 = 1 + 1/log2(7+1) = 1 + 1/3; same ideal (min(10, 3) = 3 ones)
        (10, (1 + 1 / 3) / (1 + 1 / log2(3) + 1 / log2(4))),
    ],
)
def test_ndcg_three_relevant(k: int, expected: float) -> None:
    assert ndcg_at_k(THREE_AT_1_AND_7, {"a", "b", "c"}, k) == pytest.approx(expected)


def test_ndcg_ideal_is_capped_at_k() -> None:
    # 12 relevant units, the top 10 all relevant and distinct: ideal = 10 ones, so nDCG = 1.
    relevant = {f"u{index}" for index in range(12)}
    ranked: list[str | None] = [f"u{index}" for index in range(10)]
    assert ndcg_at_k(ranked, relevant, 10) == pytest.approx(1.0)
    assert recall_at_k(ranked, relevant, 10) == pytest.approx(10 / 12)


# Graded: "a" grade 2 at rank 2, "b" grade 1 at rank 1, "c" grade 3 never retrieved.
GRADED_RANKING = ["b", "a", None, None, None, None, None, None, None, None]
GRADES = {"a": 2, "b": 1, "c": 3}


@pytest.mark.parametrize(
    ("k", "expected"),
    [
        # DCG@1 = 1/log2(2) = 1 ("b"); ideal@1 = the highest grade first: 3
        (1, 1 / 3),
        # DCG@5 = 1 + 2/log2(3); ideal = grades 3, 2, 1 at ranks 1..3: 3 + 2/log2(3) + 1/2
        (5, (1 + 2 / log2(3)) / (3 + 2 / log2(3) + 1 / 2)),
        (10, (1 + 2 / log2(3)) / (3 + 2 / log2(3) + 1 / 2)),
    ],
)
def test_ndcg_graded(k: int, expected: float) -> None:
    assert ndcg_at_k(GRADED_RANKING, GRADES, k) == pytest.approx(expected)


def test_ndcg_graded_ideal_order_scores_one() -> None:
    assert ndcg_at_k(["c", "a", "b"], GRADES, 3) == pytest.approx(1.0)
    # the same units with the grades 3 and 1 swapped: 1 + 2/log2(3) + 3/2 of the ideal
    swapped = (1 + 2 / log2(3) + 3 / 2) / (3 + 2 / log2(3) + 1 / 2)
    assert ndcg_at_k(["b", "a", "c"], GRADES, 3) == pytest.approx(swapped)


def test_grades_of_one_are_binary_ndcg() -> None:
    ones = dict.fromkeys(["a", "b", "c"], 1)
    for k in (1, 5, 10):
        assert ndcg_at_k(THREE_AT_1_AND_7, ones, k) == ndcg_at_k(THREE_AT_1_AND_7, set(ones), k)


@pytest.mark.parametrize("metric", [recall_at_k, hit_at_k, mrr_at_k])
def test_binary_metrics_ignore_grades(metric: Metric) -> None:
    ones = dict.fromkeys(GRADES, 1)
    for k in (1, 2, 10):
        assert metric(GRADED_RANKING, GRADES, k) == metric(GRADED_RANKING, ones, k)
    assert recall_at_k(GRADED_RANKING, GRADES, 2) == pytest.approx(2 / 3)


@pytest.mark.parametrize("grade", [0, -1, float("nan")])
def test_ndcg_rejects_grades_that_are_not_positive(grade: float) -> None:
    with pytest.raises(ValueError, match="grades must be > 0"):
        ndcg_at_k(["a"], {"a": 1, "b": grade}, 5)


def random_judged_ranking(rng: np.random.Generator) -> tuple[list[str], dict[str, int]]:
    """A ranking of distinct documents and graded judgements 0..3 (at least one > 0)."""
    pool = [f"d{index}" for index in range(30)]
    judged = [str(doc) for doc in rng.choice(pool, size=int(rng.integers(1, 12)), replace=False)]
    grades = {doc: int(rng.integers(0, 4)) for doc in judged}
    grades[judged[0]] = max(grades[judged[0]], 1)
    ranking = [str(doc) for doc in rng.permutation(pool)[: int(rng.integers(1, 25))]]
    return ranking, grades


def test_ndcg_matches_trec_eval_on_random_graded_rankings() -> None:
    """Against trec_eval's ndcg_cut through pytrec_eval (what BEIR reports), grade-0
    judgements included on its side and left out on ours, as the loaders do."""
    ir_measures = pytest.importorskip("ir_measures")
    rng = np.random.default_rng(2024)
    qrels, run, ours = [], [], {}
    for number in range(200):
        query = f"q{number}"
        ranking, grades = random_judged_ranking(rng)
        qrels += [ir_measures.Qrel(query, doc, grade) for doc, grade in grades.items()]
        run += [ir_measures.ScoredDoc(query, doc, 100.0 - r) for r, doc in enumerate(ranking)]
        ours[query] = (ranking, {doc: grade for doc, grade in grades.items() if grade > 0})
    checked, graded_differs = 0, 0
    measures = [ir_measures.nDCG @ k for k in KS]
    for metric in ir_measures.pytrec_eval.iter_calc(measures, qrels, run):
        ranking, relevant = ours[metric.query_id]
        ranked = [doc if doc in relevant else None for doc in ranking]
        k = metric.measure["cutoff"]
        assert ndcg_at_k(ranked, relevant, k) == pytest.approx(metric.value)
        checked += 1
        graded_differs += ndcg_at_k(ranked, set(relevant), k) != pytest.approx(metric.value)
    assert checked == 200 * len(KS)
    assert graded_differs > 100  # binary gains would not have matched


@pytest.mark.parametrize(
    ("metric", "k", "expected"),
    [
        (recall_at_k, 1, 1 / 2),  # "a"
        (recall_at_k, 2, 1 / 2),  # "a", "a" again: still 1 of 2, not 2 of 2
        (recall_at_k, 5, 1.0),  # "a", "b": 2 of 2, not 4 of 2
        (recall_at_k, 10, 1.0),
        (hit_at_k, 1, 1.0),
        (mrr_at_k, 5, 1.0),
        (ndcg_at_k, 1, 1.0),
        # gains: rank 1 "a" = 1, rank 2 repeat = 0, rank 3 "b" = 1/log2(4), rank 5 repeat = 0
        # ideal = 1 + 1/log2(3)
        (ndcg_at_k, 5, (1 + 1 / log2(4)) / (1 + 1 / log2(3))),
        (ndcg_at_k, 10, (1 + 1 / log2(4)) / (1 + 1 / log2(3))),
    ],
)
def test_duplicates_count_once(metric: Metric, k: int, expected: float) -> None:
    assert metric(DUPLICATES, {"a", "b"}, k) == pytest.approx(expected)


def test_ids_outside_relevant_are_misses() -> None:
    ranked = ["x", "a"]
    assert recall_at_k(ranked, {"a"}, 1) == 0.0
    assert mrr_at_k(ranked, {"a"}, 5) == pytest.approx(1 / 2)


def test_ranking_shorter_than_k() -> None:
    # "a" at rank 1 of a 2-item ranking; ideal@10 with one relevant = 1
    assert ndcg_at_k(["a", None], {"a"}, 10) == pytest.approx(1.0)
    assert recall_at_k([], {"a"}, 10) == 0.0


@pytest.mark.parametrize("metric", METRICS)
def test_empty_relevant_raises(metric: Metric) -> None:
    with pytest.raises(ValueError, match="relevant is empty"):
        metric(["a"], set(), 5)


@pytest.mark.parametrize("metric", METRICS)
def test_k_below_one_raises(metric: Metric) -> None:
    with pytest.raises(ValueError, match="k must be"):
        metric(["a"], {"a"}, 0)


@pytest.mark.parametrize(
    "values",
    [
        [42.0],
        [3.0, 1.0, 2.0],
        [0.12, 0.5, 0.07, 1.9, 0.33, 0.41, 2.5, 0.09],
        list(np.random.default_rng(7).exponential(0.2, size=101)),
    ],
)
@pytest.mark.parametrize("q", [0, 5, 25, 50, 90, 95, 99, 100])
def test_percentile_matches_numpy(values: list[float], q: float) -> None:
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_by_hand() -> None:
    # sorted [10, 20, 30, 40]; p50 sits at position 3 * 0.5 = 1.5: 20 + 0.5 * (30 - 20)
    assert percentile([40, 10, 30, 20], 50) == pytest.approx(25.0)
    # p95 at position 3 * 0.95 = 2.85: 30 + 0.85 * 10
    assert percentile([40, 10, 30, 20], 95) == pytest.approx(38.5)


def test_percentile_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="empty"):
        percentile([], 50)
    with pytest.raises(ValueError, match="q must be"):
        percentile([1.0], 101)


SCORES = [0.2, 0.9, 0.5, 0.0, 1.0, 0.4, 0.7, 0.3, 0.6, 0.8, 0.1, 0.5]


def test_bootstrap_identical_systems() -> None:
    result = paired_bootstrap(SCORES, SCORES, resamples=2000)
    assert result == BootstrapResult(mean_difference=0.0, low=0.0, high=0.0, p_value=1.0)
    assert result.low <= 0.0 <= result.high


def test_bootstrap_b_better_on_every_query() -> None:
    better = [score + 0.05 + 0.01 * index for index, score in enumerate(SCORES)]
    result = paired_bootstrap(SCORES, better, resamples=2000)
    assert result.mean_difference == pytest.approx(0.05 + 0.01 * 5.5)
    assert 0.0 < result.low <= result.mean_difference <= result.high
    # every resampled mean is positive, so none lies on the other side of zero
    assert result.p_value == 0.0


def test_bootstrap_b_worse_is_negative_and_symmetric() -> None:
    rng = np.random.default_rng(3)
    a = list(rng.uniform(size=40))
    b = list(np.clip(np.asarray(a) + rng.normal(-0.02, 0.2, size=40), 0, 1))
    forward = paired_bootstrap(a, b, resamples=3000, seed=5)
    backward = paired_bootstrap(b, a, resamples=3000, seed=5)
    assert forward.mean_difference == pytest.approx(-backward.mean_difference)
    assert forward.low == pytest.approx(-backward.high)
    assert forward.p_value == pytest.approx(backward.p_value)
    assert 0.0 < forward.p_value <= 1.0
    assert forward.low < forward.mean_difference < forward.high


def test_bootstrap_is_deterministic_with_its_seed() -> None:
    rng = np.random.default_rng(11)
    a, b = list(rng.uniform(size=30)), list(rng.uniform(size=30))
    first = paired_bootstrap(a, b, resamples=1000, seed=1)
    assert paired_bootstrap(a, b, resamples=1000, seed=1) == first
    other = paired_bootstrap(a, b, resamples=1000, seed=2)
    assert (other.low, other.high) != (first.low, first.high)
    assert other.mean_difference == first.mean_difference


def test_bootstrap_wider_confidence_gives_wider_interval() -> None:
    rng = np.random.default_rng(13)
    a, b = list(rng.uniform(size=25)), list(rng.uniform(size=25))
    narrow = paired_bootstrap(a, b, resamples=2000, confidence=0.8)
    wide = paired_bootstrap(a, b, resamples=2000, confidence=0.99)
    assert wide.low < narrow.low and narrow.high < wide.high


@pytest.mark.parametrize(
    ("a", "b", "options", "message"),
    [
        ([1.0], [1.0, 2.0], {}, "paired"),
        ([], [], {}, "at least one"),
        ([1.0], [1.0], {"resamples": 0}, "resamples"),
        ([1.0], [1.0], {"confidence": 1.0}, "confidence"),
    ],
)
def test_bootstrap_rejects_bad_input(
    a: list[float], b: list[float], options: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        paired_bootstrap(a, b, **options)  # type: ignore[arg-type]


def test_summarize_averages_each_key() -> None:
    per_query = [
        {"recall@5": 1.0, "ndcg@5": 0.5},
        {"recall@5": 0.0, "ndcg@5": 1.0},
        {"recall@5": 0.5, "ndcg@5": 0.0, "latency_ms": 12.0},
    ]
    summary = summarize(per_query)
    assert list(summary) == ["recall@5", "ndcg@5", "latency_ms"]
    assert summary["recall@5"] == pytest.approx(0.5)  # (1 + 0 + 0.5) / 3
    assert summary["ndcg@5"] == pytest.approx(0.5)  # (0.5 + 1 + 0) / 3
    assert summary["latency_ms"] == pytest.approx(12.0)  # only the query that reports it
    assert summarize([]) == {}
