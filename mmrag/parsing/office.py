"""DOCX and PPTX: text and tables through unstructured, pictures through python-docx/-pptx.

unstructured emits no Image elements for DOCX and none with pixels for PPTX, so
pictures are read from the package parts directly, with their page (DOCX: from the
page breaks `docx_pages` marks for unstructured to count) or slide number and position.

Before any of that the package is checked from its zip directory alone, so a zip bomb
fails in milliseconds: the part count (parsing.max_zip_entries), the unpacked size
(parsing.max_unzipped_mb), each part's compression ratio, no DTD in any XML part, and
for PPTX the slide count (parsing.max_pages; a DOCX's pages are counted from its page
breaks before unstructured reads it). A picture is decoded once per document
(DOCX) or slide (PPTX), however often it is placed.
"""

from __future__ import annotations

import copy
import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from mmrag.errors import CorruptFileError, LimitExceededError
from mmrag.parsing.base import ParsedFile
from mmrag.parsing.docx_pages import pages, paginate
from mmrag.parsing.filetypes import CENTRAL_DIRECTORY_BYTES_PER_ENTRY, read_zip_directory
from mmrag.parsing.images import embedded_image
from mmrag.parsing.unstructured_adapter import partition, to_text_elements
from mmrag.settings import ParsingSettings
from mmrag.types import Element, ElementKind, ImageElement

EMU_PER_POINT = 12700
FILE_NAME = re.compile(r"^[\w\-. ]+\.(png|jpe?g|gif|bmp|tiff?|emf|wmf|svg|webp)$", re.IGNORECASE)
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
_R = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_WP = "{http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing}"
_P = "{http://schemas.openxmlformats.org/presentationml/2006/main}"
_RELATIONSHIPS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
MIB = 1024 * 1024
# Deflate can reach ~1000:1 on repeated XML; real Office parts stay far below 100:1.
# The same ratio and grace as Apache POI's zip-bomb guard (ZipSecureFile).
MAX_COMPRESSION_RATIO = 100
RATIO_GRACE_BYTES = 100 * 1024
XML_HEAD_BYTES = 1024  # an Office XML part's root element starts in its first few bytes


def check_package(path: Path, file_type: str, settings: ParsingSettings) -> None:
    """Refuse a DOCX or PPTX package over the limits before any parser opens it.

    The part count and the unpacked size are read from the zip directory; each part is
    then inflated once, in 1 MiB steps, to check that it is no bigger than declared and
    declares no DTD; for PPTX the slide list is counted.
    """
    limit = settings.max_zip_entries
    directory = read_zip_directory(path)
    if directory is not None:  # without one, opening the package fails just below
        if directory.entries > limit:
            raise LimitExceededError(
                path,
                f"the package has {directory.entries:,} parts, over parsing.max_zip_entries "
                f"({limit:,})",
            )
        if directory.directory_bytes > limit * CENTRAL_DIRECTORY_BYTES_PER_ENTRY:
            raise LimitExceededError(
                path,
                f"the package directory takes {directory.directory_bytes:,} bytes, room for "
                f"more parts than parsing.max_zip_entries ({limit:,})",
            )
    try:
        with zipfile.ZipFile(path) as archive:
            parts = archive.infolist()
            _check_sizes(path, parts, settings)
            for part in parts:
                _check_part(path, archive, part)
            if file_type == "pptx":
                _check_slide_count(path, archive, settings)
    except (
        zipfile.BadZipFile,
        OSError,
        EOFError,
        KeyError,
        ValueError,
        RuntimeError,  # an encrypted part
        NotImplementedError,  # a compression method zipfile lacks
    ) as exc:
        raise CorruptFileError(
            path, f"cannot parse as {file_type.upper()} ({type(exc).__name__}: {exc})"
        ) from exc


def _check_sizes(path: Path, parts: list[zipfile.ZipInfo], settings: ParsingSettings) -> None:
    """The part count, the unpacked size and each part's ratio, as the directory declares
    them (`_check_part` then holds each part to its declared size)."""
    if len(parts) > settings.max_zip_entries:  # the end record understated the count
        raise LimitExceededError(
            path,
            f"the package has {len(parts):,} parts, over parsing.max_zip_entries "
            f"({settings.max_zip_entries:,})",
        )
    unpacked = sum(part.file_size for part in parts)
    if unpacked > settings.max_unzipped_mb * MIB:
        raise LimitExceededError(
            path,
            f"the package unpacks to {unpacked / MIB:,.1f} MB, over parsing.max_unzipped_mb "
            f"({settings.max_unzipped_mb:,g})",
        )
    for part in parts:
        ratio = part.file_size / max(part.compress_size, 1)
        if part.file_size > RATIO_GRACE_BYTES and ratio > MAX_COMPRESSION_RATIO:
            raise LimitExceededError(
                path,
                f"part {part.filename} unpacks {ratio:,.0f} times over ({part.compress_size:,} "
                f"to {part.file_size:,} bytes), past the {MAX_COMPRESSION_RATIO}:1 no Office "
                "part reaches: a zip bomb (the whole package is held to "
                "parsing.max_unzipped_mb)",
            )


def _check_part(path: Path, archive: zipfile.ZipFile, part: zipfile.ZipInfo) -> None:
    """Refuse a part that inflates past the size it declares, or XML declaring a DTD.

    zipfile stops a part at its declared size, but only after inflating up to 2 GiB in
    one call (``read()``): a part declaring 1 KiB could still take 1.1 GB. Read here in
    1 MiB steps, never past the declared size plus one byte, so the limits checked on
    declared sizes hold. The checksum is left to python-docx and python-pptx to check.
    """
    probe = copy.copy(part)
    probe.file_size = part.file_size + 1
    del probe.CRC  # zipfile checks no checksum it is not given
    prolog = _PrologReader()
    inflated = 0
    with archive.open(probe) as stream:
        while inflated <= part.file_size and (
            chunk := stream.read(MIB if inflated else XML_HEAD_BYTES)
        ):
            inflated += len(chunk)
            prolog.feed(chunk)
    if inflated > part.file_size:
        raise CorruptFileError(
            path,
            f"part {part.filename} inflates past the {part.file_size:,} bytes it declares; "
            "refused as a zip bomb",
        )
    if prolog.declared:
        raise CorruptFileError(
            path,
            f"part {part.filename} declares a DTD ({prolog.declared[:80]}...>), which Office "
            "files never do; refused, as its entities could expand or reach outside the file",
        )


class _PrologEnd(Exception):
    """Raised by `_PrologReader` to stop libxml2 once the prolog is read."""


class _PrologReader:
    """Finds whether a part is XML declaring a DTD, reading only up to its root element.

    A DTD can only come before the root element, a few bytes into a real part. libxml2
    reads the part in whatever encoding it declares, as python-docx and python-pptx
    will; a part that is not XML (a picture) ends the reading at its first byte. The
    instance is the lxml parser's target.
    """

    def __init__(self) -> None:
        from lxml import etree

        self.declared = ""  # the DOCTYPE, if there is one
        self.done = False
        self._parser = etree.XMLParser(
            target=self, resolve_entities=False, load_dtd=False, no_network=True
        )

    def feed(self, chunk: bytes) -> None:
        from lxml import etree

        if self.done:
            return
        try:
            self._parser.feed(chunk)
        except _PrologEnd:
            self.done = True
        except etree.XMLSyntaxError:
            self.done = True  # not XML, or broken XML the parsers will report

    def doctype(self, name: str | None, public_id: str | None, system_url: str | None) -> None:
        self.declared = f"<!DOCTYPE {name or ''} {system_url or ''}".strip()
        raise _PrologEnd

    def start(self, tag: str, attributes: object) -> None:
        raise _PrologEnd

    def close(self) -> None:
        return None


def _check_slide_count(path: Path, archive: zipfile.ZipFile, settings: ParsingSettings) -> None:
    """Count the slides the presentation lists, as python-pptx will, before loading one."""
    from lxml import etree

    main = _main_part_name(archive)
    if main is None:
        return  # python-pptx will say the package is not a presentation
    slides = 0
    with archive.open(main) as stream:
        for _ in etree.iterparse(
            stream, events=("end",), tag=f"{_P}sldId", resolve_entities=False, no_network=True
        ):
            slides += 1
    if slides > settings.max_pages:
        raise LimitExceededError(
            path,
            f"the presentation has {slides:,} slides, over parsing.max_pages "
            f"({settings.max_pages:,})",
        )


def _main_part_name(archive: zipfile.ZipFile) -> str | None:
    """The officeDocument part the package relationships point to (ppt/presentation.xml)."""
    from lxml import etree

    with archive.open("_rels/.rels") as stream:
        relationships = etree.parse(stream, etree.XMLParser(resolve_entities=False))
    for relationship in relationships.iter(f"{_RELATIONSHIPS}Relationship"):
        if str(relationship.get("Type", "")).endswith("/officeDocument"):
            target = str(relationship.get("Target", "")).lstrip("/")
            return target if target in set(archive.namelist()) else None
    return None


def _opc_errors() -> tuple[type[BaseException], ...]:
    from docx.opc.exceptions import PackageNotFoundError
    from lxml.etree import XMLSyntaxError

    return (PackageNotFoundError, XMLSyntaxError)


def parse_docx(path: Path, settings: ParsingSettings) -> ParsedFile:
    check_package(path, "docx", settings)
    from unstructured.partition.docx import partition_docx

    document = _open_docx(path, path)
    pagination = paginate(document, path, settings.max_pages)
    marked: bytes | None = None  # the document with the page breaks `paginate` marked
    if pagination.changed:
        buffer = io.BytesIO()
        document.save(buffer)
        marked = buffer.getvalue()
    del document  # one document tree in memory at a time: unstructured builds its own
    source = io.BytesIO(marked) if marked is not None else None
    elements = partition(
        partition_docx, path, "docx", _opc_errors(), file=source, infer_table_structure=True
    )
    texts = list(to_text_elements(elements))
    parsed = ParsedFile(file_type="docx", page_count=pagination.pages, elements=iter(()))

    def all_elements() -> Iterator[Element]:
        yield from texts
        marked_document = _open_docx(io.BytesIO(marked) if marked is not None else path, path)
        yield from _docx_images(marked_document, path, settings, parsed.warnings)

    parsed.elements = all_elements()
    return parsed


def _open_docx(source: Path | IO[bytes], path: Path) -> Any:
    import docx

    errors: tuple[type[BaseException], ...] = (
        *_opc_errors(),
        zipfile.BadZipFile,
        KeyError,
        ValueError,
        OSError,
    )
    try:
        return docx.Document(str(source) if isinstance(source, Path) else source)
    except errors as exc:
        raise CorruptFileError(path, f"cannot parse as DOCX ({type(exc).__name__}: {exc})") from exc


def _docx_images(
    document: Any, path: Path, settings: ParsingSettings, warnings: list[str]
) -> Iterator[Element]:
    """Pictures in body order, each on the page its text is on (see `docx_pages`)."""
    parts = document.part.related_parts
    decoded: set[str] = set()  # a picture placed again adds nothing, and is not decoded again
    for node, page in pages(document):
        if node.tag != f"{_A}blip" or (rid := node.get(f"{_R}embed")) not in parts:
            continue
        if str(parts[rid].partname) in decoded:
            continue
        decoded.add(str(parts[rid].partname))
        image = embedded_image(
            parts[rid].blob,
            document=path,
            where=f"page {page}",
            settings=settings,
            warnings=warnings,
        )
        if image is not None:
            yield ImageElement(
                image=image, page=page, kind=ElementKind.IMAGE, alt_text=_docx_alt_text(node)
            )


def _docx_alt_text(blip: Any) -> str:
    """The picture's alt text (``wp:docPr/@descr``), found on its drawing ancestor."""
    for ancestor in blip.iterancestors():
        doc_properties = ancestor.find(f"{_WP}docPr")
        if doc_properties is not None:
            return str(doc_properties.get("descr") or doc_properties.get("title") or "")
    return ""


def parse_pptx(path: Path, settings: ParsingSettings) -> ParsedFile:
    check_package(path, "pptx", settings)
    from pptx.exc import PackageNotFoundError
    from unstructured.partition.pptx import partition_pptx

    elements = partition(
        partition_pptx,
        path,
        "pptx",
        (*_opc_errors(), PackageNotFoundError),
        infer_table_structure=True,
    )
    texts = list(to_text_elements(elements))
    import pptx

    presentation = pptx.Presentation(str(path))
    parsed = ParsedFile(
        file_type="pptx", page_count=max(len(presentation.slides), 1), elements=iter(())
    )

    def all_elements() -> Iterator[Element]:
        yield from texts
        for number, slide in enumerate(presentation.slides, start=1):
            title_shape = slide.shapes.title
            title = title_shape.text_frame.text.strip() if title_shape is not None else ""
            yield from _slide_images(
                slide.shapes, number, path, settings, parsed.warnings, title, decoded=set()
            )

    parsed.elements = all_elements()
    return parsed


def _picture_context(shape: Any, slide_title: str) -> str:
    """The slide title and the picture's alt text; PowerPoint's default alt text is the
    file name, which says nothing, so it is dropped."""
    described = shape._element.xpath("./*[1]/p:cNvPr/@descr")
    alt = str(described[0]).strip() if described else ""
    if FILE_NAME.match(alt):
        alt = ""
    return " - ".join(part for part in (slide_title, alt) if part)


def _slide_images(
    shapes: Any,
    number: int,
    path: Path,
    settings: ParsingSettings,
    warnings: list[str],
    slide_title: str = "",
    *,
    decoded: set[str],
) -> Iterator[Element]:
    """Pictures on one slide, groups included; ``decoded`` holds the hashes of pictures
    already on this slide: placed again, a picture adds nothing and is not decoded again."""
    from pptx.enum.shapes import MSO_SHAPE_TYPE
    from pptx.exc import PythonPptxError

    for shape in shapes:
        try:
            if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
                yield from _slide_images(
                    shape.shapes, number, path, settings, warnings, slide_title, decoded=decoded
                )
                continue
            picture = shape.image  # pictures, and placeholders holding a picture
        except (AttributeError, ValueError, KeyError):
            continue  # not a picture
        except (PythonPptxError, NotImplementedError) as exc:
            warnings.append(f"slide {number}: shape {shape.shape_id} unreadable ({exc}); skipped")
            continue
        if picture.sha1 in decoded:
            continue
        decoded.add(picture.sha1)
        image = embedded_image(
            picture.blob,
            document=path,
            where=f"slide {number}",
            settings=settings,
            warnings=warnings,
        )
        if image is None:
            continue
        bbox = None
        if shape.left is not None and shape.width is not None:
            left, top = shape.left / EMU_PER_POINT, shape.top / EMU_PER_POINT
            bbox = (
                left,
                top,
                left + shape.width / EMU_PER_POINT,
                top + shape.height / EMU_PER_POINT,
            )
        yield ImageElement(
            image=image,
            page=number,
            kind=ElementKind.IMAGE,
            bbox=bbox,
            alt_text=_picture_context(shape, slide_title),
        )
