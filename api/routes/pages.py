"""Evidence to show: page images (whole, or cropped to a box), the regions indexed on a
page, and search by image. Every route acts within the caller's tenant."""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from api.deps import ReadScope, ServicesDep
from api.limits import BoundedBodyRoute
from api.openapi import error_responses
from api.routes.documents import DocumentId
from api.schemas import (
    INT64_MAX,
    MAX_IDS,
    HitOut,
    Id,
    KindName,
    PageRegions,
    RegionOut,
    SearchResponse,
)
from mmrag.errors import InvalidRequestError, TooLargeError
from mmrag.parsing.images import open_image
from mmrag.renders import DEFAULT_WIDTH, MAX_WIDTH, MIN_WIDTH
from mmrag.retrieval import SearchFilters, SearchResult
from mmrag.services import Services

router = APIRouter(prefix="/v1", tags=["evidence"], route_class=BoundedBodyRoute)
MAX_IMAGE_QUERY_BYTES = 20 << 20
PNG = {"image/png": {"schema": {"type": "string", "format": "binary"}}}
PAGE_HEADERS = {
    "X-Page-Width": {
        "description": "the width of what is shown, in the unit of boxes (PDF points, "
        "image pixels): a box scales to this image by image width / X-Page-Width",
        "schema": {"type": "number"},
    },
    "X-Page-Height": {"description": "its height in that unit", "schema": {"type": "number"}},
}
PageNumber = Annotated[int, Path(ge=1, le=INT64_MAX, description="from 1")]


def _bbox(text: str | None) -> tuple[float, float, float, float] | None:
    if text is None:
        return None
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 4 or not all(abs(v) < 1e7 for v in values):
        raise InvalidRequestError("bbox is four numbers: x0,y0,x1,y1 (as hits and citations give)")
    x0, y0, x1, y1 = values
    return (x0, y0, x1, y1)


@router.get(
    "/documents/{document_id}/pages/{page}",
    response_class=Response,
    responses={
        200: {"content": PNG, "headers": PAGE_HEADERS},
        **error_responses(400, 401, 403, 404, 415, 422),
    },
)
def page_image(
    document_id: DocumentId,
    page: PageNumber,
    services: ServicesDep,
    scope: ReadScope,
    width: Annotated[
        int, Query(ge=MIN_WIDTH, le=MAX_WIDTH, description="pixels, rounded to 100")
    ] = DEFAULT_WIDTH,
    bbox: Annotated[
        str | None,
        Query(max_length=200, description="x0,y0,x1,y1: only this region (a hit's bbox)"),
    ] = None,
) -> Response:
    """Page ``page`` of a PDF or image document as PNG, rendered from the stored
    original on first request and cached; with ``bbox``, the region only. Boxes in hits
    and citations are in the page's unit, from its top-left corner: the headers give the
    page's size in that unit."""
    shown = services.renderer.page(scope.tenant, document_id, page, width=width, bbox=_bbox(bbox))
    return Response(
        shown.png,
        media_type="image/png",
        headers={
            "X-Page-Width": f"{shown.page_width:g}",
            "X-Page-Height": f"{shown.page_height:g}",
            "Cache-Control": "private, max-age=3600",
        },
    )


@router.get(
    "/documents/{document_id}/pages/{page}/regions",
    response_model=PageRegions,
    responses=error_responses(400, 401, 403, 404),
)
def page_regions(
    document_id: DocumentId, page: PageNumber, services: ServicesDep, scope: ReadScope
) -> PageRegions:
    """What is indexed on one page: each text chunk, table, image and page render, with
    its box."""
    regions = services.documents.regions(scope.tenant, document_id, page)
    return PageRegions(
        document_id=document_id, page=page, regions=[RegionOut.of(r) for r in regions]
    )


@router.post(
    "/search/image",
    response_model=SearchResponse,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"image/*": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
    responses=error_responses(400, 401, 403, 413, 422, 503),
)
async def search_image(
    request: Request,
    services: ServicesDep,
    scope: ReadScope,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    document_ids: Annotated[list[Id] | None, Query(max_length=MAX_IDS)] = None,
    kinds: Annotated[list[KindName] | None, Query(max_length=16)] = None,
    page_from: Annotated[int | None, Query(ge=1, le=INT64_MAX)] = None,
    page_to: Annotated[int | None, Query(ge=1, le=INT64_MAX)] = None,
) -> SearchResponse:
    """An image as the query (the body: PNG, JPEG, WebP, ...; at most 20 MiB): its pixels
    against stored images and pages, its caption or OCR text against the text channels."""
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > MAX_IMAGE_QUERY_BYTES:
            raise TooLargeError(f"the image is over {MAX_IMAGE_QUERY_BYTES >> 20} MiB")
    if not body:
        raise InvalidRequestError("the body is empty: send the image's bytes")
    filters = SearchFilters(
        document_ids=tuple(document_ids or ()),
        kinds=tuple(kinds or ()),
        page_from=page_from,
        page_to=page_to,
    )
    result = await run_in_threadpool(
        _search_image, services, scope.tenant, bytes(body), limit, filters
    )
    return SearchResponse(hits=[HitOut.of(hit) for hit in result.hits], timings=result.timings)


def _search_image(
    services: Services, tenant: str, data: bytes, limit: int, filters: SearchFilters
) -> SearchResult:
    max_pixels = services.settings.parsing.max_image_pixels
    with open_image(data, max_pixels=max_pixels, name=FilePath("query image")) as image:
        query = image.convert("RGB")
    return services.retriever.search_image(query, tenant=tenant, limit=limit, filters=filters)
