"""``sparse``: BM25 term weights over the text of every element (Qdrant applies IDF)."""

from __future__ import annotations

from collections.abc import Sequence

from mmrag.channels.base import (
    Channel,
    Encoded,
    Indexable,
    Models,
    VectorKind,
    VectorSpec,
    VectorValue,
)
from mmrag.channels.registry import register
from mmrag.settings import Settings
from mmrag.sparse import SparseEncoder
from mmrag.types import ElementKind

SPARSE_VECTOR = "sparse"


@register
class SparseChannel(Channel):
    name = "sparse"
    summary = "BM25 over the text of chunks, tables, images and page renders"
    kinds = frozenset(ElementKind)

    def __init__(self, encoder: SparseEncoder) -> None:
        self._encoder = encoder

    @classmethod
    def create(cls, models: Models, settings: Settings) -> Channel | None:
        return cls(models.sparse)

    def vectors(self) -> list[VectorSpec]:
        return [VectorSpec(SPARSE_VECTOR, VectorKind.SPARSE)]

    def encode_documents(self, items: Sequence[Indexable]) -> list[Encoded]:
        encoded = self._encoder.embed_documents([item.text for item in items])
        return [Encoded({SPARSE_VECTOR: vector}) for vector in encoded]

    def encode_query(self, text: str) -> VectorValue | None:
        return self._encoder.embed_query(text)
