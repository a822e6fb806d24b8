"""Domain types: frozen dataclasses and enums shared by every part of the library."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from PIL import Image

SparseValue = tuple[list[int], list[float]]  # (indices, values)
# A named vector's value: dense, sparse, or a multi-vector (one row per token or patch).
VectorValue = list[float] | SparseValue | list[list[float]]

# (left, top, right, bottom) in the page's own units (PDF points, pixels, EMU/12700),
# origin at the top-left corner.
BBox = tuple[float, float, float, float]


class ElementKind(enum.StrEnum):
    """What a stored point stands for."""

    TEXT = "text"  # a chunk of running text (paragraphs, titles, list items)
    TABLE = "table"  # a table rendered as text
    IMAGE = "image"  # an embedded image: figure, chart, photo
    PAGE = "page"  # a rendered page (scanned pages, or all pages when asked)


class DocumentStatus(enum.StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    INDEXED = "indexed"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class TextElement:
    """A piece of text as a parser found it, before chunking."""

    text: str
    page: int  # 1-based
    category: str  # the parser's element type, e.g. Title, NarrativeText, Table
    bbox: BBox | None = None
    kind: ElementKind = ElementKind.TEXT


@dataclass(frozen=True, slots=True)
class ImageElement:
    """An image found in a document (or the document itself when it is an image)."""

    image: Image.Image
    page: int
    kind: ElementKind = ElementKind.IMAGE
    bbox: BBox | None = None
    alt_text: str = ""  # alt text, a nearby caption, or a slide title
    ocr_text: str = ""  # set when the parser already OCR'd the image (scans, image files)


# A parser yields these page by page, so memory stays bounded.
Element = TextElement | ImageElement


@dataclass(frozen=True, slots=True)
class Chunk:
    """A unit of text to embed: one or more text elements of one page."""

    text: str
    page: int
    kind: ElementKind
    categories: tuple[str, ...]
    bbox: BBox | None = None


@dataclass(frozen=True, slots=True)
class ImageAsset:
    """An image saved under the data directory, with what was said about it."""

    image_id: str  # sha256 of the pixels: names the blob, keys the caption cache
    key: str  # the PNG's key in the blob store
    page: int
    kind: ElementKind
    width: int
    height: int
    bbox: BBox | None = None
    alt_text: str = ""
    caption: str = ""
    ocr_text: str = ""

    @property
    def text(self) -> str:
        """The text embedded for the image: caption, alt text and OCR text."""
        parts = [self.caption, self.alt_text, self.ocr_text]
        return "\n".join(part for part in parts if part.strip())


@dataclass(frozen=True, slots=True)
class DocumentRecord:
    """What the catalog knows about one ingested file."""

    document_id: str
    path: str  # where it came from: the file's absolute path, or upload:<name>
    content_hash: str
    status: DocumentStatus
    version: int
    filename: str = ""  # the name shown (the file's or the upload's name)
    file_type: str = ""
    error: str = ""
    warnings: tuple[str, ...] = ()
    pages: int = 0
    chunks: int = 0
    images: int = 0
    points: int = 0
    run_id: str = ""  # the ingest run whose points are the document's points
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.document_id,
            "path": self.path,
            "filename": self.filename,
            "content_hash": self.content_hash,
            "status": self.status.value,
            "version": self.version,
            "file_type": self.file_type,
            "error": self.error,
            "warnings": list(self.warnings),
            "pages": self.pages,
            "chunks": self.chunks,
            "images": self.images,
            "points": self.points,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
        }


@dataclass(frozen=True, slots=True)
class StoredPoint:
    """One point for the vector store: named vectors plus payload."""

    point_id: str
    vectors: dict[str, VectorValue]
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChannelScore:
    """Where one retrieval channel ranked a hit (1-based) and its raw score there."""

    rank: int
    score: float


@dataclass(frozen=True, slots=True)
class Hit:
    """One retrieved element (text chunk, table, image with its caption, page render)."""

    point_id: str
    score: float  # fused score (retrieval.fusion: dbsf or rrf), or the reranker's
    document_id: str
    source: str  # the original file's path
    page: int
    kind: ElementKind
    text: str  # chunk text, or an image's caption + alt text + OCR text
    bbox: BBox | None = None
    image_id: str | None = None
    image_path: str | None = None  # the image's key in the blob store
    caption: str = ""
    channels: dict[str, ChannelScore] = field(default_factory=dict)

    @property
    def is_image(self) -> bool:
        return self.image_id is not None

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (the CLI's and the API's view of a hit)."""
        return {
            "id": self.point_id,
            "score": self.score,
            "document_id": self.document_id,
            "source": self.source,
            "page": self.page,
            "kind": self.kind.value,
            "text": self.text,
            "bbox": list(self.bbox) if self.bbox else None,
            "image_id": self.image_id,
            "image_path": self.image_path,
            "channels": {
                name: {"rank": c.rank, "score": c.score} for name, c in self.channels.items()
            },
        }


@dataclass(frozen=True, slots=True)
class Citation:
    """A numbered source the answer cites: where the claim comes from."""

    marker: int  # the [n] in the answer text
    document_id: str
    source: str
    page: int
    kind: ElementKind
    text: str  # the cited passage, or the image's caption
    bbox: BBox | None = None
    image_id: str | None = None
    image_path: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (the CLI's and the API's view of a citation)."""
        return {
            "marker": self.marker,
            "document_id": self.document_id,
            "source": self.source,
            "page": self.page,
            "kind": self.kind.value,
            "bbox": list(self.bbox) if self.bbox else None,
            "text": self.text,
            "image_id": self.image_id,
            "image_path": self.image_path,
        }


@dataclass(frozen=True, slots=True)
class Answer:
    question: str
    text: str
    citations: tuple[Citation, ...]
    sources: tuple[Hit, ...]  # what the answerer was shown, numbered from 1
    abstained: bool
    timings: dict[str, float] = field(default_factory=dict)
