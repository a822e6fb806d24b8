"""Documents: upload (202, an ingest job), list, show, delete, progress events; jobs;
images. Every route acts within the caller's tenant: a foreign id is a 404."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.responses import FileResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.deps import ReadScope, ServicesDep, WriteScope
from api.limits import BoundedBodyRoute
from api.openapi import error_responses, event_stream
from api.schemas import (
    DOCUMENT_EVENTS,
    INT64_MAX,
    MAX_ID_CHARS,
    DeletedEvent,
    DocumentList,
    DocumentOut,
    JobOut,
    Uploaded,
    UploadResponse,
)
from api.sse import frame, sse_response
from api.uploads import REQUEST_BODY, ReceivedFile, receive_files
from mmrag.errors import DocumentNotFoundError
from mmrag.services import Services
from mmrag.store import PointFilter

router = APIRouter(prefix="/v1", tags=["documents"], route_class=BoundedBodyRoute)
IMAGE_ID = re.compile(r"^[0-9a-f]{64}$")
PROGRESS_POLL_S = 0.5
PROGRESS_MAX_S = 6 * 3600  # one stream never outlives this; clients reconnect
DocumentId = Annotated[str, Path(max_length=MAX_ID_CHARS)]
JobId = Annotated[str, Path(max_length=MAX_ID_CHARS)]
ImageId = Annotated[str, Path(max_length=MAX_ID_CHARS)]


@router.post(
    "/documents",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=UploadResponse,
    openapi_extra=REQUEST_BODY,
    responses=error_responses(400, 401, 403, 413, 415, 422, 503),
)
async def upload(request: Request, services: ServicesDep, scope: WriteScope) -> UploadResponse:
    """Accept files (multipart/form-data, as ``files``) for ingestion; follow
    ``GET /v1/documents/{id}/events`` or poll ``GET /v1/documents/{id}``. The key is
    checked before the body is read; each file is streamed to storage and refused (413)
    as soon as it passes ``api.max_upload_mb``."""
    max_file_bytes = int(services.settings.api.max_upload_mb * 2**20)
    async with receive_files(
        request, blobs=services.blobs, tenant=scope.tenant, max_file_bytes=max_file_bytes
    ) as received:
        accepted = await run_in_threadpool(_submit, services, scope.tenant, received)
    return UploadResponse(documents=accepted)


def _submit(services: Services, tenant: str, received: list[ReceivedFile]) -> list[Uploaded]:
    accepted = []
    for upload_file in received:
        submission = services.documents.submit_received(
            tenant, upload_file.filename, upload_file.key
        )
        assert submission.record is not None  # an upload is recorded or raises
        accepted.append(
            Uploaded(
                id=submission.record.document_id,
                filename=upload_file.filename,
                status=submission.record.status.value,
                job_id=submission.job.job_id if submission.job else None,
            )
        )
    return accepted


@router.get("/documents", response_model=DocumentList, responses=error_responses(400, 401, 403))
def list_documents(
    services: ServicesDep,
    scope: ReadScope,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0,
) -> DocumentList:
    records = services.catalog.list(scope.tenant, limit=limit, offset=offset)
    return DocumentList(
        documents=[DocumentOut.of(record) for record in records],
        total=services.catalog.count(scope.tenant),
    )


@router.get(
    "/documents/{document_id}",
    response_model=DocumentOut,
    responses=error_responses(400, 401, 403, 404),
)
def get_document(document_id: DocumentId, services: ServicesDep, scope: ReadScope) -> DocumentOut:
    return DocumentOut.of(services.catalog.require(scope.tenant, document_id))


@router.delete(
    "/documents/{document_id}",
    response_model=DocumentOut,
    responses=error_responses(400, 401, 403, 404, 503),
)
def delete_document(
    document_id: DocumentId, services: ServicesDep, scope: WriteScope
) -> DocumentOut:
    """Cancel the document's ingest job, remove its points, images, original and record."""
    return DocumentOut.of(services.documents.delete(scope.tenant, document_id))


@router.get(
    "/documents/{document_id}/events",
    response_model=None,
    response_class=StreamingResponse,
    responses={
        200: {"content": event_stream(DOCUMENT_EVENTS)},
        **error_responses(400, 401, 403, 404),
    },
)
def document_events(
    document_id: DocumentId, services: ServicesDep, scope: ReadScope
) -> StreamingResponse:
    """Ingest progress as Server-Sent Events: ``progress`` (the job: stage, pages,
    chunks, images) whenever it changes, then ``document`` (the final record)."""
    services.catalog.require(scope.tenant, document_id)
    frames = _progress(services, scope.tenant, document_id)
    return sse_response(frames, services.settings.api.sse_ping_s)


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
        yield frame("deleted", DeletedEvent(id=document_id).model_dump())
    else:
        yield frame("document", DocumentOut.of(record).model_dump())


@router.get("/jobs/{job_id}", response_model=JobOut, responses=error_responses(400, 401, 403, 404))
def get_job(job_id: JobId, services: ServicesDep, scope: ReadScope) -> JobOut:
    """An ingest job: state, attempts, progress, error."""
    job = services.jobs.get(job_id, tenant=scope.tenant)
    if job is None:
        raise DocumentNotFoundError(job_id)
    return JobOut.of(job)


@router.get(
    "/images/{image_id}",
    response_class=FileResponse,
    responses={
        200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}},
        **error_responses(400, 401, 403, 404),
    },
)
def get_image(image_id: ImageId, services: ServicesDep, scope: ReadScope) -> FileResponse:
    """The stored image or page render a hit or citation refers to."""
    if not IMAGE_ID.match(image_id):
        raise DocumentNotFoundError(image_id)
    where = PointFilter(match={"tenant": scope.tenant, "image_id": image_id})
    found = services.store.payloads(where, limit=1)
    if not found:
        raise DocumentNotFoundError(image_id)
    return FileResponse(services.blobs.path(found[0]["image_path"]), media_type="image/png")
