"""One contract, two Qdrant adapters: the embedded default and qdrant-client's API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mmrag.errors import StoreError
from mmrag.settings import StoreSettings
from mmrag.store import (
    ChannelQuery,
    CollectionSchema,
    PointFilter,
    VectorKind,
    VectorSpec,
    VectorStore,
    open_store,
    point_id,
)
from mmrag.types import StoredPoint

TEXT = VectorSpec("text", VectorKind.DENSE, 4)
SPARSE = VectorSpec("sparse", VectorKind.SPARSE)
IMAGE = VectorSpec("image", VectorKind.DENSE, 3)
PAGE = VectorSpec("page", VectorKind.MULTI, 2, indexed=False, half=True)
POOLED = VectorSpec("page_pooled", VectorKind.DENSE, 2)
SCHEMA = CollectionSchema((TEXT, SPARSE, IMAGE))


def opened_store(adapter: str, root: Path, schema: CollectionSchema) -> VectorStore:
    url = None if adapter == "embedded" else ":memory:"
    opened = open_store(StoreSettings(qdrant_url=url), embedded_root=root / "qdrant")
    opened.ensure_collection(schema)
    return opened


@pytest.fixture(params=["embedded", "qdrant-client"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    opened = opened_store(request.param, tmp_path, SCHEMA)
    yield opened
    opened.close()


def make_point(document: str, index: int, *, run: str = "r1", image: bool = False) -> StoredPoint:
    vectors: dict = {"text": [1.0, float(index), 0.0, 0.5], "sparse": ([11, 42], [1.5, 0.7])}
    if image:
        vectors["image"] = [0.2, 0.1, float(index)]
    return StoredPoint(
        point_id=point_id("default", document, "hash", index),
        vectors=vectors,
        payload={
            "document_id": document,
            "run_id": run,
            "page": index + 1,
            "kind": "image" if image else "text",
            "text": f"element {index}",
        },
    )


def test_upsert_count_and_payloads(store: VectorStore) -> None:
    store.upsert([make_point("a", 0), make_point("a", 1, image=True), make_point("b", 0)])

    assert store.count() == 3
    assert store.count(PointFilter(match={"document_id": "a"})) == 2
    assert store.count(PointFilter(match={"document_id": ["a", "b"]})) == 3
    payloads = store.payloads(PointFilter(match={"document_id": "a", "kind": "image"}))
    assert [p["text"] for p in payloads] == ["element 1"]


def test_same_ids_overwrite(store: VectorStore) -> None:
    store.upsert([make_point("a", 0, run="r1"), make_point("a", 1, run="r1")])
    store.upsert([make_point("a", 0, run="r2"), make_point("a", 1, run="r2")])

    assert store.count() == 2
    assert {p["run_id"] for p in store.payloads(PointFilter())} == {"r2"}


def test_delete_with_exclusion(store: VectorStore) -> None:
    store.upsert(
        [
            make_point("a", 0, run="old"),
            make_point("a", 1, run="new"),
            make_point("b", 0, run="old"),
        ]
    )

    store.delete(PointFilter(match={"document_id": "a"}, exclude={"run_id": "new"}))

    assert store.count(PointFilter(match={"document_id": "a"})) == 1
    assert store.count(PointFilter(match={"document_id": "b"})) == 1


def test_dimension_mismatch_is_a_clear_error(store: VectorStore) -> None:
    wider = VectorSpec("text", VectorKind.DENSE, 8)
    with pytest.raises(StoreError, match="'text'"):
        store.ensure_collection(CollectionSchema((wider, SPARSE, IMAGE)))


def test_point_ids_are_deterministic() -> None:
    assert point_id("t", "d", "h", 3) == point_id("t", "d", "h", 3)
    assert (
        len(
            {
                point_id("t", "d", "h", 3),
                point_id("t", "d", "h", 4),
                point_id("t", "e", "h", 3),
                point_id("u", "d", "h", 3),
            }
        )
        == 4
    )


def test_embedded_store_survives_reopen(tmp_path: Path) -> None:
    settings = StoreSettings()
    first = open_store(settings, embedded_root=tmp_path)
    first.ensure_collection(SCHEMA)
    first.upsert([make_point("a", 0), make_point("a", 1)])
    first.close()

    second = open_store(settings, embedded_root=tmp_path)
    second.ensure_collection(SCHEMA)
    assert second.count() == 2
    second.close()


def test_embedded_store_adds_the_pixel_channel_later(tmp_path: Path) -> None:
    store = open_store(StoreSettings(), embedded_root=tmp_path)
    store.ensure_collection(CollectionSchema((TEXT, SPARSE)))
    store.upsert([make_point("a", 0)])

    store.ensure_collection(SCHEMA)
    store.upsert([make_point("a", 1, image=True)])

    assert store.count() == 2
    store.close()


def test_embedded_store_reads_the_first_schema_format(tmp_path: Path) -> None:
    """Stores written before channels were registered keep working, and gain vectors."""
    store = open_store(StoreSettings(), embedded_root=tmp_path)
    store.ensure_collection(CollectionSchema((TEXT, SPARSE)))
    store.upsert([make_point("a", 0)])
    store.close()
    schema_file = tmp_path / "mmrag" / "mmrag-schema.json"
    schema_file.write_text('{"text_dimension": 4, "image_dimension": null}')

    reopened = open_store(StoreSettings(), embedded_root=tmp_path)
    reopened.ensure_collection(SCHEMA)
    reopened.upsert([make_point("a", 1, image=True)])
    assert reopened.count() == 2
    reopened.close()
    assert "image" in schema_file.read_text()


def page_point(document: str, index: int, rows: list[list[float]]) -> StoredPoint:
    mean = [sum(column) / len(rows) for column in zip(*rows, strict=True)]
    return StoredPoint(
        point_id=point_id("default", document, "hash", index),
        vectors={"page": rows, "page_pooled": mean},
        payload={"document_id": document, "page": index + 1, "kind": "page", "text": ""},
    )


@pytest.mark.parametrize("adapter", ["embedded", "qdrant-client"])
@pytest.mark.parametrize("first_stage", [None, 2])
def test_multi_vectors_are_scored_with_maxsim(
    adapter: str, first_stage: int | None, tmp_path: Path
) -> None:
    """Late interaction: a page scores the sum over query rows of its best-matching row,
    with or without a pooled first stage."""
    store = opened_store(adapter, tmp_path, CollectionSchema((SPARSE, PAGE, POOLED)))
    store.upsert(
        [
            page_point("a", 0, [[1.0, 0.0], [0.0, 1.0]]),  # matches both query rows
            page_point("a", 1, [[1.0, 0.0], [1.0, 0.1]]),  # matches the first only
            page_point("b", 2, [[-1.0, 0.0], [0.0, -1.0]]),
        ]
    )
    query = [[1.0, 0.0], [0.0, 1.0]]
    prefetch = (
        ChannelQuery("page_pooled", [0.7, 0.7], first_stage) if first_stage is not None else None
    )

    (ranked,) = store.search([ChannelQuery("page", query, limit=3, prefetch=prefetch)])

    assert [p.payload["page"] for p in ranked][:2] == [1, 2]
    assert ranked[0].score == pytest.approx(2.0, abs=1e-4)  # 1 + 1: cosine MaxSim
    assert len(ranked) == (first_stage or 3)
    store.close()


def test_a_server_collection_without_a_channel_vector_is_a_clear_error(tmp_path: Path) -> None:
    store = opened_store("qdrant-client", tmp_path, SCHEMA)
    with pytest.raises(StoreError, match="'page'.*use another store.collection"):
        store.ensure_collection(CollectionSchema((TEXT, SPARSE, IMAGE, PAGE, POOLED)))
    store.close()


@pytest.mark.filterwarnings("ignore:Failed to obtain server version")
def test_unreachable_server_is_a_store_error() -> None:
    store = open_store(
        StoreSettings(qdrant_url="http://127.0.0.1:9", timeout_s=1), embedded_root=Path("unused")
    )
    with pytest.raises(StoreError, match="127.0.0.1:9"):
        store.count()


def test_search_runs_several_channels_in_one_call(store: VectorStore) -> None:
    store.upsert([make_point("a", 0), make_point("a", 1, image=True), make_point("b", 2)])

    text, sparse, image, filtered = store.search(
        [
            ChannelQuery("text", [1.0, 1.0, 0.0, 0.5], limit=2),
            ChannelQuery("sparse", ([42], [1.0]), limit=5),
            ChannelQuery("image", [0.2, 0.1, 1.0], limit=5),
            ChannelQuery(
                "text",
                [1.0, 0.0, 0.0, 0.5],
                limit=5,
                where=PointFilter(match={"document_id": "a"}, ranges={"page": (2, None)}),
            ),
        ]
    )

    assert [p.payload["text"] for p in text] == ["element 1", "element 2"]
    assert len(sparse) == 3 and all(p.score > 0 for p in sparse)
    assert [p.payload["text"] for p in image] == ["element 1"]  # only points with pixels
    assert [p.payload["page"] for p in filtered] == [2]
