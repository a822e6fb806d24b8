"""Request and response bodies: pydantic at the HTTP edge, library dataclasses inside.

Every request is bounded here, so no request can make the service do unbounded work:
lists, strings, integers (int64, as the store takes them) and, through
`RequestBody`, the Unicode of every string (a JSON ``\\ud800`` escape decodes to a lone
surrogate that no tokenizer, store or JSON encoder takes). Question and query length
are a setting (``api.max_question_chars``), checked by the library; the body as a whole
by `api.limits.MAX_JSON_BYTES`.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from mmrag.channels import channel_names
from mmrag.jobs import IngestJob, JobState
from mmrag.retrieval import INT64_MAX, INT64_MIN, METADATA_KEY, SearchFilters
from mmrag.types import Answer, Citation, DocumentRecord, DocumentStatus, ElementKind, Hit

MAX_IDS = 1000  # document ids in one filter
MAX_NAMES = 16  # kinds, file types, channels
MAX_ID_CHARS = 256
MAX_METADATA = 32
MAX_METADATA_KEY_CHARS = 256
MAX_METADATA_VALUE_CHARS = 1024

Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
Page = Annotated[int, Field(ge=1, le=INT64_MAX)]
KindName = Annotated[
    str, Field(max_length=32, json_schema_extra={"enum": [k.value for k in ElementKind]})
]
# The registered channels when the schema is built (an add-on channel registered before
# the app starts is listed too); the retriever checks the name either way.
ChannelName = Annotated[str, Field(max_length=32, json_schema_extra={"enum": channel_names()})]
FileTypeName = Annotated[str, Field(min_length=1, max_length=32)]
MetadataKey = Annotated[str, Field(max_length=MAX_METADATA_KEY_CHARS, pattern=METADATA_KEY.pattern)]


def _metadata_value(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """One message for the three kinds a value may be (pydantic gives one per kind)."""
    try:
        return handler(value)
    except ValidationError as exc:
        raise PydanticCustomError(
            "metadata_value",
            "a metadata value is a string of at most {chars} characters, a 64-bit integer "
            "or a boolean",
            {"chars": MAX_METADATA_VALUE_CHARS},
        ) from exc


MetadataValue = Annotated[
    Int64 | bool | Annotated[str, Field(max_length=MAX_METADATA_VALUE_CHARS)],
    WrapValidator(_metadata_value),
]


def unicode_problem(value: Any) -> str | None:
    """Where decoded JSON holds a string that is not valid Unicode (a lone surrogate),
    or None. Iterative: as deep as the JSON parser went, never a RecursionError."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str) and not _valid_unicode(item):
            return where or "the body"
        if isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and not _valid_unicode(key):
                    return f"a key of {where or 'the body'}"
                stack.append((f"{where}.{key}" if where else str(key), child))
        elif isinstance(item, list):
            stack.extend((f"{where}[{index}]", child) for index, child in enumerate(item))
    return None


def _valid_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")  # refuses exactly the lone surrogates
    except UnicodeEncodeError:
        return False
    return True


class StrictModel(BaseModel):
    """Strictly typed, as the schema says: ``"stream": 0`` is no boolean, ``"10"`` no
    integer."""

    model_config = ConfigDict(strict=True)


class RequestBody(StrictModel):
    """A JSON request body: refused (400) when any string in it is not valid Unicode."""

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        where = unicode_problem(data)
        if where is not None:
            raise PydanticCustomError(
                "invalid_unicode", "invalid Unicode (a lone surrogate) in {where}", {"where": where}
            )
        return data


class Filters(StrictModel):
    document_ids: list[Id] = Field(
        default_factory=list, max_length=MAX_IDS, description="only these documents"
    )
    kinds: list[KindName] = Field(
        default_factory=list, max_length=MAX_NAMES, description="text, table, image, page"
    )
    file_types: list[FileTypeName] = Field(
        default_factory=list, max_length=MAX_NAMES, description="pdf, docx, pptx, ..."
    )
    page_from: Page | None = Field(None, description="only from this page on")
    page_to: Page | None = Field(None, description="only up to this page")
    metadata: dict[MetadataKey, MetadataValue] = Field(
        default_factory=dict,
        max_length=MAX_METADATA,
        description="exact payload values, by field name",
        json_schema_extra={"additionalProperties": False},  # names match the pattern
    )

    def to_library(self) -> SearchFilters:
        return SearchFilters(
            document_ids=tuple(self.document_ids),
            kinds=tuple(self.kinds),
            file_types=tuple(self.file_types),
            page_from=self.page_from,
            page_to=self.page_to,
            metadata=dict(self.metadata),
        )


class SearchRequest(RequestBody):
    query: str = Field(min_length=1, description="what to look for (api.max_question_chars)")
    limit: int = Field(10, ge=1, le=100, description="hits returned")
    filters: Filters = Field(default_factory=Filters, description="what to search within")
    channels: list[ChannelName] | None = Field(
        None, max_length=MAX_NAMES, description="text, sparse, caption, image"
    )


class AskRequest(RequestBody):
    question: str = Field(min_length=1, description="at most api.max_question_chars characters")
    filters: Filters = Field(default_factory=Filters, description="what to search within")
    stream: bool = Field(False, description="Server-Sent Events: retrieval, token, citation, done")


class ChannelRank(BaseModel):
    rank: int = Field(description="the hit's place in that channel's ranking, from 1")
    score: float = Field(description="that channel's similarity score")


DocumentIdOut = Annotated[str, Field(description="the document's id")]
SourceOut = Annotated[
    str, Field(description="where the document came from: its path, or upload:<name>")
]
PageOut = Annotated[int, Field(description="the page (slide, image frame), from 1")]
KindOut = Annotated[ElementKind, Field(description="what the point stands for")]
BBoxOut = Annotated[
    list[float] | None,
    Field(description="x0, y0, x1, y1 on the page from its top-left, in PDF points or pixels"),
]
ImageIdOut = Annotated[str | None, Field(description="the stored image, for image and page hits")]


class HitOut(BaseModel):
    id: str = Field(description="the stored point's id")
    score: float = Field(
        description="the fused score (retrieval.fusion: distribution-based or reciprocal-rank), "
        "or the reranker's"
    )
    document_id: DocumentIdOut
    source: SourceOut
    page: PageOut
    kind: KindOut
    text: str = Field(description="the passage; for an image its caption and OCR text")
    bbox: BBoxOut
    image_id: ImageIdOut
    image_url: str | None = Field(description="the image, for image and page hits")
    page_url: str | None = Field(description="the region cropped from its page image (a box)")
    channels: dict[str, ChannelRank] = Field(description="where each channel ranked the hit")

    @classmethod
    def of(cls, hit: Hit) -> HitOut:
        return cls.model_validate({**hit.as_dict(), **evidence_urls(hit)})


def image_url(image_id: str | None) -> str | None:
    return f"/v1/images/{image_id}" if image_id else None


def evidence_urls(item: Hit | Citation) -> dict[str, str | None]:
    """Where a client can show a hit's or citation's evidence: the image, and the region
    cropped from its page (page images exist for PDF and image documents, whose
    regions have boxes)."""
    region = None
    if item.bbox is not None:
        box = ",".join(f"{value:g}" for value in item.bbox)
        region = f"/v1/documents/{item.document_id}/pages/{item.page}?bbox={box}"
    return {"image_url": image_url(item.image_id), "page_url": region}


TimingsOut = Annotated[dict[str, float], Field(description="seconds spent, by stage")]


class SearchResponse(BaseModel):
    hits: list[HitOut] = Field(description="best first")
    timings: TimingsOut


class RegionOut(BaseModel):
    kind: KindOut
    bbox: BBoxOut
    text: str = Field(description="the indexed text (an image's caption and OCR text)")
    image_id: ImageIdOut
    image_url: str | None = Field(description="the stored image")

    @classmethod
    def of(cls, payload: dict[str, Any]) -> RegionOut:
        image_id = payload.get("image_id")
        return cls(
            kind=ElementKind(payload.get("kind", "text")),
            bbox=payload.get("bbox"),
            text=str(payload.get("text", "")),
            image_id=image_id,
            image_url=image_url(image_id),
        )


class PageRegions(BaseModel):
    document_id: DocumentIdOut
    page: PageOut
    regions: list[RegionOut] = Field(description="in reading order")


class CitationOut(BaseModel):
    marker: int = Field(description="the n of the [n] in the answer")
    document_id: DocumentIdOut
    source: SourceOut
    page: PageOut
    kind: KindOut
    bbox: BBoxOut
    text: str = Field(description="the cited passage, or the image's caption")
    image_id: ImageIdOut
    image_url: str | None = Field(description="the cited image, for image and page citations")
    page_url: str | None = Field(description="the cited region cropped from its page image")

    @classmethod
    def of(cls, citation: Citation) -> CitationOut:
        return cls.model_validate({**citation.as_dict(), **evidence_urls(citation)})


AbstainedOut = Annotated[
    bool, Field(description="the documents did not hold enough to answer; nothing is cited")
]


class AskResponse(BaseModel):
    question: str = Field(description="the question answered")
    answer: str = Field(description="the answer, its claims marked [n]")
    abstained: AbstainedOut
    citations: list[CitationOut] = Field(description="one per [n] kept in the answer")
    sources: list[HitOut] = Field(description="every hit the answerer was shown")
    timings: TimingsOut

    @classmethod
    def of(cls, answer: Answer) -> AskResponse:
        return cls(
            question=answer.question,
            answer=answer.text,
            abstained=answer.abstained,
            citations=[CitationOut.of(c) for c in answer.citations],
            sources=[HitOut.of(h) for h in answer.sources],
            timings=answer.timings,
        )


FilenameOut = Annotated[str, Field(description="the name shown: the file's or the upload's")]


class DocumentOut(BaseModel):
    id: DocumentIdOut
    path: str = Field(description="the file's path when ingested from disk, upload:<name> else")
    filename: FilenameOut
    status: DocumentStatus = Field(description="where its indexing stands")
    version: int = Field(description="1, then one more for each changed content ingested")
    file_type: str = Field(description="pdf, docx, pptx, html, markdown, text or image")
    error: str = Field(description="why it failed (status failed), else empty")
    warnings: list[str] = Field(description="what was skipped or degraded while indexing it")
    pages: int = Field(description="pages, slides or image frames")
    chunks: int = Field(description="text chunks indexed")
    images: int = Field(description="images indexed (figures, photos, page renders)")
    points: int = Field(description="points in the store")
    created_at: str | None = Field(description="first submitted (ISO 8601)")
    updated_at: str | None = Field(description="last changed (ISO 8601)")

    @classmethod
    def of(cls, record: DocumentRecord) -> DocumentOut:
        return cls(**record.as_dict())


class DocumentList(BaseModel):
    documents: list[DocumentOut] = Field(description="this page of them, newest first")
    total: int = Field(description="documents of the tenant in all (for paging)")


class Uploaded(BaseModel):
    id: DocumentIdOut
    filename: FilenameOut
    status: DocumentStatus = Field(description="queued, or indexed when unchanged")
    job_id: str | None = Field(description="the ingest job; null when unchanged")


class JobProgressOut(BaseModel):
    stage: str = Field(description="what the job is doing: parsing, captioning, embedding, ...")
    pages: int = Field(description="pages done")
    pages_total: int = Field(description="pages in the file (0 until known)")
    chunks: int = Field(description="text chunks indexed so far")
    images: int = Field(description="images indexed so far")


class JobOut(BaseModel):
    id: str = Field(description="the job's id")
    document_id: DocumentIdOut
    filename: FilenameOut
    state: JobState = Field(description="queued, running, done, failed, cancelled")
    version: int = Field(description="the document version it indexes")
    attempts: int = Field(description="deliveries that started (a dead worker's included)")
    retries: int = Field(description="transient failures retried")
    error: str = Field(description="why it failed, else empty")
    progress: JobProgressOut = Field(description="how far it has come")
    created_at: float = Field(description="queued at (Unix time)")
    started_at: float | None = Field(description="first started at (Unix time)")
    finished_at: float | None = Field(description="ended at (Unix time)")
    seconds: float = Field(description="running time so far, or in all")

    @classmethod
    def of(cls, job: IngestJob) -> JobOut:
        return cls.model_validate(job.as_dict())


class UploadResponse(BaseModel):
    documents: list[Uploaded] = Field(description="one per file sent, in order")


class ErrorBody(BaseModel):
    type: str = Field(description="the kind of error, e.g. not_found, validation, too_large")
    message: str = Field(description="what went wrong, for a person")
    details: list[Any] | None = Field(None, description="for validation: each field refused")


class ErrorResponse(BaseModel):
    error: ErrorBody = Field(description="every error the API answers has this shape")


class Readiness(BaseModel):
    status: str = Field(description="ready, or not ready")
    checks: dict[str, str] = Field(description="each part: ok, or what is wrong")


# Server-Sent Events: each frame is ``event: <name>`` and ``data: <one of these, as JSON>``.


class RetrievalEvent(BaseModel):
    hits: list[HitOut] = Field(description="what the answer will be written from")


class TokenEvent(BaseModel):
    text: str = Field(description="the next piece of the answer")


class DoneEvent(BaseModel):
    answer: str = Field(description="the whole answer")
    abstained: AbstainedOut
    timings: TimingsOut


class StreamError(BaseModel):
    type: str = Field(description="as an error response's type")
    message: str = Field(description="what went wrong")
    status: int = Field(description="the status the request would have had, had it not streamed")


class ErrorEvent(BaseModel):
    error: StreamError = Field(description="the answer stopped here")


class DeletedEvent(BaseModel):
    id: DocumentIdOut


ASK_EVENTS: dict[str, type[BaseModel]] = {
    "retrieval": RetrievalEvent,
    "token": TokenEvent,
    "citation": CitationOut,
    "done": DoneEvent,
    "error": ErrorEvent,
}
DOCUMENT_EVENTS: dict[str, type[BaseModel]] = {
    "progress": JobOut,
    "document": DocumentOut,
    "deleted": DeletedEvent,
}
