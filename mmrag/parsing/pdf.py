"""PDF parsing with pdfium: text with positions, embedded images, renders and OCR.

pdfium reads born-digital text at hundreds of pages a second, gives every text run
and image a box, and opens pages one at a time, so a 1,000-page PDF streams in
bounded memory. Pages without a text layer are rendered and OCR'd with tesseract.

pdfium is not thread-safe (a worker running several jobs on threads crashed in it), so
every call into it holds `PDFIUM_LOCK`: a page is read whole under the lock (text,
renders, decoded images), then OCR'd and handed on without it.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from mmrag.errors import CorruptFileError, EmptyDocumentError, EncryptedFileError
from mmrag.ocr import ocr_lines
from mmrag.parsing.base import ParsedFile
from mmrag.parsing.images import is_blank
from mmrag.settings import ParsingSettings
from mmrag.types import BBox, Element, ElementKind, ImageElement, TextElement

PDFIUM_LOCK = threading.RLock()  # one pdfium call at a time in this process

# An embedded image covering this share of a text-less page is the scan itself.
SCAN_COVERAGE = 0.6
SOFT_HYPHEN = re.compile(r"\s*[\x02\u00ad\ufffe]\s*")


@dataclass
class _Line:
    text: str
    box: list[float]  # left, top, right, bottom (top-left origin)

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


def open_pdf(path: Path) -> Any:
    """Open with pdfium, translating its errors into ours."""
    import pypdfium2 as pdfium

    with PDFIUM_LOCK:
        try:
            pdf = pdfium.PdfDocument(path)
        except pdfium.PdfiumError as exc:
            message = str(exc)
            if "password" in message.lower():
                raise EncryptedFileError(path, "the PDF is password-protected") from exc
            raise _diagnose(path, message) from exc
        if len(pdf) == 0:
            pdf.close()
            raise EmptyDocumentError(path, "the PDF has no pages")
    return pdf


def _diagnose(path: Path, pdfium_message: str) -> Exception:
    """pdfium says only "data format error"; pypdf tells an empty PDF from a damaged one."""
    import pypdf

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its repair notes are noise here
    try:
        pages = len(pypdf.PdfReader(path, strict=False).pages)
    except Exception as exc:  # pypdf has no single base class for parse errors
        return CorruptFileError(path, f"not a readable PDF: damaged or truncated ({exc})")
    if pages == 0:
        return EmptyDocumentError(path, "the PDF has no pages")
    return CorruptFileError(path, f"the PDF is damaged ({pdfium_message})")


def parse_pdf(path: Path, settings: ParsingSettings) -> ParsedFile:
    pdf = open_pdf(path)
    with PDFIUM_LOCK:
        pages = len(pdf)
    parsed = ParsedFile(file_type="pdf", page_count=pages, elements=iter(()))
    parsed.elements = _pages(pdf, path, settings, parsed.warnings)
    return parsed


@dataclass
class _PageContent:
    """Everything pdfium gives of one page, read under the lock."""

    size: tuple[float, float]
    lines: list[_Line]
    scanned: bool
    scan: Image.Image | None  # rendered for OCR (a scanned page, OCR on)
    render: Image.Image | None  # the page image to index (parsing.page_images)
    images: list[ImageElement]  # embedded images, decoded


def _pages(
    pdf: Any, path: Path, settings: ParsingSettings, warnings: list[str]
) -> Iterator[Element]:
    try:
        for index in range(len(pdf)):
            with PDFIUM_LOCK:
                content = _read_page(pdf, index, settings, warnings)
            if content is not None:
                yield from _page_elements(content, index + 1, settings)
    finally:
        with PDFIUM_LOCK:
            pdf.close()


def _read_page(
    pdf: Any, index: int, settings: ParsingSettings, warnings: list[str]
) -> _PageContent | None:
    import pypdfium2 as pdfium

    try:
        page = pdf[index]
    except pdfium.PdfiumError as exc:
        warnings.append(f"page {index + 1} could not be read ({exc}); skipped")
        return None
    try:
        width, height = page.get_size()
        textpage = page.get_textpage()
        try:
            lines = _text_lines(textpage, height)
        finally:
            textpage.close()
        scanned = sum(len(line.text) for line in lines) < settings.min_page_chars
        scan = None
        if scanned and settings.ocr:
            scan = page.render(scale=settings.ocr_dpi / 72).to_pil()
        render = None
        if settings.page_images == "all" or (scanned and settings.page_images == "scanned"):
            render = page.render(scale=settings.render_dpi / 72).to_pil().convert("RGB")
            render = None if is_blank(render) else render
        skip_scans = scanned and render is not None  # the render stands for the scan
        images = list(
            _embedded_images(page, index + 1, (width, height), skip_scans, settings, warnings)
        )
    finally:
        page.close()
    return _PageContent((width, height), lines, scanned, scan, render, images)


def _page_elements(
    content: _PageContent, number: int, settings: ParsingSettings
) -> Iterator[Element]:
    lines = content.lines
    if content.scan is not None:
        lines = _ocr_lines(content.scan, settings)
    yield from _paragraphs(lines, number)
    if content.render is not None:
        width, height = content.size
        yield ImageElement(
            image=content.render,
            page=number,
            kind=ElementKind.PAGE,
            bbox=(0, 0, width, height),
            ocr_text="\n".join(line.text for line in lines) if content.scanned else "",
        )
    yield from content.images


def _text_lines(textpage: Any, page_height: float) -> list[_Line]:
    """Text runs joined into lines, in content order."""
    lines: list[_Line] = []
    for index in range(textpage.count_rects()):
        left, bottom, right, top = textpage.get_rect(index)
        text = textpage.get_text_bounded(left, bottom, right, top).strip()
        if not text:
            continue
        box = [left, page_height - top, right, page_height - bottom]
        last = lines[-1] if lines else None
        if last is not None and _same_line(last.box, box):
            last.text = f"{last.text} {text}"
            last.box = [
                min(last.box[0], box[0]),
                min(last.box[1], box[1]),
                max(last.box[2], box[2]),
                max(last.box[3], box[3]),
            ]
        else:
            lines.append(_Line(text=" ".join(text.split()), box=box))
    return lines


def _same_line(line: list[float], box: list[float]) -> bool:
    overlap = min(line[3], box[3]) - max(line[1], box[1])
    shortest = min(line[3] - line[1], box[3] - box[1])
    return shortest > 0 and overlap >= 0.5 * shortest and box[0] >= line[0]


def _ocr_lines(image: Image.Image, settings: ParsingSettings) -> list[_Line]:
    scale = settings.ocr_dpi / 72
    return [
        _Line(text=line.text, box=[coordinate / scale for coordinate in line.bbox])
        for line in ocr_lines(image, settings.ocr_languages)
    ]


def _paragraphs(lines: list[_Line], page: int) -> Iterator[TextElement]:
    """Lines joined into paragraphs where the vertical gap is small and order runs down."""
    current: list[_Line] = []
    for line in lines:
        if current and not _continues(current[-1], line):
            yield _paragraph(current, page)
            current = []
        current.append(line)
    if current:
        yield _paragraph(current, page)


def _continues(previous: _Line, line: _Line) -> bool:
    gap = line.box[1] - previous.box[3]
    return -0.5 * previous.height <= gap <= 0.8 * max(previous.height, 1.0)


def _paragraph(lines: list[_Line], page: int) -> TextElement:
    bbox: BBox = (
        min(line.box[0] for line in lines),
        min(line.box[1] for line in lines),
        max(line.box[2] for line in lines),
        max(line.box[3] for line in lines),
    )
    # pdfium marks a soft hyphen at a line end with \x02: join the word back together.
    text = SOFT_HYPHEN.sub("", " ".join(line.text for line in lines))
    return TextElement(text=text, page=page, category="Paragraph", bbox=bbox)


def _embedded_images(
    page: Any,
    number: int,
    size: tuple[float, float],
    skip_scans: bool,
    settings: ParsingSettings,
    warnings: list[str],
) -> Iterator[ImageElement]:
    import pypdfium2 as pdfium

    page_area = size[0] * size[1]
    for obj in page.get_objects(filter=[pdfium.raw.FPDF_PAGEOBJ_IMAGE]):
        left, bottom, right, top = obj.get_bounds()
        if skip_scans and (right - left) * (top - bottom) >= SCAN_COVERAGE * page_area:
            continue
        pixel_width, pixel_height = obj.get_px_size()
        if min(pixel_width, pixel_height) < settings.min_image_side:
            continue  # icons, rules, bullets
        if pixel_width * pixel_height > settings.max_image_pixels:
            warnings.append(
                f"page {number}: image of {pixel_width}x{pixel_height} px over "
                "parsing.max_image_pixels; skipped"
            )
            continue
        try:
            image = obj.get_bitmap(render=False).to_pil().convert("RGB")
        except (pdfium.PdfiumError, OSError, ValueError) as exc:
            warnings.append(f"page {number}: an image could not be decoded ({exc}); skipped")
            continue
        if is_blank(image):
            continue
        yield ImageElement(
            image=image,
            page=number,
            kind=ElementKind.IMAGE,
            bbox=(left, size[1] - top, right, size[1] - bottom),
        )
