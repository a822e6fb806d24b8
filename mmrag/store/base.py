"""The vector store contract, the schema both Qdrant adapters share, and point ids.

One collection per knowledge base. Each point is one element (text chunk, table,
image, page render) carrying the named vectors the channels (`mmrag.channels`) give it:
dense, sparse (BM25 term weights; Qdrant applies IDF at query time) or multi-vectors
(late interaction, scored with MaxSim). So an image and its caption are one point, and
one hit.
"""

from __future__ import annotations

import enum
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mmrag.types import SparseValue, StoredPoint, VectorValue

__all__ = ["SparseValue", "VectorValue"]


class VectorKind(enum.StrEnum):
    DENSE = "dense"  # one vector, cosine similarity
    SPARSE = "sparse"  # term weights; the store applies IDF at query time (BM25)
    MULTI = "multi"  # late interaction: many vectors, scored with MaxSim (cosine)


@dataclass(frozen=True)
class VectorSpec:
    """A named vector of the collection."""

    name: str
    kind: VectorKind
    size: int = 0  # dense and multi: the dimension
    indexed: bool = True  # build an HNSW graph (multi-vectors are rescored, not walked)
    half: bool = False  # stored as float16 (half the memory; for large multi-vectors)


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
    """One nearest-neighbour search: a named vector, the query vector, a limit, a filter;
    with ``prefetch``, only the candidates that first search finds are scored."""

    vector_name: str
    vector: VectorValue
    limit: int
    where: PointFilter | None = None
    score_threshold: float | None = None  # drop candidates scoring lower
    prefetch: ChannelQuery | None = None


@dataclass(frozen=True)
class ScoredPoint:
    point_id: str
    score: float
    payload: dict[str, Any]


@dataclass(frozen=True)
class CollectionSchema:
    """The named vectors of a collection (from the active channels)."""

    vectors: tuple[VectorSpec, ...]

    def to_json(self) -> list[dict[str, Any]]:
        return [
            {
                "name": v.name,
                "kind": v.kind.value,
                "size": v.size,
                "indexed": v.indexed,
                "half": v.half,
            }
            for v in self.vectors
        ]

    @classmethod
    def from_json(cls, data: Any) -> CollectionSchema:
        """Read a stored schema; the first format (text and image dimensions) too."""
        if isinstance(data, dict):  # {"text_dimension": 384, "image_dimension": 768 | None}
            specs = [
                VectorSpec("text", VectorKind.DENSE, int(data["text_dimension"])),
                VectorSpec("sparse", VectorKind.SPARSE),
            ]
            if data.get("image_dimension"):
                specs.append(VectorSpec("image", VectorKind.DENSE, int(data["image_dimension"])))
            return cls(tuple(specs))
        return cls(
            tuple(
                VectorSpec(
                    d["name"],
                    VectorKind(d["kind"]),
                    int(d["size"]),
                    bool(d["indexed"]),
                    bool(d.get("half", False)),
                )
                for d in data
            )
        )

    def merged(self, other: CollectionSchema) -> tuple[CollectionSchema, list[VectorSpec]]:
        """This schema plus the vectors only ``other`` has (returned second). A vector both
        have with another kind or size raises `ValueError` naming it."""
        mine = {v.name: v for v in self.vectors}
        added = []
        for spec in other.vectors:
            known = mine.get(spec.name)
            if known is None:
                added.append(spec)
            elif (known.kind, known.size) != (spec.kind, spec.size):
                raise ValueError(
                    f"the collection's {spec.name!r} vectors are {known.kind.value} of size "
                    f"{known.size}, the configured model makes {spec.kind.value} of size "
                    f"{spec.size}"
                )
        return CollectionSchema(self.vectors + tuple(added)), added


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
    def vectors(self, point_ids: Sequence[str], name: str) -> dict[str, VectorValue]:
        """The named vector of each point that has it (for rescoring, not search)."""

    @abstractmethod
    def payloads(self, where: PointFilter, limit: int = 10_000) -> list[dict[str, Any]]:
        """Payloads of matching points (for inspection and maintenance, not search)."""

    @abstractmethod
    def close(self) -> None: ...

    def index_in_background(self) -> bool:
        """Start building the vector index if enough points were added since the last
        build; True if a build started. A Qdrant server indexes by itself: no-op."""
        return False

    def indexing(self) -> bool:
        """Whether an index build started by `index_in_background` is running."""
        return False

    def wait_for_index(self) -> None:  # noqa: B027 - nothing to wait for by default
        """Wait for a running index build to finish."""

    def __enter__(self) -> VectorStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
