"""The vector store contract, the schema both Qdrant adapters share, and point ids.

One collection per knowledge base. Each point is one element (text chunk, table,
image, page render) carrying the named vectors that apply to it:

- ``text``   dense text embedding (chunk text, or an image's caption + OCR text)
- ``sparse`` BM25 term weights; Qdrant applies IDF at query time (Modifier.IDF)
- ``image``  SigLIP pixel embedding (images and page renders only)

So an image and its caption are one point, and one hit.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mmrag.types import StoredPoint

TEXT_VECTOR = "text"
SPARSE_VECTOR = "sparse"
IMAGE_VECTOR = "image"

# Payload fields filtered on, and their index types.
KEYWORD_FIELDS = ("document_id", "kind", "content_hash", "file_type", "image_id")
TENANT_FIELD = "tenant"
INTEGER_FIELDS = ("page",)

_POINT_NAMESPACE = uuid.UUID("6f1c2e0a-3d5b-4c8e-9a7f-2b4d6e8f0a1c")


def point_id(tenant: str, document_id: str, content_hash: str, element_index: int) -> str:
    """Deterministic: the same element of the same content of the same document always gets
    the same id, so a retried or repeated ingest overwrites its points, never duplicates."""
    key = f"{tenant}/{document_id}/{content_hash}/{element_index}"
    return str(uuid.uuid5(_POINT_NAMESPACE, key))


@dataclass(frozen=True)
class PointFilter:
    """Conditions on payload fields: ``match`` must hold, ``exclude`` must not, and each
    ``ranges`` field must lie within (low, high), either end open when None.

    A list value matches any of its items.
    """

    match: dict[str, Any] = field(default_factory=dict)
    exclude: dict[str, Any] = field(default_factory=dict)
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.match or self.exclude or self.ranges)


@dataclass(frozen=True)
class ChannelQuery:
    """One nearest-neighbour search: a named vector, the query vector, a limit, a filter."""

    vector_name: str
    vector: list[float] | tuple[list[int], list[float]]  # dense, or sparse (indices, values)
    limit: int
    where: PointFilter | None = None
    score_threshold: float | None = None  # drop candidates scoring lower


@dataclass(frozen=True)
class ScoredPoint:
    point_id: str
    score: float
    payload: dict[str, Any]


@dataclass(frozen=True)
class CollectionSchema:
    text_dimension: int
    image_dimension: int | None  # None: no pixel channel


class VectorStore(ABC):
    """What the pipeline needs from Qdrant, whichever way it runs."""

    @abstractmethod
    def ensure_collection(self, schema: CollectionSchema) -> None:
        """Create the collection and payload indexes if missing; check dimensions if present."""

    @abstractmethod
    def upsert(self, points: Sequence[StoredPoint]) -> None: ...

    @abstractmethod
    def delete(self, where: PointFilter) -> None: ...

    @abstractmethod
    def count(self, where: PointFilter | None = None) -> int: ...

    @abstractmethod
    def search(self, queries: Sequence[ChannelQuery]) -> list[list[ScoredPoint]]:
        """Run several searches in one round trip; one ranked list per query."""

    @abstractmethod
    def payloads(self, where: PointFilter, limit: int = 10_000) -> list[dict[str, Any]]:
        """Payloads of matching points (for inspection and maintenance, not search)."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> VectorStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
