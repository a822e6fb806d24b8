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
from mmrag.jobs import IngestJob
from mmrag.retrieval import INT64_MAX, INT64_MIN, METADATA_KEY, SearchFilters
from mmrag.types import Answer, Citation, DocumentRecord, ElementKind, Hit

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
    page_from: Page | None = None
    page_to: Page | None = None
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
    limit: int = Field(10, ge=1, le=100)
    filters: Filters = Field(default_factory=Filters)
    channels: list[ChannelName] | None = Field(
        None, max_length=MAX_NAMES, description="text, sparse, caption, image"
    )


class AskRequest(RequestBody):
    question: str = Field(min_length=1, description="at most api.max_question_chars characters")
    filters: Filters = Field(default_factory=Filters)
    stream: bool = Field(False, description="Server-Sent Events: retrieval, token, citation, done")


class ChannelRank(BaseModel):
    rank: int
    score: float


class HitOut(BaseModel):
    id: str
    score: float
    document_id: str
    source: str
    page: int
    kind: str
    text: str
    bbox: list[float] | None
    image_id: str | None
    image_url: str | None = Field(description="the image, for image and page hits")
    page_url: str | None = Field(description="the region cropped from its page image (a box)")
    channels: dict[str, ChannelRank]

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


class SearchResponse(BaseModel):
    hits: list[HitOut]
    timings: dict[str, float]


class RegionOut(BaseModel):
    kind: str
    bbox: list[float] | None = Field(description="on the page, in its unit (see page images)")
    text: str
    image_id: str | None
    image_url: str | None

    @classmethod
    def of(cls, payload: dict[str, Any]) -> RegionOut:
        image_id = payload.get("image_id")
        return cls(
            kind=str(payload.get("kind", "")),
            bbox=payload.get("bbox"),
            text=str(payload.get("text", "")),
            image_id=image_id,
            image_url=image_url(image_id),
        )


class PageRegions(BaseModel):
    document_id: str
    page: int
    regions: list[RegionOut] = Field(description="in reading order")


class CitationOut(BaseModel):
    marker: int
    document_id: str
    source: str
    page: int
    kind: str
    bbox: list[float] | None
    text: str
    image_id: str | None
    image_url: str | None = Field(description="the cited image, for image and page citations")
    page_url: str | None = Field(description="the cited region cropped from its page image")

    @classmethod
    def of(cls, citation: Citation) -> CitationOut:
        return cls.model_validate({**citation.as_dict(), **evidence_urls(citation)})


class AskResponse(BaseModel):
    question: str
    answer: str
    abstained: bool
    citations: list[CitationOut]
    sources: list[HitOut]
    timings: dict[str, float]

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


class DocumentOut(BaseModel):
    id: str
    path: str = Field(description="the file's path when ingested from disk, upload:<name> else")
    filename: str
    status: str
    version: int
    file_type: str
    error: str
    warnings: list[str]
    pages: int
    chunks: int
    images: int
    points: int
    created_at: str | None
    updated_at: str | None

    @classmethod
    def of(cls, record: DocumentRecord) -> DocumentOut:
        return cls(**record.as_dict())


class DocumentList(BaseModel):
    documents: list[DocumentOut]
    total: int = Field(description="documents of the tenant in all (for paging)")


class Uploaded(BaseModel):
    id: str
    filename: str
    status: str
    job_id: str | None = Field(description="the ingest job; null when unchanged")


class JobProgressOut(BaseModel):
    stage: str
    pages: int
    pages_total: int
    chunks: int
    images: int


class JobOut(BaseModel):
    id: str
    document_id: str
    filename: str
    state: str = Field(description="queued, running, done, failed, cancelled")
    version: int
    attempts: int = Field(description="deliveries that started (a dead worker's included)")
    retries: int = Field(description="transient failures retried")
    error: str
    progress: JobProgressOut
    created_at: float
    started_at: float | None
    finished_at: float | None
    seconds: float

    @classmethod
    def of(cls, job: IngestJob) -> JobOut:
        return cls.model_validate(job.as_dict())


class UploadResponse(BaseModel):
    documents: list[Uploaded]


class ErrorBody(BaseModel):
    type: str
    message: str
    details: list[Any] | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class Readiness(BaseModel):
    status: str = Field(description="ready, or not ready")
    checks: dict[str, str] = Field(description="each part: ok, or what is wrong")


# Server-Sent Events: each frame is ``event: <name>`` and ``data: <one of these, as JSON>``.


class RetrievalEvent(BaseModel):
    hits: list[HitOut]


class TokenEvent(BaseModel):
    text: str


class DoneEvent(BaseModel):
    answer: str
    abstained: bool
    timings: dict[str, float]


class StreamError(BaseModel):
    type: str
    message: str
    status: int = Field(description="the status the request would have had, had it not streamed")


class ErrorEvent(BaseModel):
    error: StreamError


class DeletedEvent(BaseModel):
    id: str


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
