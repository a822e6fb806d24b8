"""The embedded store builds its vector index on a copy in a child process: searches and
writes go on meanwhile, writes made during the build survive the swap, and a swap cut
short or a close in the middle of a build loses nothing."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from mmrag.store import (
    ChannelQuery,
    CollectionSchema,
    PointFilter,
    VectorKind,
    VectorSpec,
    edge_index,
    point_id,
)
from mmrag.store.edge import EdgeStore
from mmrag.types import StoredPoint

DIMENSION = 16
SCHEMA = CollectionSchema(
    (VectorSpec("text", VectorKind.DENSE, DIMENSION), VectorSpec("sparse", VectorKind.SPARSE))
)


def points(document: str, count: int, seed: int) -> list[StoredPoint]:
    vectors = np.random.default_rng(seed).standard_normal((count, DIMENSION))
    return [
        StoredPoint(
            point_id=point_id("default", document, "hash", index),
            vectors={"text": vectors[index].tolist(), "sparse": ([index % 97 + 1], [1.0])},
            payload={"document_id": document, "page": index + 1, "kind": "text"},
        )
        for index in range(count)
    ]


def filled(root: Path, count: int = 3000, threshold: int = 1000) -> EdgeStore:
    store = EdgeStore(root=root, collection="c", index_after_points=threshold)
    store.ensure_collection(SCHEMA)
    for start in range(0, count, 500):
        store.upsert(points(f"doc-{start // 500}", 500, seed=start))
    return store


def nearest(store: EdgeStore, point: StoredPoint) -> str:
    vector = point.vectors["text"]
    (hits,) = store.search([ChannelQuery(vector_name="text", vector=vector, limit=1)])
    return hits[0].point_id


def test_writes_and_searches_go_on_while_the_index_builds(tmp_path: Path) -> None:
    store = filled(tmp_path)
    probe = points("doc-0", 1, seed=0)[0]

    assert store.index_in_background() and store.indexing()
    assert not store.index_in_background()  # one build at a time
    during = points("during", 200, seed=99)
    store.upsert(during)  # journaled, replayed onto the built copy
    store.delete(PointFilter(match={"document_id": "doc-1"}))
    searched_while_building = 0
    while store.indexing():
        assert nearest(store, probe) == probe.point_id
        searched_while_building += 1
        time.sleep(0.01)
    store.wait_for_index()

    assert searched_while_building > 0
    assert store.count() == 3000 - 500 + 200
    assert nearest(store, during[7]) == during[7].point_id
    assert store.count(PointFilter(match={"document_id": "doc-1"})) == 0
    assert edge_index.indexed_points(store.path) == 3000
    assert not edge_index.staging_path(store.path).exists()
    assert not edge_index.retired_path(store.path).exists()
    assert not store.index_in_background()  # 200 new points: under the threshold
    store.close()

    reopened = EdgeStore(root=tmp_path, collection="c")
    assert reopened.count() == 2700 and nearest(reopened, probe) == probe.point_id
    assert reopened.schema() == SCHEMA
    reopened.close()


def test_the_builder_runs_outside_the_serving_process(tmp_path: Path) -> None:
    """qdrant-edge's optimize holds the GIL: in-process it would stall every thread."""
    store = filled(tmp_path, count=6000)
    ticks: list[float] = []
    stop = threading.Event()

    def tick() -> None:
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.005)

    ticker = threading.Thread(target=tick)
    ticker.start()
    started = time.perf_counter()
    assert store.index_in_background()
    store.wait_for_index()
    stop.set()
    ticker.join()
    built_s = time.perf_counter() - started
    gaps = np.diff([t for t in ticks if t >= started])
    # The longest stall is the swap under the lock, not the build (which ran in a child).
    assert len(gaps) > 10 and gaps.max() < max(built_s / 2, 0.2)
    store.close()


def test_a_close_during_a_build_stops_it_and_keeps_everything(tmp_path: Path) -> None:
    store = filled(tmp_path)
    assert store.index_in_background()
    store.upsert(points("late", 10, seed=5))
    store.close()

    assert not edge_index.staging_path(store.path).exists()
    reopened = EdgeStore(root=tmp_path, collection="c", index_after_points=1000)
    assert reopened.count() == 3010
    assert reopened.index_in_background()  # not built yet: the next run builds
    reopened.wait_for_index()
    assert edge_index.indexed_points(reopened.path) == 3010
    reopened.close()


@pytest.mark.parametrize("cut", ["before the swap", "between the renames", "before retiring"])
def test_a_swap_cut_short_is_recovered_on_open(tmp_path: Path, cut: str) -> None:
    store = filled(tmp_path, threshold=0)
    store.close()
    path = store.path
    copy = edge_index.staging_path(path)
    shutil.copytree(path, copy)
    if cut == "between the renames":
        path.rename(edge_index.retired_path(path))
    elif cut == "before retiring":
        edge_index.install(path, copy, 3000, keep=())

    reopened = EdgeStore(root=tmp_path, collection="c")
    assert reopened.count() == 3000
    assert not copy.exists() and not edge_index.retired_path(path).exists()
    reopened.close()
