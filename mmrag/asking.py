"""Ask: retrieve, decide whether the evidence can support an answer, let the answerer
look at the top text and images, and map its [n] markers to citations.

`Asker.events` yields, in order: one ``retrieval`` event (the hits), ``token`` events
(the answer as it is written), one ``citation`` event per cited source, and a final
``done`` event carrying the whole `Answer` with timings.

A marker becomes a citation only when the answerer wrote it for a claim the source
supports (`mmrag.citations`): source text reaches the answerer neutralised, and the
answer is vetted as it streams; a dropped marker leaves the answer text as well.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image

from mmrag.blobs import BlobStore
from mmrag.citations import CitationCheck
from mmrag.errors import DocumentNotFoundError
from mmrag.models.base import Answerer, Source
from mmrag.retrieval import Retriever, SearchFilters, checked_text
from mmrag.settings import AnswererSettings
from mmrag.store import ScoredPoint
from mmrag.types import Answer, Citation, Hit

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AskEvent:
    kind: str  # retrieval | token | citation | done
    data: Any  # list[Hit] | str | Citation | Answer


def support(
    rankings: Mapping[str, Sequence[ScoredPoint]], channels: Collection[str]
) -> float | None:
    """The best dense-text similarity any candidate reached (``channels``: those whose
    scores are the text embedder's cosines); 0 when they ran and found nothing above
    `retrieval.min_dense_score`; None when none of them ran."""
    searched = [channel for channel in channels if channel in rankings]
    if not searched:
        return None
    return max((point.score for channel in searched for point in rankings[channel]), default=0.0)


def cite(numbers: list[int], sources: list[Source]) -> tuple[Citation, ...]:
    """Citations for the given source numbers, in order; numbers not shown are skipped."""
    by_number = {source.number: source.hit for source in sources}
    citations = []
    for number in dict.fromkeys(numbers):
        hit = by_number.get(number)
        if hit is not None:
            citations.append(
                Citation(
                    marker=number,
                    document_id=hit.document_id,
                    source=hit.source,
                    page=hit.page,
                    kind=hit.kind,
                    text=(hit.caption or hit.text) if hit.is_image else hit.text,
                    bbox=hit.bbox,
                    image_id=hit.image_id,
                    image_path=hit.image_path,
                )
            )
    return tuple(citations)


def answer_events(answerer: Answerer, question: str, sources: list[Source]) -> Iterator[AskEvent]:
    """The answerer's answer as ``token`` events, its [n] markers vetted on the way
    (`CitationCheck`), then one ``citation`` event per source it kept."""
    check = CitationCheck(sources, question)
    for piece in answerer.stream(question, sources):
        if shown := check.feed(piece):
            yield AskEvent("token", shown)
    if rest := check.close():
        yield AskEvent("token", rest)
    if check.dropped:
        logger.info("dropped unsupported citation markers: %s", sorted(set(check.dropped)))
    for citation in cite(check.cited, sources):
        yield AskEvent("citation", citation)


class Asker:
    def __init__(
        self,
        *,
        retriever: Retriever,
        answerer: Answerer,
        settings: AnswererSettings,
        blobs: BlobStore,
    ) -> None:
        self._retriever = retriever
        self._answerer = answerer
        self._settings = settings
        self._blobs = blobs

    def ask(self, question: str, *, tenant: str, filters: SearchFilters | None = None) -> Answer:
        """The whole answer at once, from the tenant's documents."""
        for event in self.events(question, tenant=tenant, filters=filters):
            if event.kind == "done":
                answer: Answer = event.data
                return answer
        raise AssertionError("events() always ends with a done event")  # pragma: no cover

    def events(
        self, question: str, *, tenant: str, filters: SearchFilters | None = None
    ) -> Iterator[AskEvent]:
        question = self._check(question)
        started = time.perf_counter()
        result = self._retriever.search(
            question, tenant=tenant, limit=self._settings.max_sources, filters=filters
        )
        hits = result.hits
        retrieved = time.perf_counter()
        yield AskEvent("retrieval", hits)
        best = support(result.rankings, self._retriever.text_similarity_channels())
        pieces: list[str] = []
        citations: list[Citation] = []
        if not hits or (best is not None and best < self._settings.min_support):
            sources: list[Source] = []
            events = iter([AskEvent("token", self._settings.abstain_message)])
        else:
            sources = self._sources(hits)
            events = answer_events(self._answerer, question, sources)
        for event in events:
            if event.kind == "token":
                pieces.append(event.data)
            else:
                citations.append(event.data)
            yield event
        text = "".join(pieces).strip()
        finished = time.perf_counter()
        timings = {
            "retrieval_s": retrieved - started,
            "generation_s": finished - retrieved,
            "total_s": finished - started,
        }
        yield AskEvent(
            "done",
            Answer(
                question=question,
                text=text,
                citations=tuple(citations),
                sources=tuple(s.hit for s in sources),
                abstained=not sources,
                timings=timings,
            ),
        )

    def _check(self, question: str) -> str:
        return checked_text(question, self._retriever.max_query_chars, "question")

    def _sources(self, hits: list[Hit]) -> list[Source]:
        """Number the hits; the best ``max_images`` image hits carry their pixels."""
        sources, images = [], 0
        for number, hit in enumerate(hits, start=1):
            image = None
            if hit.image_path and images < self._settings.max_images:
                image = self._load(hit.image_path)
                images += image is not None
            sources.append(Source(number=number, hit=hit, image=image))
        return sources

    def _load(self, key: str) -> Image.Image | None:
        try:
            path = self._blobs.path(key)
        except DocumentNotFoundError:
            return None  # deleted meanwhile: the text still stands
        with Image.open(path) as image:
            copy = image.convert("RGB")
        side = self._settings.image_max_side
        copy.thumbnail((side, side))  # bounds the image tokens the VLM spends
        return copy
