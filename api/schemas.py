"""Request and response bodies: pydantic at the HTTP edge, library dataclasses inside."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from mmrag.jobs import IngestJob
from mmrag.retrieval import SearchFilters
from mmrag.types import Answer, Citation, DocumentRecord, Hit


class Filters(BaseModel):
    document_ids: list[str] = Field(default_factory=list, description="only these documents")
    kinds: list[str] = Field(default_factory=list, description="text, table, image, page")
    file_types: list[str] = Field(default_factory=list, description="pdf, docx, pptx, ...")
    page_from: int | None = Field(None, ge=1)
    page_to: int | None = Field(None, ge=1)
    metadata: dict[str, str | int | bool] = Field(
        default_factory=dict, description="exact payload values"
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


class SearchRequest(BaseModel):
    query: str = Field(description="what to look for")
    limit: int = Field(10, ge=1, le=100)
    filters: Filters = Field(default_factory=Filters)
    channels: list[str] | None = Field(None, description="text, sparse, caption, image")


class AskRequest(BaseModel):
    question: str
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
    image_url: str | None
    channels: dict[str, ChannelRank]

    @classmethod
    def of(cls, hit: Hit) -> HitOut:
        return cls.model_validate({**hit.as_dict(), "image_url": image_url(hit.image_id)})


def image_url(image_id: str | None) -> str | None:
    return f"/v1/images/{image_id}" if image_id else None


class SearchResponse(BaseModel):
    hits: list[HitOut]
    timings: dict[str, float]


class CitationOut(BaseModel):
    marker: int
    document_id: str
    source: str
    page: int
    kind: str
    bbox: list[float] | None
    text: str
    image_id: str | None
    image_url: str | None

    @classmethod
    def of(cls, citation: Citation) -> CitationOut:
        return cls.model_validate({**citation.as_dict(), "image_url": image_url(citation.image_id)})


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
