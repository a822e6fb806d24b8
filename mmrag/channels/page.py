"""``page``: late interaction over rendered pages (ColPali family).

Every page render is embedded by `page_embedder` into one vector per image patch,
stored as a Qdrant multi-vector (float16: a page holds hundreds of rows) and scored
against the query's token vectors with MaxSim. A MaxSim scan touches every page, so
the search is two-stage: the mean-pooled page vector (HNSW-indexed) picks
``page_embedder.first_stage`` candidates by the mean-pooled query vector, then MaxSim
over the full multi-vectors ranks them. ``first_stage = 0`` scores every page with
MaxSim (exact, slow on large corpora).

Every page is rendered while this channel is on (as ``parsing.page_images = "all"``).
The hit is the page render itself, so its citation points at the page.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mmrag.channels.base import (
    Channel,
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
from mmrag.store.base import ChannelQuery, PointFilter
from mmrag.types import ElementKind

PAGE_VECTOR = "page"
POOLED_VECTOR = "page_pooled"


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

    def encode_documents(self, items: Sequence[Indexable]) -> list[dict[str, VectorValue]]:
        pages = self._embedder.embed_pages([pixels_of(item) for item in items])
        return [
            {PAGE_VECTOR: page.vectors.tolist(), POOLED_VECTOR: pooled(page).tolist()}
            for page in pages
        ]

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
