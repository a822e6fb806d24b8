"""Page images on demand: page N of a document's stored original, for showing evidence.

Citations and hits carry a box in the page's own unit (PDF points, image pixels, from
the top-left corner); a page image comes with the page's size in that unit, so a client
scales the box by ``image width / page width``. PDFs are rendered by pdfium and image
files give their frame; other types (DOCX, PPTX, HTML, text) have no page to draw and
are refused with that reason. A render is cached as a blob under the document's
content hash (a new version renders afresh; deleting the document deletes them), its
page size kept in the PNG's text chunk.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, PngImagePlugin

from mmrag.blobs import BlobStore, renders_prefix
from mmrag.catalog import Catalog
from mmrag.errors import DocumentNotFoundError, NotFoundError, UnsupportedFileError
from mmrag.parsing.filetypes import detect_file_type
from mmrag.settings import ParsingSettings
from mmrag.types import BBox, DocumentRecord

MIN_WIDTH, MAX_WIDTH, WIDTH_STEP = 100, 2400, 100
DEFAULT_WIDTH = 1000
_SIZE_KEY = "mmrag-page-size"


class PageNotFoundError(NotFoundError):
    """The document exists, the page does not."""

    def __init__(self, document_id: str, page: int, pages: int) -> None:
        self.document_id = document_id
        super().__init__(f"document {document_id!r} has no page {page} (it has {pages})")


@dataclass(frozen=True)
class PageImage:
    """A page as PNG, and the page's width and height in the unit of its boxes."""

    png: bytes
    page_width: float
    page_height: float


class PageRenderer:
    def __init__(self, *, catalog: Catalog, blobs: BlobStore, parsing: ParsingSettings) -> None:
        self._catalog, self._blobs, self._parsing = catalog, blobs, parsing

    def page(
        self,
        tenant: str,
        document_id: str,
        number: int,
        *,
        width: int = DEFAULT_WIDTH,
        bbox: BBox | None = None,
    ) -> PageImage:
        """Page ``number`` about ``width`` pixels wide (rounded to a step of 100, so the
        cache stays small), or only its region ``bbox`` at that scale."""
        record = self._catalog.require(tenant, document_id)
        if not 1 <= number <= max(record.pages, 1):
            raise PageNotFoundError(document_id, number, record.pages)
        width = min(max(round(width / WIDTH_STEP) * WIDTH_STEP, MIN_WIDTH), MAX_WIDTH)
        key = f"{renders_prefix(document_id)}{record.content_hash[:16]}/{number}-{width}.png"
        if not self._blobs.exists(key):
            self._render(record, number, width, key)
        with Image.open(self._blobs.path(key)) as image:
            size = image.info[_SIZE_KEY]  # a PNG's text chunks are in its info
            page_width, page_height = (float(x) for x in size.split("x"))
            if bbox is None:
                return PageImage(self._blobs.path(key).read_bytes(), page_width, page_height)
            scale = image.width / page_width
            box = _clamped(bbox, page_width, page_height)
            crop = image.crop(tuple(round(v * scale) for v in box))  # type: ignore[arg-type]
            return PageImage(_png(crop), box[2] - box[0], box[3] - box[1])

    def _render(self, record: DocumentRecord, number: int, width: int, key: str) -> None:
        original = self._original(record)
        file_type = detect_file_type(original).file_type
        max_pixels = self._parsing.max_image_pixels
        try:
            if file_type == "pdf":
                from mmrag.parsing.pdf import render_page

                image, size = render_page(original, number, width, max_pixels)
            elif file_type == "image":
                from mmrag.parsing.images import image_frame

                frame = image_frame(original, number, max_pixels)
                size = frame.size
                image = frame.resize((width, max(1, round(frame.height * width / frame.width))))
            else:
                raise UnsupportedFileError(
                    record.filename,
                    f"{file_type.upper()} documents have no page images (only PDFs and "
                    "images are rendered); their citations carry the quoted text",
                )
        except ValueError:
            raise PageNotFoundError(record.document_id, number, record.pages) from None
        info = PngImagePlugin.PngInfo()
        info.add_text(_SIZE_KEY, f"{size[0]:g}x{size[1]:g}")
        with self._blobs.writer(key) as writer:
            writer.write(_png(image, info))

    def _original(self, record: DocumentRecord) -> Path:
        keys = self._blobs.keys(f"originals/{record.document_id}/")
        if not keys:
            raise DocumentNotFoundError(record.document_id)
        paths = [self._blobs.path(key) for key in keys]
        return max(paths, key=lambda path: path.stat().st_mtime)  # the latest version


def _clamped(bbox: BBox, width: float, height: float) -> BBox:
    x0, y0, x1, y1 = bbox
    x0, x1 = sorted((min(max(x0, 0.0), width), min(max(x1, 0.0), width)))
    y0, y1 = sorted((min(max(y0, 0.0), height), min(max(y1, 0.0), height)))
    return (x0, y0, max(x1, x0 + 1), max(y1, y0 + 1))


def _png(image: Image.Image, info: PngImagePlugin.PngInfo | None = None) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info, optimize=False, compress_level=3)
    return buffer.getvalue()
