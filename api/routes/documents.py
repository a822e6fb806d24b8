"""Documents: upload (202, ingested in the background), list, show, delete; images."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, File, UploadFile, status
from fastapi.responses import FileResponse

from api.deps import QueueDep, ServicesDep
from api.schemas import DocumentList, DocumentOut, Uploaded, UploadResponse
from mmrag.errors import DocumentNotFoundError, InvalidRequestError
from mmrag.store import PointFilter

router = APIRouter(prefix="/v1", tags=["documents"])
IMAGE_ID = re.compile(r"^[0-9a-f]{64}$")


@router.post("/documents", status_code=status.HTTP_202_ACCEPTED, response_model=UploadResponse)
def upload(
    files: Annotated[list[UploadFile], File(description="one or more documents")],
    services: ServicesDep,
    queue: QueueDep,
) -> UploadResponse:
    """Accept files for ingestion; poll ``GET /v1/documents/{id}`` for their status."""
    if not files:
        raise InvalidRequestError("no files in the upload")
    max_bytes = int(services.settings.api.max_upload_mb * 2**20)
    accepted = []
    for upload_file in files:
        name = upload_file.filename or "upload"
        document_id, state = queue.accept(name, upload_file.file, max_bytes)
        accepted.append(Uploaded(id=document_id, filename=name, status=state))
    return UploadResponse(documents=accepted)


@router.get("/documents", response_model=DocumentList)
def list_documents(services: ServicesDep) -> DocumentList:
    records = services.catalog.list(services.settings.ingest.tenant)
    return DocumentList(documents=[DocumentOut.of(record) for record in records])


@router.get("/documents/{document_id}", response_model=DocumentOut)
def get_document(document_id: str, services: ServicesDep) -> DocumentOut:
    return DocumentOut.of(services.catalog.require(document_id))


@router.delete("/documents/{document_id}", response_model=DocumentOut)
def delete_document(document_id: str, services: ServicesDep) -> DocumentOut:
    return DocumentOut.of(services.delete_document(document_id))


@router.get(
    "/images/{image_id}",
    response_class=FileResponse,
    responses={200: {"content": {"image/png": {}}}},
)
def get_image(image_id: str, services: ServicesDep) -> FileResponse:
    """The stored image or page render a hit or citation refers to."""
    if not IMAGE_ID.match(image_id):
        raise DocumentNotFoundError(image_id)
    found = services.store.payloads(PointFilter(match={"image_id": image_id}), limit=1)
    path = services.settings.data_dir / found[0]["image_path"] if found else None
    if path is None or not path.is_file():
        raise DocumentNotFoundError(image_id)
    return FileResponse(path, media_type="image/png")
