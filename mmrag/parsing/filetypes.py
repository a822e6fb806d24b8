"""Telling file types apart by content, not only by name."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

from mmrag.errors import CorruptFileError, EmptyDocumentError, UnsupportedFileError

# Our type names by extension. Text formats have no magic bytes: the name decides.
EXTENSIONS = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".pptx": "pptx",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".text": "text",
    ".png": "image",
    ".jpg": "image",
    ".jpeg": "image",
    ".tif": "image",
    ".tiff": "image",
    ".webp": "image",
    ".gif": "image",
    ".bmp": "image",
}
TEXT_TYPES = {"html", "markdown", "text"}
IMAGE_MIMES = {"image/png", "image/jpeg", "image/tiff", "image/webp", "image/gif", "image/bmp"}
SUPPORTED = "PDF, DOCX, PPTX, HTML, Markdown, text, PNG, JPEG, TIFF, WebP, GIF, BMP"


@dataclass(frozen=True)
class DetectedType:
    file_type: str  # pdf, docx, pptx, html, markdown, text, image
    warning: str = ""  # set when the name and the content disagree


def _type_from_content(head: bytes, path: Path) -> str | None:
    import filetype

    if head.startswith(b"%PDF-"):
        return "pdf"
    kind = filetype.guess(head)
    if kind is None:
        return None
    if kind.mime in IMAGE_MIMES:
        return "image"
    if kind.mime == "application/zip" or kind.extension in {"docx", "pptx"}:
        return _office_type(path)
    return f"other:{kind.mime}"


def _office_type(path: Path) -> str | None:
    """DOCX and PPTX are zips; their part names tell them apart."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return None
    if "word/document.xml" in names:
        return "docx"
    if "ppt/presentation.xml" in names:
        return "pptx"
    return "other:application/zip"


def detect_file_type(path: Path) -> DetectedType:
    """The type to parse ``path`` as; raises when it is empty, unknown or unreadable."""
    if not path.is_file():
        raise UnsupportedFileError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise EmptyDocumentError(path, "the file is empty (0 bytes)")
    with path.open("rb") as handle:
        head = handle.read(8192)
    by_name = EXTENSIONS.get(path.suffix.lower())
    by_content = _type_from_content(head, path)
    if by_content is None or by_content.startswith("other:"):
        if by_name in TEXT_TYPES and b"\x00" not in head:
            return DetectedType(by_name)
        if by_name is None:
            what = by_content.removeprefix("other:") if by_content else "unknown content"
            raise UnsupportedFileError(
                path, f"unsupported file type ({what}); supported: {SUPPORTED}"
            )
        found = by_content.removeprefix("other:") if by_content else "unrecognised bytes"
        raise CorruptFileError(path, f"named {by_name.upper()} but the content is {found}")
    if by_name is not None and by_name != by_content:
        return DetectedType(
            by_content,
            f"named as {by_name.upper()} but the content is {by_content.upper()}; "
            f"parsed as {by_content.upper()}",
        )
    return DetectedType(by_content)
