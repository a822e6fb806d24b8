"""OpenAI-compatible chat: ``POST /v1/chat/completions`` and ``GET /v1/models``.

Any OpenAI client or chat UI can use mmrag as a model named ``mmrag``. Each request
answers the conversation's last user turn from the caller's tenant's documents; a
follow-up is first made standalone (`mmrag.conversation`). The reply is the cited
answer with footnotes (``[1] report.pdf, page 2: URL``); the citations also travel as
an extension field, ``citations`` (with absolute URLs of the cited image or page
region, signed when the API has keys: `api.signing`), and ``mmrag`` says what was
searched and whether the answer abstained.
Streaming sends OpenAI's ``chat.completion.chunk`` objects, then ``data: [DONE]``.

Sampling parameters (``temperature``, ``max_tokens``, ...) are accepted so that clients
that always send them work, and are not applied: the answerer's settings decide.
"""

from __future__ import annotations

import functools
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.deps import ReadScope, ServicesDep
from api.errors import status_of
from api.limits import BoundedBodyRoute
from api.openapi import error_responses
from api.schemas import CitationOut, Filters, RequestBody
from api.signing import sign
from api.sse import sse_response
from mmrag.conversation import Turn, standalone_question
from mmrag.errors import InvalidRequestError, MmragError, NotFoundError
from mmrag.types import Answer, Citation

router = APIRouter(prefix="/v1", tags=["openai"], route_class=BoundedBodyRoute)
logger = logging.getLogger("mmrag.api")
MODEL_ID = "mmrag"
MAX_MESSAGES = 200
NOT_APPLIED = "accepted for compatibility, not applied: the answerer's settings decide"


class ContentPart(BaseModel):
    type: str = Field(max_length=32, description="text (images: POST /v1/search/image)")
    text: str | None = Field(None, description="the text of a text part")


class ChatMessage(BaseModel):
    role: Literal["system", "developer", "user", "assistant", "tool"] = Field(
        description="who said it; the last user message is answered"
    )
    content: str | list[ContentPart] | None = Field(None, description="text, or text parts")
    name: str | None = Field(None, max_length=256, description="accepted, not used")

    def text(self) -> str:
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        kinds = {part.type for part in self.content} - {"text"}
        if kinds:
            raise InvalidRequestError(
                f"chat messages take text parts only, not {sorted(kinds)}; to search with an "
                "image, POST it to /v1/search/image"
            )
        return "\n".join(part.text or "" for part in self.content)


class StreamOptions(BaseModel):
    include_usage: bool = Field(False, description="end the stream with a usage chunk")


class ChatRequest(RequestBody):
    """OpenAI's chat request; numbers are taken as OpenAI clients send them (lax)."""

    model_config = ConfigDict(strict=False, extra="forbid")

    model: str = Field(max_length=128, description=f"{MODEL_ID!r} (GET /v1/models)")
    messages: list[ChatMessage] = Field(
        min_length=1, max_length=MAX_MESSAGES, description="the conversation, oldest first"
    )
    stream: bool = Field(False, description="send chat.completion.chunk events")
    stream_options: StreamOptions | None = Field(None, description="what the stream adds")
    filters: Filters = Field(
        default_factory=Filters, description="mmrag extension: restrict what is searched"
    )
    n: int | None = Field(None, ge=1, le=1, description="one choice only")
    # Accepted for compatibility, not applied (the answerer's settings decide):
    temperature: float | None = Field(None, description=NOT_APPLIED)
    top_p: float | None = Field(None, description=NOT_APPLIED)
    max_tokens: int | None = Field(None, description=NOT_APPLIED)
    max_completion_tokens: int | None = Field(None, description=NOT_APPLIED)
    presence_penalty: float | None = Field(None, description=NOT_APPLIED)
    frequency_penalty: float | None = Field(None, description=NOT_APPLIED)
    seed: int | None = Field(None, description=NOT_APPLIED)
    stop: str | list[str] | None = Field(None, description=NOT_APPLIED)
    user: str | None = Field(None, max_length=256, description=NOT_APPLIED)


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = Field("assistant", description="always assistant")
    content: str = Field(description="the answer, then its footnotes")


class Choice(BaseModel):
    index: int = Field(0, description="always 0: one choice")
    message: AssistantMessage = Field(description="the reply")
    finish_reason: Literal["stop"] = Field("stop", description="always stop")


class Usage(BaseModel):
    prompt_tokens: int = Field(0, description="not counted: 0")
    completion_tokens: int = Field(0, description="not counted: 0")
    total_tokens: int = Field(0, description="not counted: 0")


class SearchedFor(BaseModel):
    query: str = Field(description="what was searched: the last user turn, made standalone")
    abstained: bool = Field(description="the documents did not hold enough to answer")


class ChatCompletion(BaseModel):
    id: str = Field(description="chatcmpl-<id>")
    object: Literal["chat.completion"] = Field("chat.completion", description="the type")
    created: int = Field(description="Unix time")
    model: str = Field(description=MODEL_ID)
    choices: list[Choice] = Field(description="one")
    usage: Usage = Field(description="zeros: tokens are not counted")
    citations: list[CitationOut] = Field(description="mmrag extension")
    mmrag: SearchedFor = Field(description="mmrag extension: what was searched")


class ModelCard(BaseModel):
    id: str = Field(description="the name to ask for")
    object: Literal["model"] = Field("model", description="the type")
    created: int = Field(description="Unix time (0)")
    owned_by: str = Field(description="mmrag")


class ModelList(BaseModel):
    object: Literal["list"] = Field("list", description="the type")
    data: list[ModelCard] = Field(description="the models")


@router.get("/models", response_model=ModelList, responses=error_responses(401, 403))
def list_models(scope: ReadScope) -> ModelList:
    """The one model this service answers as."""
    return ModelList(data=[ModelCard(id=MODEL_ID, created=0, owned_by="mmrag")])


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses={
        200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}},
        **error_responses(400, 401, 403, 404, 413, 502, 503, 504),
    },
)
async def chat_completions(
    body: ChatRequest, request: Request, services: ServicesDep, scope: ReadScope
) -> Any:
    """Answer the conversation's last user turn, OpenAI-style (``stream`` for chunks)."""
    if body.model != MODEL_ID:  # OpenAI answers an unknown model with 404
        raise NotFoundError(
            f"no model named {body.model!r}: this service answers as {MODEL_ID!r} (GET /v1/models)"
        )
    turns = [Turn(message.role, message.text()) for message in body.messages]
    base = str(request.base_url).rstrip("/")
    question = await run_in_threadpool(
        standalone_question,
        turns,
        services.answerer,
        services.settings.api.max_question_chars,
    )
    filters = body.filters.to_library()
    events = services.asker.events(question, tenant=scope.tenant, filters=filters)
    first = await run_in_threadpool(next, events)  # a bad question fails here, with a status
    reply = _Reply(
        question, base, functools.partial(sign, tenant=scope.tenant, api=services.settings.api)
    )
    if not body.stream:
        for event in [first, *await run_in_threadpool(list, events)]:
            reply.take(event)
        return reply.completion()
    usage = body.stream_options is not None and body.stream_options.include_usage
    chunks = reply.chunks(first, events, include_usage=usage)
    return sse_response(chunks, services.settings.api.sse_ping_s)


class _Reply:
    """One answer, built from the asker's events, as a completion or as chunks."""

    def __init__(self, question: str, base: str, sign: Callable[[str], str]) -> None:
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.question, self.base, self.sign = question, base, sign
        self.text, self.citations, self.answer = "", list[CitationOut](), None

    def take(self, event: Any) -> str:
        """Fold one event in; the text it adds to the reply."""
        if event.kind == "token":
            self.text += event.data
            return str(event.data)
        if event.kind == "citation":
            self.citations.append(self._citation(event.data))
        elif event.kind == "done":
            self.answer = event.data
            return self._footnotes()
        return ""

    def _citation(self, citation: Citation) -> CitationOut:
        """The citation with absolute URLs a chat UI can follow (signed when the API
        has keys: the UI cannot send one with an image)."""
        out = CitationOut.of(citation)
        return out.model_copy(
            update={
                "image_url": out.image_url and self.base + self.sign(out.image_url),
                "page_url": out.page_url and self.base + self.sign(out.page_url),
            }
        )

    def _footnotes(self) -> str:
        lines = []
        for citation in self.citations:
            name = citation.source.removeprefix("upload:").replace("\\", "/").rsplit("/", 1)[-1]
            link = citation.image_url or citation.page_url
            where = f"[{citation.marker}] {name}, page {citation.page}"
            lines.append(f"{where}: {link}" if link else where)
        return "\n\n" + "\n".join(lines) if lines else ""

    def _searched(self) -> SearchedFor:
        abstained = bool(self.answer.abstained) if isinstance(self.answer, Answer) else False
        return SearchedFor(query=self.question, abstained=abstained)

    def completion(self) -> ChatCompletion:
        footnotes = self._footnotes()
        return ChatCompletion(
            id=self.id,
            created=self.created,
            model=MODEL_ID,
            choices=[Choice(message=AssistantMessage(content=self.text.strip() + footnotes))],
            usage=Usage(),
            citations=self.citations,
            mmrag=self._searched(),
        )

    def _chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return self._data(choices=[choice], **extra)

    def _data(self, **fields: Any) -> bytes:
        data = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": MODEL_ID,
            **fields,
        }
        return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()

    def chunks(self, first: Any, rest: Iterator[Any], *, include_usage: bool) -> Iterator[bytes]:
        yield self._chunk({"role": "assistant", "content": ""})
        try:
            for event in _chain(first, rest):
                added = self.take(event)
                if added:
                    yield self._chunk({"content": added})
        except MmragError as exc:
            status, kind = status_of(exc)
            logger.warning("streamed chat answer failed: %s", exc)
            error = {"error": {"message": str(exc), "type": kind, "code": status}}
            yield f"data: {json.dumps(error)}\n\n".encode()
            yield b"data: [DONE]\n\n"
            return
        extension = {
            "citations": [c.model_dump() for c in self.citations],
            "mmrag": self._searched().model_dump(),
        }
        yield self._chunk({}, "stop", **extension)
        if include_usage:  # OpenAI's last chunk when asked: no choices, the usage
            yield self._data(choices=[], usage=Usage().model_dump())
        yield b"data: [DONE]\n\n"


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest
