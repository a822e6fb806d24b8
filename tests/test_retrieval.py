"""Retrieval channels and fusion on a generated corpus whose answers are known.

Real MiniLM (the offline text embedder), real OCR captions, and a fake pixel model.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from mmrag.errors import InvalidRequestError
from mmrag.fusion import distribution_scorer, fuse_rankings, rank_scorer, scorer_for
from mmrag.retrieval import SearchFilters
from mmrag.services import Services, build_services
from mmrag.settings import FusionMethod, Settings
from mmrag.store import ScoredPoint
from mmrag.testing import FakeImageEmbedder
from mmrag.testing.documents import CHART_LABELS, FACTS, GeneratedCorpus
from mmrag.types import ChannelScore, ElementKind


@pytest.fixture(scope="module")
def indexed(
    corpus: GeneratedCorpus, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Services]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("retrieval"), profile="offline")
    services = build_services(settings, image_embedder=FakeImageEmbedder())
    results = services.ingest_here(tenant="default", paths=sorted(corpus.good.values()))
    assert {r.outcome for r in results} == {"indexed"}
    yield services
    services.close()


def sources(hits: list) -> list[str]:  # type: ignore[type-arg]
    return [Path(hit.source).name for hit in hits]


def test_dense_text_channel_finds_a_paraphrase(indexed: Services) -> None:
    result = indexed.retriever.search(
        tenant="default", query="How many megawatts does the turbine generate?", channels=["text"]
    )
    top = result.hits[0]
    assert sources(result.hits)[0] == "report.pdf" and "42 megawatts" in top.text
    assert set(top.channels) == {"text"} and top.kind in (ElementKind.TEXT, ElementKind.TABLE)


def test_sparse_channel_matches_rare_terms(indexed: Services) -> None:
    result = indexed.retriever.search(tenant="default", query="Juniper 9000", channels=["sparse"])
    assert sources(result.hits)[0] == "plain.txt"
    assert result.hits[0].channels["sparse"].score > 0


def test_chart_only_answer_is_found_through_its_caption(
    indexed: Services, corpus: GeneratedCorpus
) -> None:
    label = CHART_LABELS["docx"]  # printed inside the chart picture, nowhere in the text
    memo = indexed.store.payloads(indexed_filter(indexed, corpus.good["docx"]))
    assert not any(label in p["text"] for p in memo if p["kind"] == "text")

    result = indexed.retriever.search(tenant="default", query=f"Which chart is labelled {label}?")

    top = result.hits[0]
    assert top.is_image and sources([top]) == ["memo.docx"] and label in top.text.upper()
    assert {"caption", "sparse"} <= set(top.channels)
    assert (indexed.settings.data_dir / (top.image_path or "")).is_file()


def indexed_filter(services: Services, path: Path):  # type: ignore[no-untyped-def]
    from mmrag.files import document_id_for
    from mmrag.store import PointFilter

    return PointFilter(match={"document_id": document_id_for("default", path)})


def test_pixel_channel_searches_only_images(indexed: Services) -> None:
    result = indexed.retriever.search(tenant="default", query="bar chart", channels=["image"])
    assert result.hits and all(hit.is_image for hit in result.hits)
    assert set(result.per_channel) == {"image"}


def test_image_query_finds_the_same_image(indexed: Services, corpus: GeneratedCorpus) -> None:
    with Image.open(corpus.good["jpeg"]) as photo:
        result = indexed.retriever.search_image(
            tenant="default", image=photo.convert("RGB"), limit=3
        )
    assert sources(result.hits)[0] == "photo.jpg" and result.hits[0].is_image
    assert "image" in result.hits[0].channels


def test_fusion_reports_every_channel_and_honours_filters(
    indexed: Services, corpus: GeneratedCorpus
) -> None:
    result = indexed.retriever.search(tenant="default", query=FACTS["pdf"], limit=5)
    assert set(result.per_channel) == {"text", "sparse", "caption", "image"}
    assert result.hits[0].score >= result.hits[-1].score

    pdf_id = indexed_filter(indexed, corpus.good["pdf"]).match["document_id"]
    page_two = indexed.retriever.search(
        tenant="default",
        query="Zephyr",
        filters=SearchFilters(document_ids=(pdf_id,), page_from=2, page_to=2),
    )
    assert page_two.hits and all(h.document_id == pdf_id and h.page == 2 for h in page_two.hits)
    images = indexed.retriever.search(
        tenant="default", query="chart", filters=SearchFilters(kinds=("image",))
    )
    assert images.hits and all(h.kind is ElementKind.IMAGE for h in images.hits)


@pytest.mark.parametrize("method", ["rrf", "dbsf"])
def test_the_fusion_setting_chooses_the_fusion(indexed: Services, method: FusionMethod) -> None:
    """Every hit's score is what ``retrieval.fusion``'s scorer gives its channels."""
    retriever = indexed.retriever
    chosen = retriever.settings
    retriever.settings = chosen.model_copy(update={"fusion": method})
    try:
        result = retriever.search(tenant="default", query="Zephyr quarterly revenue chart")
    finally:
        retriever.settings = chosen
    scorer = scorer_for(method, result.rankings, retriever.weights(), chosen.rrf_k)
    assert len(result.hits) > 2
    assert [hit.score for hit in result.hits] == pytest.approx(
        [scorer(hit.channels) for hit in result.hits]
    )
    assert result.hits == sorted(result.hits, key=lambda hit: -hit.score)


def test_bad_search_requests_are_clear(indexed: Services) -> None:
    with pytest.raises(InvalidRequestError, match="kinds"):
        indexed.retriever.search(
            tenant="default", query="x", filters=SearchFilters(kinds=("video",))
        )
    with pytest.raises(InvalidRequestError, match="channels"):
        indexed.retriever.search(tenant="default", query="x", channels=["telepathy"])


def test_text_only_corpus_works_without_pixels(tmp_path: Path, corpus: GeneratedCorpus) -> None:
    services = build_services(Settings(data_dir=tmp_path, profile="offline"))
    services.ingest_here(tenant="default", paths=[corpus.good["text"]])
    result = services.retriever.search(tenant="default", query="How many maps are in the library?")
    assert sources(result.hits)[0] == "plain.txt"
    assert "image" not in result.per_channel
    services.close()


def test_weighted_rrf_is_a_pure_function() -> None:
    def ranked(*ids: str) -> list[ScoredPoint]:
        return [ScoredPoint(i, 1.0 / (n + 1), {"id": i}) for n, i in enumerate(ids)]

    rankings = {"a": ranked("x", "y", "z"), "b": ranked("y", "x")}
    equal = fuse_rankings(rankings, rank_scorer({"a": 1.0, "b": 1.0}, k=1))
    skewed = fuse_rankings(rankings, rank_scorer({"a": 1.0, "b": 3.0}, k=1))

    assert [f.point_id for f in equal] == ["x", "y", "z"]  # tie broken by best rank... x first
    assert equal[0].score == pytest.approx(1 / 2 + 1 / 3)
    assert [f.point_id for f in skewed] == ["y", "x", "z"]
    assert skewed[0].channels["b"].rank == 1 and skewed[0].channels["a"].rank == 2
    assert rankings["a"][0].point_id == "x"  # inputs untouched


def test_distribution_fusion_scores_by_each_channels_spread() -> None:
    """dbsf credits a candidate by how its raw score sits among its channel's candidates:
    equal scores earn equal credit whatever their ranks (rank fusion cannot), and a
    channel's raw scale (BM25 sums against cosines) does not matter."""

    def scored(*pairs: tuple[str, float]) -> list[ScoredPoint]:
        return [ScoredPoint(i, score, {"id": i}) for i, score in pairs]

    dense = scored(("a", 0.80), ("b", 0.80), *[(f"c{n}", 0.20 + n / 100) for n in range(8)])
    sparse = scored(("d", 12.0), ("b", 11.0), *[(f"s{n}", 3.0) for n in range(8)])
    weights = {"dense": 1.0, "sparse": 2.0}

    alone = {"dense": dense}
    by_rank = {f.point_id: f.score for f in fuse_rankings(alone, rank_scorer(weights))}
    by_spread = {
        f.point_id: f.score for f in fuse_rankings(alone, distribution_scorer(alone, weights))
    }
    assert by_rank["a"] > by_rank["b"]
    assert by_spread["a"] == pytest.approx(by_spread["b"]) and by_spread["a"] > by_spread["c7"]

    both = {"dense": dense, "sparse": sparse}
    fused = fuse_rankings(both, distribution_scorer(both, weights))
    assert fused[0].point_id == "b"  # high in both channels
    assert fused[0].channels["sparse"] == ChannelScore(2, 11.0)
    # Scaling a channel's raw scores changes nothing.
    tenfold = {**both, "sparse": scored(*[(p.point_id, p.score * 10) for p in sparse])}
    again = fuse_rankings(tenfold, distribution_scorer(tenfold, weights))
    assert [f.point_id for f in again] == [f.point_id for f in fused]
    assert [f.score for f in again] == pytest.approx([f.score for f in fused])
    # Each channel adds between 0 and its weight; one whose candidates tie gives 0.5.
    assert all(0.0 <= f.score <= 3.0 for f in fused)
    ties = {"dense": scored(("x", 0.3), ("y", 0.3))}
    assert [f.score for f in fuse_rankings(ties, distribution_scorer(ties, weights))] == [0.5, 0.5]


def test_text_inside_an_image_merges_into_the_image_hit() -> None:
    from mmrag.fusion import Fused, merge_regions
    from mmrag.types import ChannelScore

    def fused(point: str, kind: str, bbox: list[float], score: float, channel: str) -> Fused:
        payload = {"document_id": "d", "page": 1, "kind": kind, "bbox": bbox, "text": point}
        return Fused(point, score, payload, {channel: ChannelScore(1, 0.5)})

    figure = fused("img", "image", [100, 100, 300, 300], 0.02, "caption")
    label = fused("label", "text", [120, 110, 200, 130], 0.03, "text")
    outside = fused("para", "text", [100, 400, 300, 420], 0.01, "text")
    page = fused("page", "page", [0, 0, 612, 792], 0.005, "image")

    label = Fused(
        "label", 0.03, label.payload, {"text": ChannelScore(2, 0.5), "sparse": ChannelScore(1, 9.0)}
    )

    weights = {"caption": 1.0, "sparse": 2.0}
    shared = {"text": "text", "caption": "text", "sparse": "sparse"}
    merged = merge_regions([label, figure, outside, page], rank_scorer(weights, k=1), shared)

    assert [f.point_id for f in merged] == ["img", "para", "page"]
    # caption (rank 1) stands for the dense evidence; the label's text rank 2 is the same
    assert set(merged[0].channels) == {"caption", "sparse"}
    assert merged[0].score == pytest.approx(1.0 / 2 + 2.0 / 2)
    assert merged[0].payload["text"] == "img\nlabel"  # the region keeps the folded text


def test_langchain_retriever_returns_documents(indexed: Services) -> None:
    from langchain_core.documents import Document

    from mmrag.langchain import MmragRetriever

    retriever = MmragRetriever(retriever=indexed.retriever, limit=3)
    documents = retriever.invoke("How many megawatts does the Zephyr turbine produce?")

    assert len(documents) == 3 and all(isinstance(d, Document) for d in documents)
    top = documents[0]
    assert "42 megawatts" in top.page_content
    assert Path(top.metadata["source"]).name == "report.pdf" and top.metadata["page"] == 1
    assert {"document_id", "kind", "bbox", "channels", "score"} <= set(top.metadata)

    # Per call: a limit and filters; image paths absolute when the data directory is given.
    located = MmragRetriever(retriever=indexed.retriever, data_dir=indexed.settings.blob_root)
    images = located.invoke("chart", filters={"kinds": ["image"]}, limit=2)
    assert 1 <= len(images) <= 2 and {d.metadata["kind"] for d in images} == {"image"}
    assert all(Path(d.metadata["image_path"]).is_file() for d in images)


@pytest.mark.parametrize("threshold", [0.2, 0.6])
def test_min_dense_score_drops_weak_dense_candidates(indexed: Services, threshold: float) -> None:
    from mmrag.retrieval import Retriever
    from mmrag.settings import RetrievalSettings

    retriever = Retriever(
        store=indexed.store,
        channels=indexed.channels,
        captioner=None,
        settings=RetrievalSettings(min_dense_score=threshold),
    )
    result = retriever.search("turbine output", tenant="default")

    dense = result.rankings["text"] + result.rankings["caption"]
    assert dense and all(point.score >= threshold for point in dense)
    assert result.rankings["sparse"]  # BM25 scores are not cosines: untouched
    if threshold > 0.2:
        weaker = retriever.search("turbine output", tenant="default", channels=["text"])
        assert len(weaker.rankings["text"]) < len(
            indexed.retriever.search("turbine output", tenant="default").rankings["text"]
        )


def test_pooling_pages_lifts_a_page_matched_several_times() -> None:
    from mmrag.fusion import Fused, pool_pages

    def fused(point: str, page: int, score: float) -> Fused:
        return Fused(point, score, {"document_id": "d", "page": page})

    ranked = [fused("lucky", 1, 0.05), fused("a", 2, 0.04), fused("b", 2, 0.03)]

    assert [f.point_id for f in pool_pages(ranked, 0.0)] == ["lucky", "a", "b"]
    pooled = pool_pages(ranked, 0.5)
    assert [f.point_id for f in pooled] == ["a", "lucky", "b"]
    assert pooled[0].score == pytest.approx(0.04 + 0.5 * 0.03)
    assert ranked[0].score == 0.05  # inputs untouched
