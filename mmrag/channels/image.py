"""``image``: SigLIP's text tower (or an image query's pixels) against image pixels."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

from mmrag.channels.base import (
    Channel,
    Encoded,
    Indexable,
    Models,
    VectorKind,
    VectorSpec,
    VectorValue,
    pixels_of,
)
from mmrag.channels.registry import register
from mmrag.models.base import ImageEmbedder
from mmrag.settings import Settings
from mmrag.types import ElementKind

IMAGE_VECTOR = "image"


@register
class ImageChannel(Channel):
    name = "image"
    summary = "SigLIP (image_embedder): the query text, or an image query, against pixels"
    kinds = frozenset({ElementKind.IMAGE, ElementKind.PAGE})
    needs_pixels = True

    def __init__(self, embedder: ImageEmbedder) -> None:
        self._embedder = embedder

    @classmethod
    def create(cls, models: Models, settings: Settings) -> Channel | None:
        return None if models.image_embedder is None else cls(models.image_embedder)

    def vectors(self) -> list[VectorSpec]:
        return [VectorSpec(IMAGE_VECTOR, VectorKind.DENSE, self._embedder.dimension)]

    def encode_documents(self, items: Sequence[Indexable]) -> list[Encoded]:
        pixels = self._embedder.embed_images([pixels_of(item) for item in items])
        return [Encoded({IMAGE_VECTOR: row.tolist()}) for row in pixels]

    def encode_query(self, text: str) -> VectorValue | None:
        return self._embedder.embed_query(text).tolist()

    def encode_image_query(self, image: Image.Image, description: str) -> VectorValue | None:
        return self._embedder.embed_images([image])[0].tolist()
