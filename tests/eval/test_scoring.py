"""How the harness relates hits to dataset files (by document id) and scores them, on
hand-built hits and on a small dataset whose documents are links to files elsewhere."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from eval.datasets import Dataset, Query, Relevant, load_mmrag_dataset
from eval.report import build_report, markdown, write_report
from eval.runner import CorpusDocuments, EvalRun, eval_settings, run_eval, score_ranking
from mmrag.services import Services, build_services
from mmrag.settings import Settings
from mmrag.testing import FakeCaptioner, FakeImageEmbedder, FakeTextEmbedder
from mmrag.types import ElementKind, Hit

ELSEWHERE = "/data/elsewhere"  # where a linked corpus file really lies
DOCUMENTS = CorpusDocuments(
    paths={"id-a": "docs/a.md", "id-b": "docs/b.md", "id-c": "docs/c.md"},
    aliases={"docs/also-a.md": "docs/a.md"},
)


def hit(document_id: str, page: int = 1, name: str = "") -> Hit:
    source = f"{ELSEWHERE}/{name or document_id}.md"  # never under the dataset root
    return Hit(f"{document_id}-{page}", 1.0, document_id, source, page, ElementKind.TEXT, "")


def question(*relevant: Relevant) -> Query:
    return Query("q", "which?", None, True, relevant)


def test_hits_are_matched_by_document_id_not_source_path() -> None:
    hits = [hit("id-x"), hit("id-b"), hit("id-a")]
    scores, units = score_ranking(hits, question(Relevant(doc="docs/a.md")), DOCUMENTS)
    assert units == [f"{ELSEWHERE}/id-x.md", "docs/b.md", "docs/a.md"]  # unknown: its source
    assert (scores["recall@2"], scores["recall@3"], scores["mrr@10"]) == (0.0, 1.0, 1 / 3)


def test_page_units_and_graded_ndcg() -> None:
    query = question(Relevant(doc="docs/a.md", page=2, grade=2), Relevant(doc="docs/b.md", page=1))
    hits = [hit("id-b", 1), hit("id-b", 1), hit("id-a", 1), hit("id-a", 2)]
    scores, units = score_ranking(hits, query, DOCUMENTS)
    assert units == ["docs/b.md#1", "docs/a.md#1", "docs/a.md#2"]  # repeats collapsed
    ideal = 2 + 1 / math.log2(3)  # grade 2, then grade 1
    assert scores["ndcg@10"] == pytest.approx((1 + 2 / math.log2(4)) / ideal)
    assert scores["recall@10"] == 1.0 and scores["hit@1"] == 1.0  # binary, whatever the grade


def test_an_alias_counts_as_the_file_it_names() -> None:
    query = question(Relevant(doc="docs/also-a.md"), Relevant(doc="docs/a.md", page=3, grade=3))
    scores, units = score_ranking([hit("id-a", 5)], query, DOCUMENTS)
    assert units == ["docs/a.md"]  # a document-level entry: whole files are the units
    assert scores["recall@1"] == 1.0 and scores["ndcg@1"] == 1.0


@pytest.fixture(scope="module")
def linked_dataset(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    """Every corpus file is a link to a file outside the dataset folder."""
    base = tmp_path_factory.mktemp("linked")
    texts = {
        "zephyr.md": "# Zephyr turbine\n\nThe Zephyr turbine produces twelve megawatts.\n",
        "juniper.txt": "The Juniper library holds four thousand maps of coastlines.\n",
        "bridge.md": "# Periwinkle bridge\n\nThe Periwinkle bridge is 800 metres long.\n",
    }
    (base / "elsewhere").mkdir()
    (base / "dataset" / "docs").mkdir(parents=True)
    for name, text in texts.items():
        (base / "elsewhere" / name).write_text(text)
        (base / "dataset" / "docs" / name).symlink_to(base / "elsewhere" / name)
    queries = [
        ("q1", "How many megawatts does the Zephyr turbine produce?", "zephyr.md"),
        ("q2", "How many maps does the Juniper library hold?", "juniper.txt"),
        ("q3", "How long is the Periwinkle bridge?", "bridge.md"),
    ]
    lines = [
        {"id": qid, "question": text, "relevant": [{"doc": f"docs/{name}", "grade": 2}]}
        for qid, text, name in queries
    ]
    (base / "dataset" / "queries.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return load_mmrag_dataset(base / "dataset")


def fake_services(dataset: Dataset, data_dir: Path) -> Services:
    settings = Settings(data_dir=data_dir, profile="offline")
    parsing = settings.parsing.model_copy(update={"isolate": False})  # no parser process
    return build_services(
        eval_settings(settings.model_copy(update={"parsing": parsing}), dataset),
        text_embedder=FakeTextEmbedder(),
        image_embedder=FakeImageEmbedder(),
        captioner=FakeCaptioner(),
    )


@pytest.fixture(scope="module")
def linked_services(
    linked_dataset: Dataset, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Services]:
    with fake_services(linked_dataset, tmp_path_factory.mktemp("data")) as services:
        yield services


def test_linked_corpus_scores(linked_dataset: Dataset, linked_services: Services) -> None:
    run = run_eval(linked_dataset, linked_services.settings, services=linked_services)
    assert run.ingest["failed"] == [] and run.warnings == []
    report = build_report(run)
    assert report["overall"]["default"]["recall@10"] == 1.0
    assert report["overall"]["default"]["ndcg@10"] > 0.5
    for result in run.results:
        assert all(unit.startswith("docs/") for unit in result.top_units["default"])
        assert 0 < result.matched <= result.retrieved
    assert report["warnings"] == [] and "## Warnings" not in markdown(report)


def test_no_hit_on_a_dataset_file_is_a_warning(
    linked_dataset: Dataset,
    linked_services: Services,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # as before hits were related by id: not one of them is recognised as a dataset file
    unrelated = classmethod(lambda cls, dataset, submissions: cls({}))
    monkeypatch.setattr(CorpusDocuments, "from_submissions", unrelated)
    with caplog.at_level(logging.WARNING, logger="eval.runner"):
        run = run_eval(linked_dataset, linked_services.settings, services=linked_services)
    assert [r.scores["default"]["recall@10"] for r in run.results] == [0.0, 0.0, 0.0]
    assert len(run.warnings) == 1 and "none of the" in run.warnings[0]
    assert "every score is 0" in run.warnings[0]
    assert run.warnings[0] in caplog.messages
    report = write_report(run, tmp_path)
    assert json.loads((tmp_path / "report.json").read_text())["warnings"] == run.warnings
    text = (tmp_path / "report.md").read_text()
    assert "## Warnings" in text and run.warnings[0] in text
    assert report["warnings"] == run.warnings


def test_warnings_for_failed_files_and_an_empty_index(
    linked_dataset: Dataset, tmp_path: Path
) -> None:
    from eval.runner import QueryResult, run_warnings

    settings = Settings(data_dir=tmp_path)
    run = EvalRun(linked_dataset, settings, "eval-x", {}, ingest={"failed": ["bad.md: no"]})
    run.results = [QueryResult("q1", (), 0.01, {}, {}, retrieved=0, matched=0)]
    warnings = run_warnings(run, CorpusDocuments({}, {"docs/b.md": "docs/a.md"}))
    assert warnings[0].startswith("1 of 3 corpus files failed to ingest")
    assert warnings[1] == "docs/b.md is the same file as docs/a.md: hits on it count as docs/a.md"
    assert warnings[2].startswith("no hit for any of the 1 questions")
