"""The page channel (late interaction) and the reranker end to end, on tiny random models
built from the real configs and loaded through the code users get: ingest -> search ->
ask -> eval."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from eval.datasets import load_mmrag_dataset
from eval.runner import run_eval
from mmrag.retrieval import RERANK
from mmrag.services import Services, build_services
from mmrag.settings import Settings
from mmrag.store import PointFilter
from mmrag.testing.documents import GeneratedCorpus
from mmrag.types import ElementKind
from tests.eval.test_run import write_dataset


@pytest.fixture(scope="module", params=["colmodernvbert", "colqwen2"])
def services(
    request: pytest.FixtureRequest,
    tiny_models: Path,
    corpus: GeneratedCorpus,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Services]:
    if request.param == "colqwen2":
        from mmrag.testing.tiny_retrievers import build_tiny_colqwen2

        model = build_tiny_colqwen2(tmp_path_factory.mktemp("colqwen2"))
    else:
        model = tiny_models / "colmodernvbert"
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("pages"),
        profile="offline",  # local model directories are kept
        page_embedder={"model": str(model)},
        reranker={"backend": "cross-encoder", "model": str(tiny_models / "cross-encoder")},
    )
    built = build_services(settings)
    results = built.ingest_here([corpus.good["pdf"], corpus.good["text"]], tenant="default")
    assert [r.outcome for r in results] == ["indexed", "indexed"]
    yield built
    built.close()


def test_every_pdf_page_is_rendered_and_stored_as_a_multi_vector(
    services: Services, corpus: GeneratedCorpus
) -> None:
    record = services.catalog.get("default", _document_id(services))
    assert record is not None
    pages = services.store.payloads(PointFilter(match={"kind": "page"}))
    assert sorted(p["page"] for p in pages) == list(range(1, record.pages + 1))
    schema = {spec.name: spec for spec in services.ingestor._points.schema().vectors}
    assert schema["page"].kind == "multi" and not schema["page"].indexed
    assert schema["page_pooled"].kind == "dense"


def _document_id(services: Services) -> str:
    (pdf,) = [r for r in services.catalog.list("default") if r.file_type == "pdf"]
    return pdf.document_id


@pytest.mark.parametrize("first_stage", [0, 200])
def test_the_page_channel_finds_pages(services: Services, first_stage: int) -> None:
    channel = next(c for c in services.channels if c.name == "page")
    channel._first_stage = first_stage  # type: ignore[attr-defined]
    result = services.retriever.search(
        "How many megawatts does the Zephyr turbine produce?",
        tenant="default",
        channels=["page"],
        limit=10,
    )
    assert result.hits and all(hit.kind == ElementKind.PAGE for hit in result.hits)
    assert all(hit.channels["page"].score > 0 for hit in result.hits)  # MaxSim of unit rows
    assert len({(hit.document_id, hit.page) for hit in result.hits}) == len(result.hits)


def test_a_page_hit_points_at_its_best_matching_region(services: Services) -> None:
    result = services.retriever.search(
        "Zephyr turbine output table", tenant="default", channels=["page"], limit=3
    )
    for hit in result.hits:
        page = services.store.payloads(PointFilter(match={"kind": "page"}))[0]["bbox"]
        assert hit.bbox is not None and hit.point_id in result.regions
        left, top, right, bottom = hit.bbox
        assert 0 <= left < right <= page[2] and 0 <= top < bottom <= page[3]
        assert (right - left) * (bottom - top) < page[2] * page[3] / 2  # a patch, not the page


def test_the_reranker_orders_the_fused_top(services: Services) -> None:
    result = services.retriever.search("Zephyr turbine blades", tenant="default", limit=5)
    reranked = [hit.channels[RERANK] for hit in result.hits]
    assert [score.rank for score in reranked] == list(range(1, len(reranked) + 1))
    scores = [score.score for score in reranked]
    assert scores == sorted(scores, reverse=True)


def test_asking_cites_what_the_page_channel_found(services: Services) -> None:
    answer = services.asker.ask(
        "How many megawatts does the Zephyr turbine produce?", tenant="default"
    )
    assert answer.sources
    assert any("page" in hit.channels for hit in answer.sources)


def test_the_eval_harness_scores_the_page_channel(
    services: Services, corpus: GeneratedCorpus, tmp_path: Path
) -> None:
    dataset = load_mmrag_dataset(write_dataset(corpus, tmp_path / "dataset"))
    run = run_eval(dataset, services.settings, services=services)
    assert {"page", "default"} <= set(run.configurations)
    pdf_questions = [r for r in run.results if r.query_id in {"q1", "q2"}]
    assert pdf_questions and all("ndcg@5" in r.scores["page"] for r in pdf_questions)


def test_best_region_is_the_patch_most_query_tokens_match() -> None:
    import numpy as np

    from mmrag.channels.page import best_region
    from mmrag.models.base import MultiVector

    # A 2x2 grid; rows 1..4 are its patches (row 0 is a prompt token), row-major.
    rows = np.eye(5, dtype=np.float32)
    page = MultiVector(rows, (2, 2), np.array([1, 2, 3, 4]))
    query = np.stack([rows[3], rows[3] * 0.9 + rows[0] * 0.1, rows[2] * 0.5])  # mostly patch (1, 0)

    region = best_region(page, query, (0.0, 0.0, 600.0, 800.0))

    assert region == pytest.approx((0.0, 400.0, 300.0, 800.0))  # bottom-left quadrant
