"""DOCX page numbers from the page breaks in the file.

A DOCX has no fixed pages, but it records where pages start: Word writes a
``w:lastRenderedPageBreak`` wherever a page started when it last laid the document out;
every editor writes the author's breaks (``w:br w:type="page"``, a paragraph's "page
break before", a section starting on a new page). unstructured numbers pages from rendered
breaks alone, and only from those in the runs of body paragraphs: a file no Word saved
(python-docx, Google Docs, LibreOffice) came out all on page 1, and a table running over
pages moved every later page back.

`paginate` therefore marks every page start with a rendered break where unstructured
counts one, before it reads the file: in a file Word laid out, its breaks are kept and the
ones inside tables and content controls are moved to the start of the next body
paragraph; in any other file each of the author's breaks gets one. `pages` then walks the
marked body the way unstructured counts, so pictures get the page their text gets. Pages
are counted as they are marked, so a file over parsing.max_pages fails before any text is
read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmrag.errors import LimitExceededError

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
RENDERED = f"{_W}lastRenderedPageBreak"
# Where unstructured (python-docx's Paragraph.rendered_page_breaks) looks for rendered breaks.
_COUNTED_RUNS = "./w:r | ./w:hyperlink/w:r"
_COUNTED_BREAKS = "./w:r/w:lastRenderedPageBreak | ./w:hyperlink/w:r/w:lastRenderedPageBreak"
_CONTENT = {f"{_W}t", f"{_W}drawing", f"{_W}pict", f"{_W}object"}
_OFF = {"0", "false", "off"}
# A section of these types starts a new page. "nextPage" (the default) ends the previous
# section's last paragraph with the rendered break, so a table opening the section is on
# the new page; odd and even starts put it in their first paragraph, as Word does, where
# unstructured expects it when it adds the blank page such a start can need.
_STARTS_NEW_PAGE = {"nextPage", "oddPage", "evenPage"}


@dataclass(frozen=True)
class Pagination:
    """What `paginate` found: the page count and whether it changed the document."""

    pages: int
    changed: bool


class _Pages:
    """The running page count, held to parsing.max_pages."""

    def __init__(self, path: Path, max_pages: int) -> None:
        self.path = path
        self.max_pages = max_pages
        self.page = 1

    def add(self, count: int = 1) -> None:
        self.page += count
        if self.page > self.max_pages:
            raise LimitExceededError(
                self.path,
                f"the document has more than {self.max_pages:,} pages (by its page breaks), "
                f"over parsing.max_pages ({self.max_pages:,})",
            )


def paginate(document: Any, path: Path, max_pages: int) -> Pagination:
    """Mark every page start in ``document`` (python-docx, changed in place) with a rendered
    page break where unstructured counts one; the page count. Raises `LimitExceededError`
    past ``max_pages``."""
    body = document.element.body
    counter = _Pages(path, max_pages)
    if body.find(f".//{RENDERED}") is not None:
        changed = _keep_rendered(body, counter)
    else:
        changed = _mark_written(body, _StyleBreaks(document), counter)
    return Pagination(pages=counter.page, changed=changed)


def pages(document: Any) -> Iterator[tuple[Any, int]]:
    """Every element of the body of a `paginate`d document, in document order, with its
    page as unstructured numbers it."""
    body = document.element.body
    starts = _section_starts(body)
    page, section = 1, 0
    for block in body.iterchildren():
        for node in block.iter():
            if node.tag == RENDERED:
                page += 1
            yield node, page
        if _ends_section(block):
            section += 1
            page += _parity_break(starts, section, page)


def _keep_rendered(body: Any, counter: _Pages) -> bool:
    """Word laid the file out: keep its breaks, move those unstructured would not count."""
    starts = _section_starts(body)
    carried, section, changed = 0, 0, False
    for block in body.iterchildren():
        counted: set[Any] = set()
        if block.tag == f"{_W}p":
            if carried:  # counted below with the paragraph's own
                _insert_breaks(block, carried, at_start=True)
                carried = 0
            counted = set(block.xpath(_COUNTED_BREAKS))
        for node in list(block.iter(RENDERED)):
            if node in counted:
                counter.add()
            else:  # in a table, a content control, a tracked change: the next paragraph
                node.getparent().remove(node)
                carried += 1
                changed = True
        if _ends_section(block):
            section += 1
            counter.add(_parity_break(starts, section, counter.page))
    counter.add(carried)  # pages the last table ran over: counted, nothing to mark
    return changed


def _mark_written(body: Any, styles: _StyleBreaks, counter: _Pages) -> bool:
    """No layout in the file: give each page break the author wrote a rendered break."""
    starts = _section_starts(body)
    carried, section, changed = 0, 0, False
    fresh = True  # nothing on the current page yet: a "page break before" adds no page
    for block in body.iterchildren():
        counted_runs: set[Any] = set()
        if block.tag == f"{_W}p":
            counted_runs = set(block.xpath(_COUNTED_RUNS))
            carried = carried or int(not fresh and styles.breaks_before(block))
            if carried:
                _insert_breaks(block, carried, at_start=True)
                counter.add(carried)
                carried, fresh, changed = 0, True, True
        for node in list(block.iter()):
            if node.tag == f"{_W}br" and node.get(f"{_W}type") == "page":
                if node.getparent() in counted_runs:
                    for marker in reversed(_marked_break()):
                        node.addnext(marker)
                    counter.add()
                    changed = True
                else:  # where unstructured counts no break: the next paragraph takes it
                    carried += 1
                fresh = True
            elif node.tag in _CONTENT and (node.tag != f"{_W}t" or (node.text or "").strip()):
                fresh = False
        if _ends_section(block):
            section += 1
            counter.add(_parity_break(starts, section, counter.page))
            if starts[section] == "nextPage":  # the next block, even a table, is on it
                _insert_breaks(block, 1, at_start=False)
                counter.add()
                fresh, changed = True, True
            elif starts[section] in _STARTS_NEW_PAGE:  # odd or even: where Word puts it
                carried += 1
    counter.add(carried)  # breaks after the last paragraph: blank pages at the end
    return changed


def _marked_break() -> list[Any]:
    """A rendered break and an empty text after it: python-docx splits a paragraph at a
    break only when content follows it, so two breaks in a row (a blank page, breaks
    carried past a table) would count as one."""
    from docx.oxml.parser import OxmlElement

    return [OxmlElement("w:lastRenderedPageBreak"), OxmlElement("w:t")]


def _insert_breaks(paragraph: Any, count: int, *, at_start: bool) -> None:
    """Put ``count`` rendered breaks in a run of their own at the paragraph's start or end."""
    from docx.oxml.parser import OxmlElement

    run = OxmlElement("w:r")
    for _ in range(count):
        run.extend(_marked_break())
    properties = paragraph.find(f"{_W}pPr")
    if not at_start:
        paragraph.append(run)
    elif properties is not None:
        properties.addnext(run)
    else:
        paragraph.insert(0, run)


def _section_starts(body: Any) -> list[str]:
    """Each section's start type, in order (python-docx's and unstructured's sections)."""
    sections = body.xpath("./w:p/w:pPr/w:sectPr | ./w:sectPr")
    starts = []
    for section in sections:
        kind = section.find(f"{_W}type")
        starts.append("nextPage" if kind is None else str(kind.get(f"{_W}val", "nextPage")))
    return starts


def _ends_section(block: Any) -> bool:
    return block.tag == f"{_W}p" and block.find(f"{_W}pPr/{_W}sectPr") is not None


def _parity_break(starts: list[str], section: int, page: int) -> int:
    """The blank page unstructured adds on entering ``section`` so that it starts on an odd
    or even page (one more rendered break follows in its first paragraph)."""
    if section >= len(starts):
        return 0
    start = starts[section]
    return int((start == "evenPage" and page % 2 == 0) or (start == "oddPage" and page % 2 == 1))


class _StyleBreaks:
    """Whether a paragraph starts a page by "page break before", set on it or its style."""

    def __init__(self, document: Any) -> None:
        self._styles: dict[str, Any] = {}
        self._default: str | None = None
        self._resolved: dict[str, bool] = {}
        for style in document.styles.element.iterchildren(f"{_W}style"):
            if style.get(f"{_W}type") != "paragraph":
                continue
            style_id = str(style.get(f"{_W}styleId", ""))
            self._styles[style_id] = style
            if _on(style.get(f"{_W}default")) and self._default is None:
                self._default = style_id

    def breaks_before(self, paragraph: Any) -> bool:
        direct = _switch(paragraph.find(f"{_W}pPr/{_W}pageBreakBefore"))
        if direct is not None:
            return direct
        style = paragraph.find(f"{_W}pPr/{_W}pStyle")
        style_id = str(style.get(f"{_W}val")) if style is not None else self._default
        return style_id is not None and self._style_breaks(style_id)

    def _style_breaks(self, style_id: str) -> bool:
        if style_id not in self._resolved:
            seen: set[str] = set()
            value: bool | None = None
            current: str | None = style_id
            while value is None and current in self._styles and current not in seen:
                seen.add(current)
                style = self._styles[current]
                value = _switch(style.find(f"{_W}pPr/{_W}pageBreakBefore"))
                based_on = style.find(f"{_W}basedOn")
                current = str(based_on.get(f"{_W}val")) if based_on is not None else None
            self._resolved[style_id] = bool(value)
        return self._resolved[style_id]


def _switch(element: Any) -> bool | None:
    """An on/off property: absent is None, present without a value is on."""
    if element is None:
        return None
    return _on(element.get(f"{_W}val", "1"))


def _on(value: str | None) -> bool:
    return value is not None and value.lower() not in _OFF
