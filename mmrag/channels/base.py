"""What a retrieval channel is: one way of finding elements, defined in one place.

A channel names the elements it indexes, the named vector(s) it adds to the collection
(dense, sparse or multi-vector), how it encodes those elements and a query, and how it
asks the store. The collection schema, point building, search, fusion, the settings
(``retrieval.channels.<name>``), the eval harness and the API all iterate over the
registered channels (`mmrag.channels.registry`), so a new channel is one new module.

Channels may share a named vector: ``text`` and ``caption`` both search the dense text
vector, over different element kinds. Each element's vector is encoded once, by the
first channel that indexes its kind.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from PIL import Image

from mmrag.store.base import (
    ChannelQuery,
    PointFilter,
    ScoredPoint,
    SparseValue,
    VectorKind,
    VectorSpec,
    VectorStore,
    VectorValue,
)
from mmrag.types import BBox, ElementKind

__all__ = ["SparseValue", "VectorKind", "VectorSpec", "VectorValue"]

if TYPE_CHECKING:
    from mmrag.models.base import Captioner, ImageEmbedder, PageEmbedder, TextEmbedder
    from mmrag.settings import Settings
    from mmrag.sparse import SparseEncoder


@dataclass(frozen=True)
class Indexable:
    """One element as channels see it when indexing."""

    kind: ElementKind
    text: str  # the text embedded (a chunk with its context, an image's caption + OCR)
    image: Image.Image | None = None  # pixels of images and page renders


@dataclass(frozen=True)
class Encoded:
    """One element as a channel encoded it: its named vectors, and payload fields the
    channel keeps with the point (the page channel's patch grid)."""

    vectors: dict[str, VectorValue]
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Models:
    """The loaded models a channel may use; a role that is off is None."""

    text_embedder: TextEmbedder
    sparse: SparseEncoder
    image_embedder: ImageEmbedder | None = None
    page_embedder: PageEmbedder | None = None
    captioner: Captioner | None = None


class Channel(ABC):
    """One retrieval channel. Subclasses set the class attributes and the encoders, and
    register with ``@register`` (`mmrag.channels.registry`)."""

    name: ClassVar[str]
    summary: ClassVar[str]  # one line for docs, `mmrag models` and the API schema
    kinds: ClassVar[frozenset[ElementKind]]  # the elements it indexes and searches
    # Its scores are cosine similarities of the dense text embedder: they gate
    # `retrieval.min_dense_score` and the answerer's abstention (`answerer.min_support`).
    text_similarity: ClassVar[bool] = False
    needs_pixels: ClassVar[bool] = False  # indexes an element only with its pixels
    renders_pages: ClassVar[bool] = False  # needs every page rendered (parsing.page_images)

    @classmethod
    @abstractmethod
    def create(cls, models: Models, settings: Settings) -> Channel | None:
        """The channel over these models and settings; None when a model it needs is off."""

    @abstractmethod
    def vectors(self) -> list[VectorSpec]:
        """The named vectors it reads and writes; the first is the one searched."""

    @abstractmethod
    def encode_documents(self, items: Sequence[Indexable]) -> list[Encoded]:
        """What each item gets from this channel, in order."""

    @abstractmethod
    def encode_query(self, text: str) -> Any:
        """The query's encoding for `request` (a vector, unless `request` is overridden);
        None leaves the channel out of this search."""

    def encode_image_query(self, image: Image.Image, description: str) -> Any:
        """The query vector when an image is the query; ``description`` is its caption or
        OCR text. By default the description is searched as text."""
        return self.encode_query(description) if description.strip() else None

    @property
    def vector(self) -> str:
        """The named vector searched."""
        return self.vectors()[0].name

    @property
    def query_key(self) -> str:
        """Channels with the same key share one query encoding (``text`` and ``caption``
        embed the query once); by default the named vector searched."""
        return self.vector

    def indexes(self, item: Indexable) -> bool:
        if item.kind not in self.kinds:
            return False
        return item.image is not None if self.needs_pixels else bool(item.text.strip())

    def locate(
        self, points: Sequence[ScoredPoint], vector: Any, store: VectorStore
    ) -> dict[str, BBox]:
        """Where on its element each found point matched the query, when the channel can
        tell (late interaction: the best patch); by point id, in the payload's units."""
        return {}

    def request(
        self,
        vector: Any,
        where: PointFilter,
        limit: int,
        score_threshold: float | None = None,
    ) -> ChannelQuery:
        """The store query: nearest neighbours of ``vector`` among this channel's kinds."""
        return ChannelQuery(self.vector, vector, limit, narrow(where, self.kinds), score_threshold)


def pixels_of(item: Indexable) -> Image.Image:
    """The item's pixels (a pixel channel is only handed items that have them)."""
    if item.image is None:
        raise ValueError(f"a {item.kind.value} element without pixels reached a pixel channel")
    return item.image


def narrow(where: PointFilter, kinds: frozenset[ElementKind]) -> PointFilter:
    """Add a kind restriction, intersected with any the caller gave."""
    names = sorted(kind.value for kind in kinds)
    if set(names) == {kind.value for kind in ElementKind}:
        return where
    wanted = where.match.get("kind")
    if wanted is not None:
        names = [name for name in names if name in wanted] or ["none"]
    return PointFilter(
        match={**where.match, "kind": names}, exclude=where.exclude, ranges=where.ranges
    )
