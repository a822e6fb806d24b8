"""Telling file types apart by content, not only by name."""

from __future__ import annotations

import struct
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
OFFICE_TYPES = {"docx", "pptx"}
# Reading a zip's central directory costs about 10 us a part (1 million parts: 10 s and
# 1 GB); past this many parts detection trusts a .docx/.pptx name instead.
MAX_INSPECTED_ENTRIES = 10_000
CENTRAL_DIRECTORY_BYTES_PER_ENTRY = 1024  # generous: an Office part's record is ~80 bytes
_END_OF_DIRECTORY = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_END_OF_DIRECTORY = b"PK\x06\x06"


@dataclass(frozen=True)
class ZipDirectory:
    """What a zip's end-of-central-directory record declares: read without the directory."""

    entries: int
    directory_bytes: int


def read_zip_directory(path: Path) -> ZipDirectory | None:
    """The entry count and central-directory size a zip declares, from its last 64 KiB;
    None when there is no end-of-central-directory record (not a zip, or truncated)."""
    with path.open("rb") as handle:
        size = handle.seek(0, 2)
        tail_size = min(size, 22 + 65535 + 20)  # the record, its longest comment, zip64 locator
        handle.seek(size - tail_size)
        tail = handle.read(tail_size)
        at = tail.rfind(_END_OF_DIRECTORY)
        if at < 0 or len(tail) - at < 22:
            return None
        entries, directory_bytes = struct.unpack("<HI", tail[at + 10 : at + 16])
        locator = tail[at - 20 : at] if at >= 20 else b""
        if locator.startswith(_ZIP64_LOCATOR):  # zipfile then reads the zip64 record too
            (record_at,) = struct.unpack("<Q", locator[8:16])
            handle.seek(record_at)
            record = handle.read(56)
            if record.startswith(_ZIP64_END_OF_DIRECTORY) and len(record) == 56:
                entries, directory_bytes = struct.unpack("<QQ", record[32:48])
    return ZipDirectory(entries, directory_bytes)


@dataclass(frozen=True)
class DetectedType:
    file_type: str  # pdf, docx, pptx, html, markdown, text, image
    warning: str = ""  # set when the name and the content disagree


def _type_from_content(
    head: bytes, path: Path, by_name: str | None, inspect_packages: bool
) -> str | None:
    import filetype

    if head.startswith(b"%PDF-"):
        return "pdf"
    kind = filetype.guess(head)
    if kind is None:
        return None
    if kind.mime in IMAGE_MIMES:
        return "image"
    if kind.mime == "application/zip" or kind.extension in OFFICE_TYPES:
        return _office_type(path, by_name, inspect_packages)
    return f"other:{kind.mime}"


def _office_type(path: Path, by_name: str | None, inspect_packages: bool) -> str | None:
    """DOCX and PPTX are zips; their part names tell them apart.

    The part names are read only from a directory of bounded size; otherwise (or when
    not asked to inspect) a zip named .docx or .pptx is taken at its name, and the
    parser's package checks judge it.
    """
    trusted = by_name if by_name in OFFICE_TYPES else "other:application/zip"
    if not inspect_packages:
        return trusted
    try:
        directory = read_zip_directory(path)
    except OSError:
        return None
    if directory is None:
        return None
    too_many = directory.entries > MAX_INSPECTED_ENTRIES or (
        directory.directory_bytes > MAX_INSPECTED_ENTRIES * CENTRAL_DIRECTORY_BYTES_PER_ENTRY
    )
    if too_many:
        return trusted
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


def detect_file_type(path: Path, *, inspect_packages: bool = True) -> DetectedType:
    """The type to parse ``path`` as; raises when it is empty, unknown or unreadable.

    With ``inspect_packages=False`` a zip named .docx or .pptx is taken at its name
    without reading its part names, so detection reads only the first 8 KiB of any file
    (for a cheap check at upload; parsing checks the package).
    """
    if not path.is_file():
        raise UnsupportedFileError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise EmptyDocumentError(path, "the file is empty (0 bytes)")
    with path.open("rb") as handle:
        head = handle.read(8192)
    by_name = EXTENSIONS.get(path.suffix.lower())
    by_content = _type_from_content(head, path, by_name, inspect_packages)
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
