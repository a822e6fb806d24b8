"""Search: encode the query once per named vector, query every channel in one store
round trip, fuse the rankings, optionally rerank.

The channels are the registered ones (`mmrag.channels`): ``text``, ``sparse``,
``caption``, ``image`` and ``page`` ship with mmrag. A channel with weight 0, or whose
model is off, is skipped; text-only and image-only corpora simply leave some channels
empty. Each point is one element, so an image and its caption come back as one hit.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from PIL import Image

from mmrag.channels import Channel
from mmrag.errors import InvalidRequestError
from mmrag.fusion import fuse_rankings, merge_regions, pool_pages, scorer_for
from mmrag.models.base import Captioner, Reranker, RerankItem
from mmrag.settings import FusionMethod, RetrievalSettings
from mmrag.store import PointFilter, ScoredPoint, VectorStore
from mmrag.types import BBox, ChannelScore, ElementKind, Hit

RERANK = "rerank"  # the name a reranker's score goes under in a hit's channels
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# A payload field a metadata filter may name: a plain name (the store reads dots,
# brackets and the like as a path into the payload, and refuses a malformed one).
METADATA_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Payload fields a metadata filter may not name: scope, identity and bookkeeping.
RESERVED_FIELDS = frozenset(
    {"tenant", "document_id", "run_id", "content_hash", "version", "kind", "file_type", "page"}
)


@dataclass(frozen=True)
class SearchFilters:
    """Restrict a search to documents, element kinds, a page range or payload values."""

    document_ids: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    file_types: tuple[str, ...] = ()
    page_from: int | None = None
    page_to: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def checked(self) -> SearchFilters:
        """These filters, or `InvalidRequestError` saying what is wrong with them (before
        any model or store is touched)."""
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
        unknown = set(self.kinds) - {kind.value for kind in ElementKind}
        if unknown:
            raise InvalidRequestError(
                f"unknown kinds {sorted(unknown)}; use text, table, image, page"
            )
        return self

    def to_point_filter(self, tenant: str) -> PointFilter:
        """The store filter, always within ``tenant``: no field a caller sets can widen it."""
        self.checked()
        match: dict[str, Any] = dict(self.metadata)
        if self.document_ids:
            match["document_id"] = list(self.document_ids)
        if self.kinds:
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
    regions: dict[str, BBox] = field(default_factory=dict)  # where a point matched, by id

    @property
    def per_channel(self) -> dict[str, list[Hit]]:
        return {
            channel: [to_hit(p.point_id, p.score, p.payload) for p in ranked]
            for channel, ranked in self.rankings.items()
        }


def fuse(
    rankings: dict[str, list[ScoredPoint]],
    weights: dict[str, float],
    limit: int,
    *,
    method: FusionMethod,
    k: int,
    vectors: dict[str, str] | None = None,
    page_share: float = 0.0,
) -> list[Hit]:
    """Channel rankings to the final hits: weighted fusion by ``method`` (``k``: the RRF
    constant), regions merged (``vectors`` names each channel's searched vector: channels
    sharing one count once per region), then each page's hits pooled
    (`mmrag.fusion.pool_pages`)."""
    scorer = scorer_for(method, rankings, weights, k)
    fused = merge_regions(fuse_rankings(rankings, scorer), scorer, vectors)
    fused = pool_pages(fused, page_share)
    return [to_hit(f.point_id, f.score, f.payload, f.channels) for f in fused[:limit]]


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
    """Multi-channel search, weighted fusion (``retrieval.fusion``) and an optional reranker."""

    def __init__(
        self,
        *,
        store: VectorStore,
        channels: Sequence[Channel],
        captioner: Captioner | None,
        settings: RetrievalSettings,
        reranker: Reranker | None = None,
        rerank_candidates: int = 30,
        max_query_chars: int = 2000,
    ) -> None:
        self._store = store
        self._channels = {channel.name: channel for channel in channels}
        self._captioner = captioner
        self._reranker = reranker
        self._rerank_candidates = rerank_candidates
        self.settings = settings
        self.max_query_chars = max_query_chars

    def channels(self) -> list[str]:
        """The channels this retriever searches, given its models and weights."""
        return [name for name in self._channels if self.settings.weight(name) > 0]

    def weights(self) -> dict[str, float]:
        """The fusion weight of each channel searched."""
        return {name: self.settings.weight(name) for name in self.channels()}

    def text_similarity_channels(self) -> list[str]:
        """Channels whose scores are the dense text embedder's cosine similarities."""
        return [name for name, channel in self._channels.items() if channel.text_similarity]

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
        for channel in chosen:
            if channel.query_key not in vectors:
                vectors[channel.query_key] = channel.encode_query(query)
        embedded = time.perf_counter()
        return self._run(chosen, vectors, query, tenant, limit, filters, started, embedded)

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
        described = self._captioner.caption([image])[0] if self._captioner else ""
        chosen = self._choose(None)
        vectors: dict[str, Any] = {}
        for channel in chosen:
            if channel.query_key not in vectors:
                vectors[channel.query_key] = channel.encode_image_query(image, described)
        if not any(vector is not None for vector in vectors.values()):
            raise InvalidRequestError("searching by image needs image_embedder or a captioner")
        embedded = time.perf_counter()
        text = described if described.strip() else None
        return self._run(chosen, vectors, text, tenant, limit, filters, started, embedded)

    def rank(
        self,
        query: str | None,
        rankings: dict[str, list[ScoredPoint]],
        weights: dict[str, float],
        limit: int,
        rerank_scores: dict[str, float] | None = None,
    ) -> list[Hit]:
        """Rankings to hits: fusion, then the reranker over the fused top (text queries).
        ``rerank_scores`` caches reranker scores by point id across calls (the eval
        harness ranks one query's rankings under several weightings)."""
        vectors = {name: channel.vector for name, channel in self._channels.items()}
        fused_top = partial(
            fuse,
            rankings,
            weights,
            method=self.settings.fusion,
            k=self.settings.rrf_k,
            vectors=vectors,
            page_share=self.settings.page_share,
        )
        if self._reranker is None or query is None:
            return fused_top(limit)
        fused = fused_top(max(limit, self._rerank_candidates))
        head = fused[: self._rerank_candidates]
        cache = rerank_scores if rerank_scores is not None else {}
        todo = [hit for hit in head if hit.point_id not in cache]
        if todo:
            scores = self._reranker.rerank(query, [RerankItem(hit.text) for hit in todo])
            cache.update(zip([hit.point_id for hit in todo], map(float, scores), strict=True))
        order = sorted(head, key=lambda hit: -cache[hit.point_id])
        reranked = [
            replace(hit, channels={**hit.channels, RERANK: ChannelScore(rank, cache[hit.point_id])})
            for rank, hit in enumerate(order, start=1)
        ]
        return (reranked + fused[len(head) :])[:limit]

    def _locate(
        self,
        hits: list[Hit],
        rankings: dict[str, list[ScoredPoint]],
        active: list[Channel],
        vectors: dict[str, Any],
    ) -> dict[str, BBox]:
        """Where on its element each returned hit matched, from the channels that can
        tell (the page channel's best patch); asked only about the hits returned."""
        shown = {hit.point_id for hit in hits}
        regions: dict[str, BBox] = {}
        for channel in active:
            found = [point for point in rankings[channel.name] if point.point_id in shown]
            if found:
                regions.update(channel.locate(found, vectors[channel.query_key], self._store))
        return regions

    def _choose(self, channels: Sequence[str] | None) -> list[Channel]:
        available = self.channels()
        if channels is not None:
            unknown = set(channels) - set(self._channels) - _registered_names()
            if unknown:
                raise InvalidRequestError(
                    f"unknown channels {sorted(unknown)}; valid: {', '.join(_registered_names())}"
                )
            available = [name for name in available if name in channels]
        return [self._channels[name] for name in available]

    def _run(
        self,
        chosen: list[Channel],
        vectors: dict[str, Any],
        query: str | None,
        tenant: str,
        limit: int | None,
        filters: SearchFilters | None,
        started: float,
        embedded: float,
    ) -> SearchResult:
        where = (filters or SearchFilters()).to_point_filter(tenant)
        wanted = limit or self.settings.limit
        active = [channel for channel in chosen if vectors.get(channel.query_key) is not None]
        queries = [
            channel.request(
                vectors[channel.query_key],
                where,
                max(self.settings.candidates_for(channel.name), wanted),
                self.settings.min_dense_score if channel.text_similarity else None,
            )
            for channel in active
        ]
        rankings: dict[str, list[ScoredPoint]] = dict(
            zip([c.name for c in active], self._store.search(queries), strict=True)
        )
        searched = time.perf_counter()
        hits = self.rank(query, rankings, self.weights(), wanted)
        regions = self._locate(hits, rankings, active, vectors)
        hits = [replace(h, bbox=regions[h.point_id]) if h.point_id in regions else h for h in hits]
        timings = {
            "embed_s": embedded - started,
            "search_s": searched - embedded,
            "total_s": time.perf_counter() - started,
        }
        return SearchResult(hits=hits, rankings=rankings, timings=timings, regions=regions)


def _registered_names() -> set[str]:
    from mmrag.channels import channel_names

    return set(channel_names())
