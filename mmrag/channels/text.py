"""``text``: the dense text embedder over text chunks and tables."""

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
from mmrag.models.base import TextEmbedder
from mmrag.settings import Settings
from mmrag.types import ElementKind

TEXT_VECTOR = "text"


class DenseTextChannel(Channel):
    """Dense text embeddings in the one ``text`` vector; subclasses pick the kinds."""

    text_similarity = True

    def __init__(self, embedder: TextEmbedder) -> None:
        self._embedder = embedder

    @classmethod
    def create(cls, models: Models, settings: Settings) -> Channel | None:
        return cls(models.text_embedder)

    def vectors(self) -> list[VectorSpec]:
        return [VectorSpec(TEXT_VECTOR, VectorKind.DENSE, self._embedder.dimension)]

    def encode_documents(self, items: Sequence[Indexable]) -> list[Encoded]:
        dense = self._embedder.embed_documents([item.text for item in items])
        return [Encoded({TEXT_VECTOR: row.tolist()}) for row in dense]

    def encode_query(self, text: str) -> VectorValue | None:
        return self._embedder.embed_query(text).tolist()


@register
class TextChannel(DenseTextChannel):
    name = "text"
    summary = "dense text embedding (text_embedder) against text chunks and tables"
    kinds = frozenset({ElementKind.TEXT, ElementKind.TABLE})
