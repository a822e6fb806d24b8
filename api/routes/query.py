"""POST /v1/search and POST /v1/ask (JSON, or Server-Sent Events when streaming)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import ReadScope, ServicesDep
from api.errors import status_of
from api.limits import BoundedBodyRoute
from api.openapi import error_responses, event_stream
from api.schemas import (
    ASK_EVENTS,
    AskRequest,
    AskResponse,
    CitationOut,
    DoneEvent,
    ErrorEvent,
    HitOut,
    RetrievalEvent,
    SearchRequest,
    SearchResponse,
    StreamError,
    TokenEvent,
)
from api.sse import frame, sse_response
from mmrag.asking import AskEvent
from mmrag.errors import MmragError

router = APIRouter(prefix="/v1", tags=["query"], route_class=BoundedBodyRoute)
logger = logging.getLogger("mmrag.api")


@router.post(
    "/search",
    response_model=SearchResponse,
    responses=error_responses(400, 401, 403, 413, 503),
)
def search(body: SearchRequest, services: ServicesDep, scope: ReadScope) -> SearchResponse:
    """Ranked hits from every channel (dense text, BM25, captions, SigLIP pixels), fused."""
    result = services.retriever.search(
        body.query,
        tenant=scope.tenant,
        limit=body.limit,
        filters=body.filters.to_library(),
        channels=body.channels,
    )
    return SearchResponse(hits=[HitOut.of(hit) for hit in result.hits], timings=result.timings)


@router.post(
    "/ask",
    response_model=AskResponse,
    responses={
        200: {"content": event_stream(ASK_EVENTS)},
        **error_responses(400, 401, 403, 413, 502, 503, 504),
    },
)
def ask(body: AskRequest, services: ServicesDep, scope: ReadScope) -> Any:
    """Answer from retrieved text and images with citations; ``stream`` sends events."""
    filters = body.filters.to_library()
    if not body.stream:
        return AskResponse.of(
            services.asker.ask(body.question, tenant=scope.tenant, filters=filters)
        )
    events = services.asker.events(body.question, tenant=scope.tenant, filters=filters)
    first = next(events)  # a bad question fails here, with a proper status, not mid-stream
    return sse_response(_sse(first, events), services.settings.api.sse_ping_s)


def _sse(first: AskEvent, rest: Iterator[AskEvent]) -> Iterator[bytes]:
    """Frames ``event: <kind>`` / ``data: <json>``; a failure mid-answer becomes an
    ``error`` event (the status line has already been sent)."""
    try:
        yield frame(first.kind, _payload(first).model_dump())
        for event in rest:
            yield frame(event.kind, _payload(event).model_dump())
    except MmragError as exc:
        status, kind = status_of(exc)
        logger.warning("streamed answer failed: %s", exc)
        failure = ErrorEvent(error=StreamError(type=kind, message=str(exc), status=status))
        yield frame("error", failure.model_dump())


def _payload(event: AskEvent) -> BaseModel:
    if event.kind == "retrieval":
        return RetrievalEvent(hits=[HitOut.of(hit) for hit in event.data])
    if event.kind == "token":
        return TokenEvent(text=event.data)
    if event.kind == "citation":
        return CitationOut.of(event.data)
    answer = AskResponse.of(event.data)
    return DoneEvent(answer=answer.answer, abstained=answer.abstained, timings=answer.timings)
