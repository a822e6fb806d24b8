"""PDF parsing with pdfium: text with positions, embedded images, renders and OCR.

pdfium reads born-digital text at hundreds of pages a second, gives every text line
and image a box, and opens pages one at a time, so a 1,000-page PDF streams in
bounded memory. Pages without a text layer are rendered and OCR'd with tesseract, one page
per core at a time while pdfium reads the next pages.

Text is read as pdfium assembles it for the whole page (`get_text_range`): its own
spacing and line-break rules decide where words and lines end, from glyph positions. Each
line's box is the union of pdfium's rectangles over that line's characters. Reading
rectangle by rectangle instead split words wherever a word is drawn in pieces (per-glyph
placement, kerning in a TJ array, a drop cap, a font change: "T he", "breache s"), and
repeated letters where rectangles overlapped.

pdfium is not thread-safe (a worker running several jobs on threads crashed in it), so
every call into it holds `PDFIUM_LOCK`: a page is read whole under the lock (text,
renders, decoded images), then OCR'd and handed on without it.

Limits before work: a PDF over parsing.max_pages fails when opened; every render is held
to parsing.max_image_pixels (a 200 in page would be 1.6 billion pixels at 200 dpi), at a
lower dpi and with a warning when it must; a page without text is first rendered as a
small thumbnail and skipped when blank, so only pages with something on them are OCR'd.
pdfium inflates a page's content stream whole before it reads it, so a few kilobytes can
make it allocate gigabytes (a content-stream bomb): each page's content, with the forms it
draws, is first inflated by pypdf within parsing.max_page_content_mb (`_ContentGuard`).
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from mmrag.errors import (
    CorruptFileError,
    EmptyDocumentError,
    EncryptedFileError,
    LimitExceededError,
)
from mmrag.ocr import ocr_lines, ocr_workers
from mmrag.parsing.base import ParsedFile
from mmrag.parsing.images import is_blank
from mmrag.settings import ParsingSettings
from mmrag.types import BBox, Element, ElementKind, ImageElement, TextElement

PDFIUM_LOCK = threading.RLock()  # one pdfium call at a time in this process

# An embedded image covering this share of a text-less page is the scan itself.
SCAN_COVERAGE = 0.6
SOFT_HYPHEN = re.compile(r"\s*[\x02\u00ad\ufffe]\s*")
LINE = re.compile(r"[^\r\n]+")  # pdfium ends lines with \r\n
# A page without text is rendered this small first and skipped when blank: at 36 dpi a
# 4 pt word or light-grey scanned text still moves some pixel by 40 grey levels or more.
BLANK_CHECK_DPI = 36
BLANK_CHECK_MAX_PIXELS = 1_000_000
BLANK_TOLERANCE = 8  # grey levels between the thumbnail's lightest and darkest pixel


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
        if pages > settings.max_pages:
            pdf.close()
            raise LimitExceededError(
                path,
                f"the PDF has {pages:,} pages, over parsing.max_pages ({settings.max_pages:,})",
            )
    parsed = ParsedFile(file_type="pdf", page_count=pages, elements=iter(()))
    parsed.elements = _pages(pdf, path, settings, parsed.warnings)
    return parsed


class _ContentGuard:
    """Measures each page's content before pdfium loads the page: the page's content
    streams and the form XObjects it draws (nested forms too), inflated by pypdf, whose
    decoders stop at a configured output length. A page whose content inflates past
    parsing.max_page_content_mb fails the file, in the time and memory of that limit.

    Where pypdf cannot read the page tree pdfium can, pages go unmeasured and
    parsing.memory_mb still bounds them; pypdf reads from an open file, not a copy."""

    def __init__(self, path: Path, settings: ParsingSettings) -> None:
        import pypdf

        logging.getLogger("pypdf").setLevel(logging.ERROR)  # its repair notes are noise here
        self._path, self._limit_mb = path, settings.max_page_content_mb
        self._limit = int(settings.max_page_content_mb * 2**20)
        self._file = path.open("rb")
        try:
            self._pages: Any = pypdf.PdfReader(self._file, strict=False).pages
        except Exception:  # pypdf has no single base class for parse errors
            self._pages = None

    def check(self, index: int) -> None:
        """Raise `LimitExceededError` if page ``index`` (from 0) inflates past the limit."""
        from pypdf import apply_configuration
        from pypdf.errors import LimitReachedError

        limit = self._limit + 1  # a decoder that returns this much has gone past the limit
        with apply_configuration(
            zlib_maximum_output_length=limit,
            lzw_maximum_output_length=limit,
            run_length_maximum_output_length=limit,
            brotli_maximum_output_length=limit,
            stream_decoding_work_maximum_length=4 * limit,
        ):
            try:
                size = self._page_size(index)
            except LimitReachedError:
                size = limit
            except Exception:  # a stream pypdf cannot decode: pdfium decides
                return
        if size > self._limit:
            raise LimitExceededError(
                self._path,
                f"page {index + 1}'s content inflates past parsing.max_page_content_mb "
                f"({self._limit_mb:g} MiB)",
            )

    def _page_size(self, index: int) -> int:
        if self._pages is None:
            return 0
        try:
            page = self._pages[index]
        except Exception:  # pypdf's page tree is not pdfium's: leave it to the memory limit
            self._pages = None
            return 0
        size, seen = 0, set[int]()
        pending = [page.get("/Contents"), *_forms(page, seen)]
        while pending and size <= self._limit:
            item = _resolved(pending.pop())
            if isinstance(item, list):
                pending.extend(item)
            elif item is not None and hasattr(item, "get_data"):
                size += _inflated_size(item, self._limit + 1 - size)
                pending.extend(_forms(item, seen))
        return size

    def close(self) -> None:
        self._file.close()


def _inflated_size(stream: Any, limit: int) -> int:
    """The inflated size of a content stream, or ``limit`` if it is at least that.

    A stream under /FlateDecode alone (nearly all of them) is inflated a megabyte at a
    time and only counted, so measuring takes no memory; others are decoded by pypdf,
    whose decoders stop at the configured output length."""
    import zlib

    filters = stream.get("/Filter")
    if filters in ("/FlateDecode", "/Fl", ["/FlateDecode"], ["/Fl"]):
        inflater, data, size = zlib.decompressobj(), stream._data, 0
        try:
            while data and size < limit:
                size += len(inflater.decompress(data, 2**20))
                data = inflater.unconsumed_tail
        except zlib.error:
            pass  # damaged: pdfium reads what it can, and no more than came out here
        return min(size, limit)
    try:
        return min(len(stream.get_data()), limit)
    except MemoryError:  # a decoder that stops at the limit cannot hold it: over anyway
        return limit


def _forms(owner: Any, seen: set[int]) -> list[Any]:
    """The form XObjects in ``owner``'s resources not yet in ``seen`` (Python ids of
    pypdf's resolved objects, which it caches: a form drawing itself is seen once)."""
    try:
        resources = _resolved(owner.get("/Resources"))
        objects = _resolved(resources.get("/XObject")) if resources is not None else None
        forms = []
        for reference in (objects or {}).values():
            form = _resolved(reference)
            if form.get("/Subtype") == "/Form" and id(form) not in seen:
                seen.add(id(form))
                forms.append(form)
        return forms
    except (AttributeError, TypeError):
        return []


def _resolved(item: Any) -> Any:
    """A pypdf object with any indirect reference followed."""
    return item.get_object() if item is not None else None


@dataclass
class _PageContent:
    """Everything pdfium gives of one page, read under the lock."""

    size: tuple[float, float]
    lines: list[_Line]
    scanned: bool
    scan: Image.Image | None  # rendered for OCR (a scanned page, OCR on)
    scan_scale: float  # pixels per point of ``scan``
    render: Image.Image | None  # the page image to index (parsing.page_images)
    images: list[ImageElement]  # embedded images, decoded


def _pages(
    pdf: Any, path: Path, settings: ParsingSettings, warnings: list[str]
) -> Iterator[Element]:
    guard = _ContentGuard(path, settings)
    # Pages are OCR'd (tesseract, one thread each) on every core while pdfium reads the
    # next ones; elements still come out in page order, at most a page per core ahead.
    workers = ocr_workers()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mmrag-pdf-ocr")
    pending: deque[Future[list[Element]]] = deque()
    try:
        for index in range(len(pdf)):
            guard.check(index)
            with PDFIUM_LOCK:
                content = _read_page(pdf, index, settings, warnings)
            if content is not None:
                pending.append(pool.submit(_page_elements, content, index + 1, settings))
            ocr_running = content is not None and content.scan is not None
            while len(pending) > (workers - 1 if ocr_running else 0):
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # a closed parse leaves no OCR behind
        guard.close()
        with PDFIUM_LOCK:
            pdf.close()


def _read_page(
    pdf: Any, index: int, settings: ParsingSettings, warnings: list[str]
) -> _PageContent | None:
    import pypdfium2 as pdfium

    number = index + 1
    try:
        page = pdf[index]
    except pdfium.PdfiumError as exc:
        warnings.append(f"page {number} could not be read ({exc}); skipped")
        return None
    try:
        width, height = page.get_size()
        lines = _page_lines(page, (width, height))
        scanned = sum(len(line.text) for line in lines) < settings.min_page_chars
        wants_scan = scanned and settings.ocr
        wants_render = settings.page_images == "all" or (
            scanned and settings.page_images == "scanned"
        )
        scan, scan_scale, render = None, 0.0, None
        try:
            if scanned and (wants_scan or wants_render) and _looks_blank(page, settings):
                wants_scan = wants_render = False  # nothing to read or to show
            if wants_scan:
                scan, scan_scale = _render(
                    page, number, settings.ocr_dpi, "ocr_dpi", settings, warnings
                )
            if wants_render:
                render, _ = _render(
                    page, number, settings.render_dpi, "render_dpi", settings, warnings
                )
                render = None if is_blank(render) else render
        except (pdfium.PdfiumError, ValueError) as exc:
            warnings.append(f"page {number} could not be rendered ({exc}); not OCR'd or shown")
        skip_scans = scanned and render is not None  # the render stands for the scan
        images = list(
            _embedded_images(page, number, (width, height), skip_scans, settings, warnings)
        )
    finally:
        page.close()
    return _PageContent((width, height), lines, scanned, scan, scan_scale, render, images)


def _page_lines(page: Any, size: tuple[float, float]) -> list[_Line]:
    textpage = page.get_textpage()
    try:
        return _text_lines(textpage, size[1])
    finally:
        textpage.close()


def _capped_scale(width: float, height: float, scale: float, max_pixels: int) -> float:
    """``scale``, or the largest scale at which the page has at most ``max_pixels``."""

    def pixels(at: float) -> int:
        return math.ceil(width * at) * math.ceil(height * at)

    if pixels(scale) <= max_pixels:
        return scale
    scale = math.sqrt(max_pixels / (width * height))
    while pixels(scale) > max_pixels:  # rounding up each side can add a row or column
        scale *= 0.99
    return scale


def _render(
    page: Any, number: int, dpi: int, setting: str, settings: ParsingSettings, warnings: list[str]
) -> tuple[Image.Image, float]:
    """The page as an RGB image at ``dpi``, or at the highest dpi that keeps it within
    parsing.max_image_pixels (with a warning); also the pixels per point used."""
    width, height = page.get_size()
    wanted = dpi / 72
    scale = _capped_scale(width, height, wanted, settings.max_image_pixels)
    if scale < wanted:
        full = math.ceil(width * wanted) * math.ceil(height * wanted)
        warnings.append(
            f"page {number}: rendered at {scale * 72:.0f} dpi instead of {dpi} "
            f"(parsing.{setting}): at {dpi} dpi its {full:,} pixels would pass "
            f"parsing.max_image_pixels ({settings.max_image_pixels:,})"
        )
    bitmap = page.render(scale=scale)
    try:
        image = bitmap.to_pil()  # pdfium renders BGR: PIL copies it into RGB
        if image.mode != "RGB":
            image = image.convert("RGB")  # before the bitmap (maybe shared) is freed
    finally:
        bitmap.close()
    return image, scale


def render_page(
    path: Path, number: int, width: int, max_pixels: int
) -> tuple[Image.Image, tuple[float, float]]:
    """Page ``number`` (from 1) of the PDF at ``path``, ``width`` pixels wide (less if
    the page would pass ``max_pixels``), with the page's size in points: the unit of the
    boxes parsing gives, from the top-left corner."""
    import pypdfium2 as pdfium

    pdf = open_pdf(path)
    with PDFIUM_LOCK:
        try:
            if not 1 <= number <= len(pdf):
                raise ValueError(f"page {number} is not in the PDF's {len(pdf)} pages")
            page = pdf[number - 1]
            try:
                size = page.get_size()
                scale = _capped_scale(size[0], size[1], width / max(size[0], 1.0), max_pixels)
                bitmap = page.render(scale=scale)
                try:
                    image = bitmap.to_pil().convert("RGB")
                finally:
                    bitmap.close()
            finally:
                page.close()
        except pdfium.PdfiumError as exc:
            raise CorruptFileError(path, f"page {number} cannot be rendered ({exc})") from exc
        finally:
            pdf.close()
    return image, size


def _looks_blank(page: Any, settings: ParsingSettings) -> bool:
    """A thumbnail with no pixel darker or lighter than the rest: nothing to OCR or show."""
    width, height = page.get_size()
    max_pixels = min(BLANK_CHECK_MAX_PIXELS, settings.max_image_pixels)
    scale = _capped_scale(width, height, BLANK_CHECK_DPI / 72, max_pixels)
    bitmap = page.render(scale=scale, grayscale=True)
    try:
        darkest, lightest = bitmap.to_pil().getextrema()
    finally:
        bitmap.close()
    return bool(lightest - darkest <= BLANK_TOLERANCE)


def _page_elements(content: _PageContent, number: int, settings: ParsingSettings) -> list[Element]:
    lines = content.lines
    if content.scan is not None:
        lines = _ocr_lines(content.scan, content.scan_scale, settings)
    elements: list[Element] = list(_paragraphs(lines, number))
    if content.render is not None:
        width, height = content.size
        elements.append(
            ImageElement(
                image=content.render,
                page=number,
                kind=ElementKind.PAGE,
                bbox=(0, 0, width, height),
                # What the page says (text layer or OCR): the render needs no second OCR, and
                # its point is a page-level view of the text for the text channels.
                ocr_text="\n".join(line.text for line in lines),
            )
        )
    return elements + content.images


def _text_lines(textpage: Any, page_height: float) -> list[_Line]:
    """The page's lines as pdfium writes them, in content order, each with its box.

    Linear in the page's characters: one pass for the text, then per line only the
    rectangles of that line's characters (a page of 6,000 one-letter runs takes
    milliseconds; asking pdfium for the text inside each rectangle took seconds).
    """
    import pypdfium2.raw as pdfium_c

    text = textpage.get_text_range()
    lines: list[_Line] = []
    for match in LINE.finditer(text):
        content = match.group()
        words = content.split()
        if not words:
            continue
        start = match.start() + len(content) - len(content.lstrip())
        end = match.start() + len(content.rstrip())
        first = pdfium_c.FPDFText_GetCharIndexFromTextIndex(textpage, start)
        last = pdfium_c.FPDFText_GetCharIndexFromTextIndex(textpage, end - 1)
        if first < 0 or last < first:
            continue  # text pdfium generated with no character behind it
        rects = [textpage.get_rect(i) for i in range(textpage.count_rects(first, last - first + 1))]
        if not rects:
            continue
        lines.append(
            _Line(
                text=" ".join(words),
                box=[
                    min(rect[0] for rect in rects),
                    page_height - max(rect[3] for rect in rects),
                    max(rect[2] for rect in rects),
                    page_height - min(rect[1] for rect in rects),
                ],
            )
        )
    return lines


def _ocr_lines(image: Image.Image, scale: float, settings: ParsingSettings) -> list[_Line]:
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
    # One image drawn many times (a few bytes of content stream each) is decoded once.
    decoded: set[tuple[int, int, bytes]] = set()
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
            key = (pixel_width, pixel_height, hashlib.blake2b(obj.get_data()).digest())
            if key in decoded:
                continue
            decoded.add(key)
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
