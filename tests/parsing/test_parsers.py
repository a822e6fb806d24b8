"""Every parser on the generated good documents: types, pages, text, tables, images, OCR."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from mmrag.ocr import ocr_text
from mmrag.parsing import ParsedFile, parse_file
from mmrag.settings import ParsingSettings
from mmrag.testing.documents import (
    CHART_LABELS,
    FACTS,
    IMAGE_ALT_TEXT,
    KEYWORDS,
    PDF_PAGE_TWO_FACT,
    TABLES,
    TEXT_EXTRA_FACTS,
    TIFF_PAGE_TWO_TEXT,
    GeneratedCorpus,
)
from mmrag.types import Element, ElementKind, ImageElement, TextElement

PDF_PAGE_SIZE = (612.0, 792.0)  # points: the generator's default page
PPTX_SLIDE_SIZE = (720.0, 540.0)  # points: python-pptx's default 10 x 7.5 in slide
CHART_SIZE = (480, 320)  # pixels of every generated bar chart

EXPECTED_TYPE_AND_PAGES: dict[str, tuple[str, int]] = {
    "pdf": ("pdf", 2),
    "scanned_pdf": ("pdf", 1),
    "docx": ("docx", 1),
    "pptx": ("pptx", 3),
    "html": ("html", 1),
    "markdown": ("markdown", 1),
    "text": ("text", 1),
    "png": ("image", 1),
    "jpeg": ("image", 1),
    "webp": ("image", 1),
    "tiff": ("image", 2),
}
IMAGE_FILES = ("png", "jpeg", "webp", "tiff")


@dataclass
class Parsed:
    """A parsed file with its elements consumed (so warnings are complete)."""

    file_type: str
    page_count: int
    elements: list[Element]
    warnings: list[str]

    @property
    def texts(self) -> list[TextElement]:
        return [e for e in self.elements if isinstance(e, TextElement)]

    @property
    def images(self) -> list[ImageElement]:
        return [e for e in self.elements if isinstance(e, ImageElement)]

    def of_kind(self, kind: ElementKind) -> list[Element]:
        return [e for e in self.elements if e.kind is kind]

    def text_on(self, page: int) -> str:
        return "\n".join(e.text for e in self.texts if e.page == page).lower()

    @property
    def all_text(self) -> str:
        return "\n".join(e.text for e in self.texts).lower()


def consume(path: Path, settings: ParsingSettings) -> Parsed:
    parsed: ParsedFile = parse_file(path, settings)
    elements = list(parsed.elements)
    return Parsed(parsed.file_type, parsed.page_count, elements, parsed.warnings)


def words(text: str) -> list[str]:
    return text.lower().split()


def squash(text: str) -> str:
    return " ".join(text.split()).lower()


@pytest.fixture(scope="module")
def parse(corpus: GeneratedCorpus) -> Callable[..., Parsed]:
    """Parse a good document once per (name, settings) in this module."""
    cache: dict[tuple[str, str], Parsed] = {}

    def _parse(name: str, **overrides: object) -> Parsed:
        settings = ParsingSettings(**overrides)
        key = (name, settings.model_dump_json())
        if key not in cache:
            cache[key] = consume(corpus.good[name], settings)
        return cache[key]

    return _parse


# ------------------------------------------------------------------ every good type


@pytest.mark.parametrize("name", list(EXPECTED_TYPE_AND_PAGES))
def test_file_type_and_page_count(parse: Callable[..., Parsed], name: str) -> None:
    parsed = parse(name)
    assert (parsed.file_type, parsed.page_count) == EXPECTED_TYPE_AND_PAGES[name]


@pytest.mark.parametrize("name", list(EXPECTED_TYPE_AND_PAGES))
def test_keywords_in_text_elements(parse: Callable[..., Parsed], name: str) -> None:
    text = parse(name).all_text
    for keyword in KEYWORDS[name]:
        assert keyword.lower() in text, f"{keyword!r} not found in {name} text: {text!r}"


@pytest.mark.parametrize("name", list(EXPECTED_TYPE_AND_PAGES))
def test_pages_are_one_based_and_within_page_count(parse: Callable[..., Parsed], name: str) -> None:
    parsed = parse(name)
    assert parsed.elements, f"{name} yielded no elements"
    for element in parsed.elements:
        assert 1 <= element.page <= parsed.page_count
    assert min(e.page for e in parsed.elements) == 1


@pytest.mark.parametrize("name", list(EXPECTED_TYPE_AND_PAGES))
def test_good_documents_parse_without_warnings(parse: Callable[..., Parsed], name: str) -> None:
    assert parse(name).warnings == []


@pytest.mark.parametrize("name", list(EXPECTED_TYPE_AND_PAGES))
def test_text_elements_are_stripped_and_non_empty(parse: Callable[..., Parsed], name: str) -> None:
    for element in parse(name).texts:
        assert element.text.strip() == element.text != ""
        assert element.category


# ------------------------------------------------------------------ PDF


def test_pdf_facts_land_on_their_pages(parse: Callable[..., Parsed]) -> None:
    parsed = parse("pdf")
    assert squash(FACTS["pdf"]) in squash(parsed.text_on(1))
    assert squash(PDF_PAGE_TWO_FACT) in squash(parsed.text_on(2))
    assert "osprey" not in parsed.text_on(1)
    assert "zephyr" in parsed.text_on(1)


def test_pdf_table_cells_are_extracted_on_page_one(parse: Callable[..., Parsed]) -> None:
    page_one = parse("pdf").text_on(1)
    for row in TABLES["pdf"]:
        for cell in row:
            assert cell.lower() in page_one


def test_pdf_text_bboxes_lie_inside_the_page(parse: Callable[..., Parsed]) -> None:
    width, height = PDF_PAGE_SIZE
    texts = parse("pdf").texts
    assert texts
    for element in texts:
        assert element.bbox is not None, element
        left, top, right, bottom = element.bbox
        assert 0 <= left < right <= width, element
        assert 0 <= top < bottom <= height, element


def test_pdf_bboxes_use_a_top_left_origin(parse: Callable[..., Parsed]) -> None:
    texts = [e for e in parse("pdf").texts if e.page == 1]
    title = next(e for e in texts if "annual report" in e.text.lower())
    fact = next(e for e in texts if "kestrel" in e.text.lower() and "megawatts" in e.text.lower())
    assert title.bbox is not None and fact.bbox is not None
    assert title.bbox[1] < fact.bbox[1]  # the title is drawn above the fact
    assert title.bbox[1] < 100  # near the top of the page (drawn at y=720 of 792)


def test_pdf_chart_is_extracted_on_page_two(parse: Callable[..., Parsed]) -> None:
    images = parse("pdf").of_kind(ElementKind.IMAGE)
    assert len(images) == 1, "exactly the chart: the 16x16 icon must be skipped"
    chart = images[0]
    assert isinstance(chart, ImageElement)
    assert chart.page == 2
    assert chart.image.size == CHART_SIZE
    assert chart.bbox is not None
    left, top, right, bottom = chart.bbox
    # Drawn at x=72..432, y=400..640 from the bottom of a 792 pt page.
    assert (left, top, right, bottom) == pytest.approx((72, 152, 432, 392), abs=1)


def test_pdf_icon_is_skipped_by_min_image_side(parse: Callable[..., Parsed]) -> None:
    default = parse("pdf").images
    assert all(min(image.image.size) >= 64 for image in default)
    lowered = parse("pdf", min_image_side=8).images
    icons = [image for image in lowered if image.image.size == (16, 16)]
    assert len(icons) == 1, "with min_image_side=8 the 16x16 icon is kept"
    assert icons[0].page == 2


def test_pdf_born_digital_pages_are_not_rendered_by_default(
    parse: Callable[..., Parsed],
) -> None:
    assert parse("pdf").of_kind(ElementKind.PAGE) == []


def test_pdf_page_images_all_renders_every_page(parse: Callable[..., Parsed]) -> None:
    parsed = parse("pdf", page_images="all")
    pages = parsed.of_kind(ElementKind.PAGE)
    assert sorted(element.page for element in pages) == [1, 2]
    for element in pages:
        assert isinstance(element, ImageElement)
        assert element.bbox == pytest.approx((0, 0, *PDF_PAGE_SIZE))
        # born-digital: the render carries its page's text layer (no OCR of the render)
        assert (FACTS["pdf"] if element.page == 1 else PDF_PAGE_TWO_FACT) in element.ocr_text
        width, height = element.image.size
        assert height > width > 500  # a portrait page rendered at render_dpi
    # Rendering pages adds to, and does not replace, the text and the chart.
    assert len(parsed.texts) == len(parse("pdf").texts)
    assert len(parsed.of_kind(ElementKind.IMAGE)) == 1


def test_pdf_page_images_none_renders_nothing(parse: Callable[..., Parsed]) -> None:
    parsed = parse("pdf", page_images="none")
    assert parsed.of_kind(ElementKind.PAGE) == []
    assert len(parsed.of_kind(ElementKind.IMAGE)) == 1


# ------------------------------------------------------------------ scanned PDF


def test_scanned_pdf_is_ocrd_into_positioned_text(parse: Callable[..., Parsed]) -> None:
    parsed = parse("scanned_pdf")
    assert parsed.texts
    for keyword in (*KEYWORDS["scanned_pdf"], "archive", "1987"):
        assert keyword.lower() in parsed.text_on(1)
    width, height = PDF_PAGE_SIZE
    for element in parsed.texts:
        assert element.page == 1
        assert element.bbox is not None
        left, top, right, bottom = element.bbox
        assert 0 <= left < right <= width and 0 <= top < bottom <= height


def test_scanned_pdf_page_image_carries_ocr_text(parse: Callable[..., Parsed]) -> None:
    parsed = parse("scanned_pdf")  # page_images="scanned" is the default
    pages = parsed.of_kind(ElementKind.PAGE)
    assert len(pages) == 1
    page = pages[0]
    assert isinstance(page, ImageElement)
    assert page.page == 1
    assert page.bbox == pytest.approx((0, 0, *PDF_PAGE_SIZE))
    for keyword in KEYWORDS["scanned_pdf"]:
        assert keyword.lower() in page.ocr_text.lower()
    # The full-page scan is represented by the render, not again as an embedded image.
    assert parsed.of_kind(ElementKind.IMAGE) == []


def test_scanned_pdf_without_ocr_has_no_text(parse: Callable[..., Parsed]) -> None:
    parsed = parse("scanned_pdf", ocr=False)
    assert parsed.texts == []
    pages = parsed.of_kind(ElementKind.PAGE)
    assert len(pages) == 1
    assert isinstance(pages[0], ImageElement) and pages[0].ocr_text == ""


def test_scanned_pdf_with_page_images_none_keeps_ocr_text(parse: Callable[..., Parsed]) -> None:
    parsed = parse("scanned_pdf", page_images="none")
    assert parsed.of_kind(ElementKind.PAGE) == []
    assert "obsidian" in parsed.all_text


# ------------------------------------------------------------------ tables


@pytest.mark.parametrize("name", ["docx", "pptx", "html", "markdown"])
def test_tables_are_table_elements_with_pipe_joined_cells(
    parse: Callable[..., Parsed], name: str
) -> None:
    tables = parse(name).of_kind(ElementKind.TABLE)
    assert len(tables) == 1
    table = tables[0]
    assert isinstance(table, TextElement)
    lines = [line.strip() for line in table.text.splitlines()]
    for row in TABLES[name]:
        assert " | ".join(row) in lines, f"row {row} missing from {table.text!r}"
    header = TABLES[name][0]
    assert lines.index(" | ".join(header)) == 0, "the header row comes first"


def test_pptx_table_is_on_its_slide(parse: Callable[..., Parsed]) -> None:
    (table,) = parse("pptx").of_kind(ElementKind.TABLE)
    assert table.page == 2


def test_table_cells_do_not_leak_into_running_text(parse: Callable[..., Parsed]) -> None:
    # The docx table row "Foxglove | 3 | Finance" is only in the table element.
    texts = [e for e in parse("docx").texts if e.kind is ElementKind.TEXT]
    assert all("foxglove" not in e.text.lower() for e in texts)


# ------------------------------------------------------------------ office and web text


def test_pptx_slides_keep_their_text(parse: Callable[..., Parsed]) -> None:
    parsed = parse("pptx")
    assert "halcyon launches on 14 march" in parsed.text_on(1)
    assert "halcyon milestones" in parsed.text_on(2)
    assert "halcyon budget chart" in parsed.text_on(3)


@pytest.mark.parametrize("name", ["docx", "html", "markdown", "text"])
def test_main_fact_is_one_text_element(parse: Callable[..., Parsed], name: str) -> None:
    texts = [squash(e.text) for e in parse(name).texts]
    assert any(squash(FACTS[name]) in text for text in texts)


def test_text_file_keeps_every_paragraph(parse: Callable[..., Parsed]) -> None:
    text = squash(parse("text").all_text)
    for fact in (FACTS["text"], *TEXT_EXTRA_FACTS):
        assert squash(fact) in text


def test_web_and_text_documents_are_one_page(parse: Callable[..., Parsed]) -> None:
    for name in ("html", "markdown", "text"):
        assert {e.page for e in parse(name).elements} == {1}


# ------------------------------------------------------------------ embedded images


def test_docx_picture_is_extracted(parse: Callable[..., Parsed]) -> None:
    images = parse("docx").of_kind(ElementKind.IMAGE)
    assert len(images) == 1
    assert images[0].page == 1
    assert isinstance(images[0], ImageElement)
    assert images[0].image.size == CHART_SIZE


def test_pptx_picture_is_on_its_slide_with_a_box(parse: Callable[..., Parsed]) -> None:
    images = parse("pptx").of_kind(ElementKind.IMAGE)
    assert len(images) == 1
    picture = images[0]
    assert isinstance(picture, ImageElement)
    assert picture.page == 3
    assert picture.image.size == CHART_SIZE
    assert picture.bbox is not None
    left, top, right, bottom = picture.bbox
    # Placed at 2 in, 2 in with a width of 6 in (4 in high at 3:2).
    assert (left, top, right, bottom) == pytest.approx((144, 144, 576, 432), abs=1)
    width, height = PPTX_SLIDE_SIZE
    assert 0 <= left < right <= width and 0 <= top < bottom <= height


def test_html_data_uri_and_local_file_images_with_alt_text(parse: Callable[..., Parsed]) -> None:
    images = [e for e in parse("html").images if e.kind is ElementKind.IMAGE]
    assert [image.alt_text for image in images] == [
        IMAGE_ALT_TEXT["html"],  # the data-URI image comes first in the page
        IMAGE_ALT_TEXT["html_file"],  # then the sibling page_figure.png
    ]
    for image in images:
        assert image.page == 1
        assert image.image.size == CHART_SIZE


def test_markdown_linked_image_with_alt_text(parse: Callable[..., Parsed]) -> None:
    images = parse("markdown").of_kind(ElementKind.IMAGE)
    assert len(images) == 1
    image = images[0]
    assert isinstance(image, ImageElement)
    assert image.alt_text == IMAGE_ALT_TEXT["markdown"]
    assert image.page == 1
    assert image.image.size == CHART_SIZE


@pytest.mark.parametrize(
    ("name", "index", "label"),
    [
        ("pdf", 0, CHART_LABELS["pdf"]),
        ("docx", 0, CHART_LABELS["docx"]),
        ("pptx", 0, CHART_LABELS["pptx"]),
        ("html", 0, CHART_LABELS["html"]),
        ("html", 1, CHART_LABELS["html_file"]),
        ("markdown", 0, CHART_LABELS["markdown"]),
    ],
)
def test_embedded_image_is_the_right_picture(
    parse: Callable[..., Parsed], name: str, index: int, label: str
) -> None:
    """OCR the extracted pixels: the chart label proves which image came out where."""
    image = parse(name).of_kind(ElementKind.IMAGE)[index]
    assert isinstance(image, ImageElement)
    assert image.image.mode == "RGB"
    assert label.lower() in ocr_text(image.image, "eng").lower()


# ------------------------------------------------------------------ image files


@pytest.mark.parametrize("name", IMAGE_FILES)
def test_image_file_has_one_image_element_per_frame(
    parse: Callable[..., Parsed], name: str
) -> None:
    parsed = parse(name)
    images = parsed.of_kind(ElementKind.IMAGE)
    assert [image.page for image in images] == list(range(1, parsed.page_count + 1))
    for image in images:
        assert isinstance(image, ImageElement)
        assert image.image.mode == "RGB"
        assert image.bbox == (0, 0, image.image.width, image.image.height)
        assert image.ocr_text.strip(), "image files are OCR'd"
    first = images[0]
    assert isinstance(first, ImageElement)
    for keyword in KEYWORDS[name]:
        assert keyword.lower() in first.ocr_text.lower()


@pytest.mark.parametrize("name", IMAGE_FILES)
def test_image_file_ocr_lines_are_positioned_text(parse: Callable[..., Parsed], name: str) -> None:
    parsed = parse(name)
    for element in parsed.texts:
        assert element.bbox is not None
        left, top, right, bottom = element.bbox
        frame = next(i for i in parsed.images if i.page == element.page)
        assert 0 <= left < right <= frame.image.width
        assert 0 <= top < bottom <= frame.image.height


def test_tiff_second_frame_text_is_on_page_two(parse: Callable[..., Parsed]) -> None:
    parsed = parse("tiff")
    page_two_words = words(TIFF_PAGE_TWO_TEXT)[:2]  # COBALT HARBOUR (skip the digits)
    for word in page_two_words:
        assert word in parsed.text_on(2)
        assert word not in parsed.text_on(1)
    for word in words(FACTS["tiff"])[:2]:
        assert word in parsed.text_on(1)
        assert word not in parsed.text_on(2)
    second = next(i for i in parsed.images if i.page == 2)
    for word in page_two_words:
        assert word in second.ocr_text.lower()


def test_image_file_without_ocr_keeps_the_image_only(parse: Callable[..., Parsed]) -> None:
    parsed = parse("tiff", ocr=False)
    assert parsed.texts == []
    assert [(image.page, image.ocr_text) for image in parsed.images] == [(1, ""), (2, "")]


# ------------------------------------------------------------------ DOCX page numbers


def _docx_with_page_break(path: Path, *, word_markers: bool) -> Path:
    """Text on page 1, a hard page break, then text and a chart picture on page 2.

    With ``word_markers`` the page-2 paragraph also starts with the
    ``w:lastRenderedPageBreak`` that Microsoft Word writes after a hard break.
    """
    import io

    from docx import Document
    from docx.oxml import OxmlElement
    from docx.shared import Inches

    from mmrag.testing.documents_bad import chart_image, png_bytes

    document = Document()
    document.add_paragraph("Page one is about herons.")
    document.add_page_break()
    paragraph = document.add_paragraph()
    if word_markers:
        paragraph.add_run()._r.append(OxmlElement("w:lastRenderedPageBreak"))
    paragraph.add_run("Page two is about egrets.")
    chart = io.BytesIO(png_bytes(chart_image(CHART_LABELS["docx"])))
    document.add_picture(chart, width=Inches(4))
    document.save(str(path))
    return path


@pytest.mark.parametrize("word_markers", [False, True], ids=["hard-break", "word-saved"])
def test_docx_picture_page_agrees_with_text_pages(
    tmp_path_factory: pytest.TempPathFactory, word_markers: bool
) -> None:
    """The picture sits right after the page-2 paragraph: it must share that paragraph's page,
    and no element may claim a page beyond ``page_count``."""
    path = _docx_with_page_break(
        tmp_path_factory.mktemp("docx") / "paged.docx", word_markers=word_markers
    )
    parsed = consume(path, ParsingSettings())
    egrets = next(e for e in parsed.texts if "egrets" in e.text.lower())
    (picture,) = parsed.images
    assert picture.page == egrets.page, (
        f"picture on page {picture.page}, the paragraph before it on page {egrets.page}"
    )
    assert all(e.page <= parsed.page_count for e in parsed.elements), (
        f"page_count {parsed.page_count}, pages {[e.page for e in parsed.elements]}"
    )
