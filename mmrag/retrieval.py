"""Search: embed the query once per model, query every channel in one store round trip,
fuse the rankings.

Channels:

- ``text``    dense text embedding against chunks and tables
- ``sparse``  BM25 (Qdrant IDF) against chunks and the text of images
- ``caption`` dense text embedding against images' captions + OCR text
- ``image``   SigLIP's text tower against image pixels (when a pixel model is set)

Each point is one element, so an image and its caption come back as one hit.
A channel with weight 0, or whose model is missing, is skipped; text-only and
image-only corpora simply leave some channels empty.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from mmrag.errors import InvalidRequestError
from mmrag.fusion import merge_regions, reciprocal_rank_fusion
from mmrag.models.base import Captioner, ImageEmbedder, TextEmbedder
from mmrag.settings import RetrievalSettings
from mmrag.sparse import SparseEncoder
from mmrag.store import (
    IMAGE_VECTOR,
    SPARSE_VECTOR,
    TEXT_VECTOR,
    ChannelQuery,
    PointFilter,
    ScoredPoint,
    VectorStore,
)
from mmrag.types import ElementKind, Hit

CHANNELS = ("text", "sparse", "caption", "image")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# A payload field a metadata filter may name: a plain name (the store reads dots,
# brackets and the like as a path into the payload, and refuses a malformed one).
METADATA_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Payload fields a metadata filter may not name: scope, identity and bookkeeping.
RESERVED_FIELDS = frozenset(
    {"tenant", "document_id", "run_id", "content_hash", "version", "kind", "file_type", "page"}
)
TEXT_KINDS = [ElementKind.TEXT.value, ElementKind.TABLE.value]
IMAGE_KINDS = [ElementKind.IMAGE.value, ElementKind.PAGE.value]


@dataclass(frozen=True)
class SearchFilters:
    """Restrict a search to documents, element kinds, a page range or payload values."""

    document_ids: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    file_types: tuple[str, ...] = ()
    page_from: int | None = None
    page_to: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_point_filter(self, tenant: str) -> PointFilter:
        """The store filter, always within ``tenant``: no field a caller sets can widen it."""
        reserved = set(self.metadata) & RESERVED_FIELDS
        if reserved:
            raise InvalidRequestError(
                f"metadata filters cannot set {sorted(reserved)}; use the dedicated filters"
            )
        odd = [key for key in self.metadata if not METADATA_KEY.fullmatch(key)]
        if odd:
            raise InvalidRequestError(
                f"metadata filters name payload fields (letters, digits, _): not {odd[0]!r}"
            )
        numbers = [v for v in self.metadata.values() if type(v) is int]
        numbers += [p for p in (self.page_from, self.page_to) if p is not None]
        if any(not INT64_MIN <= number <= INT64_MAX for number in numbers):
            raise InvalidRequestError("filter integers must fit in 64 bits (the store's)")
        match: dict[str, Any] = dict(self.metadata)
        if self.document_ids:
            match["document_id"] = list(self.document_ids)
        if self.kinds:
            unknown = set(self.kinds) - {kind.value for kind in ElementKind}
            if unknown:
                raise InvalidRequestError(
                    f"unknown kinds {sorted(unknown)}; use text, table, image, page"
                )
            match["kind"] = list(self.kinds)
        if self.file_types:
            match["file_type"] = list(self.file_types)
        ranges: dict[str, tuple[float | None, float | None]] = {}
        if self.page_from is not None or self.page_to is not None:
            ranges["page"] = (self.page_from, self.page_to)
        match["tenant"] = tenant  # last: it always holds
        return PointFilter(match=match, ranges=ranges)


@dataclass(frozen=True)
class SearchResult:
    hits: list[Hit]
    rankings: dict[str, list[ScoredPoint]]  # each channel's own ranking, before fusion
    timings: dict[str, float]

    @property
    def per_channel(self) -> dict[str, list[Hit]]:
        return {
            channel: [to_hit(p.point_id, p.score, p.payload) for p in ranked]
            for channel, ranked in self.rankings.items()
        }


def fuse(
    rankings: dict[str, list[ScoredPoint]], weights: dict[str, float], k: int, limit: int
) -> list[Hit]:
    """Channel rankings to the final hits: weighted RRF, then regions merged."""
    fused = merge_regions(reciprocal_rank_fusion(rankings, weights, k), weights, k)
    return [to_hit(f.point_id, f.score, f.payload, f.channels) for f in fused[:limit]]


def _narrow(where: PointFilter, kinds: list[str]) -> PointFilter:
    """Add a kind restriction, intersected with any the caller gave."""
    wanted = where.match.get("kind")
    if wanted is not None:
        kinds = [kind for kind in kinds if kind in wanted] or ["none"]
    return PointFilter(
        match={**where.match, "kind": kinds}, exclude=where.exclude, ranges=where.ranges
    )


def checked_text(text: str, max_chars: int, what: str = "query") -> str:
    """The text stripped; empty, over-long or invalid (a lone surrogate, which no
    tokenizer takes) text is refused with a clear message."""
    text = text.strip()
    if not text:
        raise InvalidRequestError(f"the {what} is empty")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidRequestError(
            f"the {what} is not valid Unicode (a lone surrogate at character {exc.start})"
        ) from exc
    if len(text) > max_chars:
        raise InvalidRequestError(
            f"the {what} has {len(text)} characters; the limit is {max_chars} "
            "(api.max_question_chars)"
        )
    return text


def to_hit(
    point_id: str, score: float, payload: dict[str, Any], channels: dict | None = None
) -> Hit:
    bbox = payload.get("bbox")
    return Hit(
        point_id=point_id,
        score=score,
        document_id=payload["document_id"],
        source=payload.get("source", ""),
        page=int(payload.get("page", 1)),
        kind=ElementKind(payload.get("kind", "text")),
        text=payload.get("text", ""),
        bbox=tuple(bbox) if bbox else None,
        image_id=payload.get("image_id"),
        image_path=payload.get("image_path"),
        caption=payload.get("caption", ""),
        channels=channels or {},
    )


class Retriever:
    """Multi-channel search with weighted reciprocal-rank fusion."""

    def __init__(
        self,
        *,
        store: VectorStore,
        text_embedder: TextEmbedder,
        image_embedder: ImageEmbedder | None,
        sparse: SparseEncoder,
        captioner: Captioner | None,
        settings: RetrievalSettings,
        max_query_chars: int = 2000,
    ) -> None:
        self._store = store
        self._text = text_embedder
        self._image = image_embedder
        self._sparse = sparse
        self._captioner = captioner
        self.settings = settings
        self.max_query_chars = max_query_chars

    def channels(self) -> list[str]:
        """The channels this retriever can search, given its models and weights."""
        weights = self.settings.weights()
        available = [c for c in CHANNELS if weights[c] > 0]
        return [c for c in available if c != "image" or self._image is not None]

    def search(
        self,
        query: str,
        *,
        tenant: str,
        limit: int | None = None,
        filters: SearchFilters | None = None,
        channels: Sequence[str] | None = None,
    ) -> SearchResult:
        """Search the tenant's points on every (or the given) channel with a text query and
        fuse the rankings."""
        started = time.perf_counter()
        query = checked_text(query, self.max_query_chars)
        chosen = self._choose(channels)
        vectors: dict[str, Any] = {}
        if {"text", "caption"} & set(chosen):
            vectors["dense"] = self._text.embed_query(query).tolist()
        if "sparse" in chosen:
            vectors["sparse"] = self._sparse.embed_query(query)
        if "image" in chosen and self._image is not None:
            vectors["image"] = self._image.embed_query(query).tolist()
        embedded = time.perf_counter()
        return self._run(chosen, vectors, tenant, limit, filters, started, embedded)

    def search_image(
        self,
        image: Image.Image,
        *,
        tenant: str,
        limit: int | None = None,
        filters: SearchFilters | None = None,
    ) -> SearchResult:
        """Image as the query: its pixels against stored pixels (image -> image), and its
        caption (or OCR text) against the text channels (image -> caption)."""
        started = time.perf_counter()
        vectors: dict[str, Any] = {}
        chosen = []
        if self._image is not None:
            vectors["image"] = self._image.embed_images([image])[0].tolist()
            chosen.append("image")
        described = self._captioner.caption([image])[0] if self._captioner else ""
        if described.strip():
            vectors["dense"] = self._text.embed_query(described).tolist()
            vectors["sparse"] = self._sparse.embed_query(described)
            chosen += ["text", "sparse", "caption"]
        if not chosen:
            raise InvalidRequestError("searching by image needs image_embedder or a captioner")
        embedded = time.perf_counter()
        return self._run(chosen, vectors, tenant, limit, filters, started, embedded)

    def _choose(self, channels: Sequence[str] | None) -> list[str]:
        available = self.channels()
        if channels is None:
            return available
        unknown = set(channels) - set(CHANNELS)
        if unknown:
            raise InvalidRequestError(
                f"unknown channels {sorted(unknown)}; valid: {', '.join(CHANNELS)}"
            )
        return [c for c in channels if c in available]

    def _run(
        self,
        chosen: list[str],
        vectors: dict[str, Any],
        tenant: str,
        limit: int | None,
        filters: SearchFilters | None,
        started: float,
        embedded: float,
    ) -> SearchResult:
        where = (filters or SearchFilters()).to_point_filter(tenant)
        candidates = max(self.settings.candidates, limit or self.settings.limit)
        plans = {
            "text": (TEXT_VECTOR, "dense", _narrow(where, TEXT_KINDS)),
            "sparse": (SPARSE_VECTOR, "sparse", where),
            "caption": (TEXT_VECTOR, "dense", _narrow(where, IMAGE_KINDS)),
            "image": (IMAGE_VECTOR, "image", _narrow(where, IMAGE_KINDS)),
        }
        active = [c for c in chosen if plans[c][1] in vectors]
        queries = [
            ChannelQuery(plans[c][0], vectors[plans[c][1]], candidates, plans[c][2]) for c in active
        ]
        rankings: dict[str, list[ScoredPoint]] = dict(
            zip(active, self._store.search(queries), strict=True)
        )
        searched = time.perf_counter()
        hits = fuse(
            rankings, self.settings.weights(), self.settings.rrf_k, limit or self.settings.limit
        )
        timings = {
            "embed_s": embedded - started,
            "search_s": searched - embedded,
            "total_s": time.perf_counter() - started,
        }
        return SearchResult(hits=hits, rankings=rankings, timings=timings)
