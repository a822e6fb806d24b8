"""``page``: late interaction over rendered pages (ColPali family).

Every page render is embedded by `page_embedder` into one vector per image patch,
stored as a Qdrant multi-vector (float16: a page holds hundreds of rows) and scored
against the query's token vectors with MaxSim. A MaxSim scan touches every page, so
the search is two-stage: the mean-pooled page vector (HNSW-indexed) picks
``page_embedder.first_stage`` candidates by the mean-pooled query vector, then MaxSim
over the full multi-vectors ranks them. ``first_stage = 0`` scores every page with
MaxSim (exact, slow on large corpora).

Every page is rendered while this channel is on (as ``parsing.page_images = "all"``).
The hit is the page render itself, so its citation points at the page; where the model's
patches tile the page (`MultiVector.grid`), the hit's box is the patch that matched the
query most (each query token credits its best patch with its similarity).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mmrag.channels.base import (
    Channel,
    Encoded,
    Indexable,
    Models,
    VectorKind,
    VectorSpec,
    VectorValue,
    narrow,
    pixels_of,
)
from mmrag.channels.registry import register
from mmrag.models.base import MultiVector, PageEmbedder, pooled
from mmrag.settings import Settings
from mmrag.store.base import ChannelQuery, PointFilter, ScoredPoint, VectorStore
from mmrag.types import BBox, ElementKind

PAGE_VECTOR = "page"
POOLED_VECTOR = "page_pooled"
GRID_FIELD = "patch_grid"  # payload: (rows, cols) of the page's patch grid
PATCHES_FIELD = "patch_rows"  # payload: the multi-vector row of each grid patch


def best_region(page: MultiVector, query: np.ndarray, bbox: Sequence[float]) -> BBox:
    """The grid patch the query matched most, in the units of the page's ``bbox``: each
    query token credits its best-matching patch with that similarity."""
    assert page.patch_rows is not None  # only pages with a grid are located
    patches = page.vectors[page.patch_rows]  # [patches, dimension]
    similarity = query @ patches.T  # [tokens, patches]
    credit = np.zeros(len(patches))
    np.add.at(credit, similarity.argmax(axis=1), similarity.max(axis=1))
    box = page.patch_box(int(page.patch_rows[int(credit.argmax())]))
    left, top, right, bottom = box if box is not None else (0.0, 0.0, 1.0, 1.0)
    x0, y0, x1, y1 = (float(v) for v in bbox)
    width, height = x1 - x0, y1 - y0
    return (x0 + left * width, y0 + top * height, x0 + right * width, y0 + bottom * height)


@register
class PageChannel(Channel):
    name = "page"
    summary = "late interaction (page_embedder, ColPali family) against rendered pages"
    kinds = frozenset({ElementKind.PAGE})
    needs_pixels = True
    renders_pages = True

    def __init__(self, embedder: PageEmbedder, first_stage: int) -> None:
        self._embedder = embedder
        self._first_stage = first_stage

    @classmethod
    def create(cls, models: Models, settings: Settings) -> Channel | None:
        if models.page_embedder is None:
            return None
        return cls(models.page_embedder, settings.page_embedder.first_stage)

    def vectors(self) -> list[VectorSpec]:
        size = self._embedder.dimension
        return [
            VectorSpec(PAGE_VECTOR, VectorKind.MULTI, size, indexed=False, half=True),
            VectorSpec(POOLED_VECTOR, VectorKind.DENSE, size),
        ]

    def encode_documents(self, items: Sequence[Indexable]) -> list[Encoded]:
        pages = self._embedder.embed_pages([pixels_of(item) for item in items])
        encoded = []
        for page in pages:
            grid = {}
            if page.grid is not None and page.patch_rows is not None:
                grid = {GRID_FIELD: list(page.grid), PATCHES_FIELD: page.patch_rows.tolist()}
            vectors = {PAGE_VECTOR: page.vectors.tolist(), POOLED_VECTOR: pooled(page).tolist()}
            encoded.append(Encoded(vectors, grid))
        return encoded

    def locate(
        self, points: Sequence[ScoredPoint], vector: VectorValue, store: VectorStore
    ) -> dict[str, BBox]:
        located = [p for p in points if p.payload.get(GRID_FIELD) and p.payload.get("bbox")]
        rows_of = store.vectors([p.point_id for p in located], PAGE_VECTOR)
        query = np.asarray(vector, dtype=np.float32)  # [tokens, dimension]
        regions = {}
        for point in located:
            rows = rows_of.get(point.point_id)
            if rows is None:
                continue
            page = MultiVector(
                np.asarray(rows, dtype=np.float32),
                tuple(point.payload[GRID_FIELD]),
                np.asarray(point.payload[PATCHES_FIELD], dtype=np.int64),
            )
            regions[point.point_id] = best_region(page, query, point.payload["bbox"])
        return regions

    def encode_query(self, text: str) -> VectorValue | None:
        return self._embedder.embed_query(text).vectors.tolist()

    def request(
        self,
        vector: VectorValue,
        where: PointFilter,
        limit: int,
        score_threshold: float | None = None,
    ) -> ChannelQuery:
        where = narrow(where, self.kinds)
        first = None
        if self._first_stage:
            rows = MultiVector(np.asarray(vector, dtype=np.float32))
            first = ChannelQuery(
                POOLED_VECTOR, pooled(rows).tolist(), max(self._first_stage, limit), where
            )
        return ChannelQuery(PAGE_VECTOR, vector, limit, where, score_threshold, prefetch=first)
