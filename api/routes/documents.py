"""Documents: upload (202, an ingest job), list, show, delete, progress events; jobs;
images. Every route acts within the caller's tenant: a foreign id is a 404."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, File, Query, UploadFile, status
from fastapi.responses import FileResponse
from fastapi.sse import EventSourceResponse

from api.deps import ReadScope, ServicesDep, WriteScope
from api.schemas import DocumentList, DocumentOut, JobOut, Uploaded, UploadResponse
from api.sse import frame
from mmrag.errors import DocumentNotFoundError, InvalidRequestError
from mmrag.services import Services
from mmrag.store import PointFilter

router = APIRouter(prefix="/v1", tags=["documents"])
IMAGE_ID = re.compile(r"^[0-9a-f]{64}$")
PROGRESS_POLL_S = 0.5
PROGRESS_MAX_S = 6 * 3600  # one stream never outlives this; clients reconnect


@router.post("/documents", status_code=status.HTTP_202_ACCEPTED, response_model=UploadResponse)
def upload(
    files: Annotated[list[UploadFile], File(description="one or more documents")],
    services: ServicesDep,
    scope: WriteScope,
) -> UploadResponse:
    """Accept files for ingestion; follow ``GET /v1/documents/{id}/events`` or poll
    ``GET /v1/documents/{id}``."""
    if not files:
        raise InvalidRequestError("no files in the upload")
    max_bytes = int(services.settings.api.max_upload_mb * 2**20)
    accepted = []
    for upload_file in files:
        name = upload_file.filename or "upload"
        submission = services.documents.submit_upload(
            scope.tenant, name, upload_file.file, max_bytes=max_bytes
        )
        assert submission.record is not None  # an upload is recorded or raises
        accepted.append(
            Uploaded(
                id=submission.record.document_id,
                filename=name,
                status=submission.record.status.value,
                job_id=submission.job.job_id if submission.job else None,
            )
        )
    return UploadResponse(documents=accepted)


@router.get("/documents", response_model=DocumentList)
def list_documents(
    services: ServicesDep,
    scope: ReadScope,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> DocumentList:
    records = services.catalog.list(scope.tenant, limit=limit, offset=offset)
    return DocumentList(
        documents=[DocumentOut.of(record) for record in records],
        total=services.catalog.count(scope.tenant),
    )


@router.get("/documents/{document_id}", response_model=DocumentOut)
def get_document(document_id: str, services: ServicesDep, scope: ReadScope) -> DocumentOut:
    return DocumentOut.of(services.catalog.require(scope.tenant, document_id))


@router.delete("/documents/{document_id}", response_model=DocumentOut)
def delete_document(document_id: str, services: ServicesDep, scope: WriteScope) -> DocumentOut:
    """Cancel the document's ingest job, remove its points, images, original and record."""
    return DocumentOut.of(services.documents.delete(scope.tenant, document_id))


@router.get(
    "/documents/{document_id}/events",
    response_model=None,
    responses={200: {"content": {"text/event-stream": {}}}},
)
def document_events(
    document_id: str, services: ServicesDep, scope: ReadScope
) -> EventSourceResponse:
    """Ingest progress as Server-Sent Events: ``progress`` (the job: stage, pages,
    chunks, images) whenever it changes, then ``document`` (the final record)."""
    services.catalog.require(scope.tenant, document_id)
    return EventSourceResponse(_progress(services, scope.tenant, document_id))


def _progress(services: Services, tenant: str, document_id: str) -> Iterator[bytes]:
    last = None
    deadline = time.monotonic() + PROGRESS_MAX_S
    while time.monotonic() < deadline:
        job = services.jobs.latest(tenant, document_id)
        if job is not None and job.as_dict() != last:
            last = job.as_dict()
            yield frame("progress", JobOut.of(job).model_dump())
        if job is None or job.state.terminal:
            break
        time.sleep(PROGRESS_POLL_S)
    record = services.catalog.get(tenant, document_id)
    if record is None:
        yield frame("deleted", {"id": document_id})
    else:
        yield frame("document", DocumentOut.of(record).model_dump())


@router.get("/jobs/{job_id}", response_model=JobOut)
def get_job(job_id: str, services: ServicesDep, scope: ReadScope) -> JobOut:
    """An ingest job: state, attempts, progress, error."""
    job = services.jobs.get(job_id, tenant=scope.tenant)
    if job is None:
        raise DocumentNotFoundError(job_id)
    return JobOut.of(job)


@router.get(
    "/images/{image_id}",
    response_class=FileResponse,
    responses={200: {"content": {"image/png": {}}}},
)
def get_image(image_id: str, services: ServicesDep, scope: ReadScope) -> FileResponse:
    """The stored image or page render a hit or citation refers to."""
    if not IMAGE_ID.match(image_id):
        raise DocumentNotFoundError(image_id)
    where = PointFilter(match={"tenant": scope.tenant, "image_id": image_id})
    found = services.store.payloads(where, limit=1)
    if not found:
        raise DocumentNotFoundError(image_id)
    return FileResponse(services.blobs.path(found[0]["image_path"]), media_type="image/png")
