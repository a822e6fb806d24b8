"""Deterministic generators of small test documents (good inputs).

Every good document carries known, distinctive facts (see the module-level
constants) so tests can check parsing, OCR and retrieval without external data.
Bad inputs live in :mod:`mmrag.testing.documents_bad`; :func:`write_corpus`
writes both.  Output is byte-for-byte reproducible on a given machine (fonts
may differ between machines, so do not hash files across machines).
"""

from __future__ import annotations

import base64
import io
import string
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmrag.testing.documents_bad import (
    PdfPageSpec,
    build_pdf,
    chart_image,
    pdf_image,
    pdf_table,
    pdf_text,
    png_bytes,
    text_image,
    write_all_bad_documents,
)

if TYPE_CHECKING:
    from PIL import Image as ImageModule

FACTS: dict[str, str] = {
    "pdf": "The Zephyr turbine produces 42 megawatts at Kestrel Bay.",
    "scanned_pdf": "The Obsidian archive opened in 1987 in Lisbon.",
    "docx": "The Marigold protocol requires seven signatures.",
    "pptx": "Project Halcyon launches on 14 March.",
    "html": "The Periwinkle bridge spans 318 metres.",
    "markdown": "The Tamarind reactor cools to minus 40 degrees.",
    "text": "The Juniper library holds 9000 maps.",
    "png": "FALCON RIVER 17",
    "jpeg": "GRANITE PEAK 58",
    "webp": "SAFFRON LAKE 23",
    "tiff": "CRIMSON VALLEY 31",
}
"""Main fact per good document; for images and the scanned PDF it is the rendered text."""

KEYWORDS: dict[str, tuple[str, ...]] = {
    "pdf": ("Zephyr", "Kestrel"),
    "scanned_pdf": ("Obsidian", "Lisbon"),
    "docx": ("Marigold", "signatures"),
    "pptx": ("Halcyon", "March"),
    "html": ("Periwinkle", "318"),
    "markdown": ("Tamarind", "degrees"),
    "text": ("Juniper", "9000"),
    "png": ("FALCON", "RIVER"),
    "jpeg": ("GRANITE", "PEAK"),
    "webp": ("SAFFRON", "LAKE"),
    "tiff": ("CRIMSON", "VALLEY"),
}
"""Single distinctive words per good document, for case-insensitive OCR/text checks."""

PDF_PAGE_TWO_FACT = "Zephyr blades are inspected every 90 days by the Osprey crew."
TIFF_PAGE_TWO_TEXT = "COBALT HARBOUR 64"
TEXT_EXTRA_FACTS = (
    "Juniper maps are catalogued by the Wren society.",
    "The reading room closes at 6 pm.",
)

CHART_LABELS: dict[str, str] = {
    "pdf": "QUARTZ",
    "docx": "AMBER",
    "pptx": "COPPER",
    "html": "MAGENTA",
    "html_file": "INDIGO",
    "markdown": "VIOLET",
}
"""Large OCR-readable label drawn inside each embedded bar-chart image."""

IMAGE_ALT_TEXT: dict[str, str] = {
    "html": "Bar chart of Periwinkle bridge traffic",
    "html_file": "Chart of Periwinkle bridge toll revenue",
    "markdown": "Tamarind reactor temperature chart",
}

TABLES: dict[str, tuple[tuple[str, ...], ...]] = {
    "pdf": (
        ("Turbine", "Output", "Site"),
        ("Zephyr", "42 MW", "Kestrel Bay"),
        ("Boreas", "17 MW", "Gull Point"),
    ),
    "docx": (
        ("Protocol", "Signatures", "Owner"),
        ("Marigold", "7", "Legal"),
        ("Foxglove", "3", "Finance"),
    ),
    "pptx": (("Milestone", "Date"), ("Halcyon launch", "14 March"), ("Halcyon review", "2 May")),
    "html": (
        ("Bridge", "Span", "Opened"),
        ("Periwinkle", "318 m", "1931"),
        ("Larkspur", "204 m", "1958"),
    ),
    "markdown": (
        ("Reactor", "Coolant", "Temperature"),
        ("Tamarind", "Helium", "-40 C"),
        ("Sorrel", "Water", "12 C"),
    ),
}
"""Tables per document: header row first, then body rows."""

FIXED_TIMESTAMP = datetime(2020, 1, 1, 0, 0, 0)
HTML_IMAGE_NAME = "page_figure.png"
MARKDOWN_IMAGE_NAME = "notes_figure.png"


@dataclass(frozen=True)
class GeneratedCorpus:
    """Paths of a generated corpus: readable documents and bad inputs."""

    root: Path
    good: dict[str, Path]
    bad: dict[str, Path]


def _icon_image() -> ImageModule.Image:
    """Return a 16x16 decorative icon that parsers should skip."""
    from PIL import Image, ImageDraw

    icon = Image.new("RGB", (16, 16), (250, 200, 0))
    ImageDraw.Draw(icon).ellipse((3, 3, 12, 12), fill=(200, 0, 0))
    return icon


def _prepare(path: Path) -> Path:
    """Create the parent folder of ``path`` and return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


# ------------------------------------------------------------ good writers


def report_pdf_bytes() -> bytes:
    """Return the bytes of the born-digital two-page report (see :func:`write_pdf`)."""
    first = pdf_text(72, 720, 22, "Zephyr Turbine Annual Report", bold=True)
    first += pdf_text(72, 690, 12, FACTS["pdf"])
    first += pdf_text(72, 672, 12, "The plant feeds the northern grid through two substations.")
    first += pdf_text(72, 654, 12, "Output figures for each turbine are listed in the table below.")
    first += pdf_text(72, 620, 14, "Turbine output", bold=True)
    first += pdf_table(TABLES["pdf"], 72, 610)
    second = pdf_text(72, 720, 16, "Maintenance and output chart", bold=True)
    second += pdf_text(72, 696, 12, PDF_PAGE_TWO_FACT)
    second += pdf_image("Chart", 72, 400, 360, 240) + pdf_image("Icon", 500, 740, 16, 16)
    second += pdf_text(72, 380, 10, f"Figure 1: {CHART_LABELS['pdf']} output by quarter.")
    pages = [
        PdfPageSpec(first, {}),
        PdfPageSpec(second, {"Chart": chart_image(CHART_LABELS["pdf"]), "Icon": _icon_image()}),
    ]
    return build_pdf(pages)


def write_pdf(path: Path) -> Path:
    """Write a 2-page born-digital PDF: heading, paragraphs, table; text, chart and 16x16 icon."""
    _prepare(path).write_bytes(report_pdf_bytes())
    return path


# Helvetica advance widths (thousandths of an em, from its AFM), to place glyphs one by one.
# fmt: off
_HELVETICA_LETTERS = (
    667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833,  # A-M
    722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611,  # N-Z
    556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833,  # a-m
    556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500,  # n-z
)
# fmt: on
_HELVETICA_WIDTHS: dict[str, int] = {
    **dict(zip(string.ascii_uppercase + string.ascii_lowercase, _HELVETICA_LETTERS, strict=True)),
    **dict.fromkeys(string.digits, 556),
    **dict.fromkeys(" ,.", 278),
    "-": 333,
}

KERNED_PDF_LINES: tuple[str, ...] = (
    "The breaches were reported to the regulator within three days.",
    "Thermal sensors flagged the turbine housing overnight.",
    "Typesetting engines kern every pair of letters.",
    "Boldface fragments change fonts inside one word.",
    "Letter spacing widens this heading slightly.",
    "Justified lines stretch the gaps between words.",
    "Condensed type squeezes every glyph together.",
)
"""The lines of :func:`write_kerned_pdf`, each drawn the way real PDFs split words."""


def _glyph_by_glyph(x: float, y: float, size: float, text: str) -> str:
    """``text`` drawn one text object per glyph, each placed by its advance width (as
    some report generators write every letter), spaces left as gaps."""
    operators = ""
    for character in text:
        if character != " ":
            operators += pdf_text(x, y, size, character)
        x += size * _HELVETICA_WIDTHS[character] / 1000
    return operators


def _kerned(x: float, y: float, size: float, text: str) -> str:
    """``text`` in one TJ array with a kerning adjustment between every pair of glyphs."""
    adjustments = (-40, 60, 15)  # thousandths of an em: looser, tighter, tighter
    parts = " ".join(
        f"({character}) {adjustments[index % len(adjustments)]}"
        for index, character in enumerate(text)
    )
    return f"BT /F1 {size:g} Tf {x:g} {y:g} Td [{parts}] TJ ET\n"


def kerned_pdf_bytes() -> bytes:
    """A one-page PDF whose lines (`KERNED_PDF_LINES`, top to bottom) are drawn in pieces:
    glyph by glyph, kerned, with a drop cap, with a font change inside a word, letter
    spaced, justified and condensed. Every word is whole on the page."""
    lines = KERNED_PDF_LINES
    content = _glyph_by_glyph(72, 700, 11, lines[0])
    content += _kerned(72, 670, 11, lines[1])
    drop_cap = 28 * _HELVETICA_WIDTHS["T"] / 1000
    content += pdf_text(72, 640, 28, "T", bold=True) + pdf_text(
        72 + drop_cap, 640, 11, lines[2][1:]
    )
    content += f"BT /F2 11 Tf 72 610 Td (Bold) Tj /F1 11 Tf ({lines[3][4:]}) Tj ET\n"
    content += f"BT /F1 11 Tf 1.5 Tc 72 580 Td ({lines[4]}) Tj ET\n"
    content += f"BT /F1 11 Tf 5 Tw 72 550 Td ({lines[5]}) Tj ET\n"
    content += f"BT /F1 11 Tf 80 Tz -0.3 Tc 72 520 Td ({lines[6]}) Tj ET\n"
    return build_pdf([PdfPageSpec(content, {})])


def write_kerned_pdf(path: Path) -> Path:
    """Write `kerned_pdf_bytes` to ``path``."""
    _prepare(path).write_bytes(kerned_pdf_bytes())
    return path


def write_scanned_pdf(path: Path) -> Path:
    """Write a 1-page PDF whose only content is a 150 dpi grayscale scan of large text."""
    lines = ["OBSIDIAN ARCHIVE", "", "The Obsidian archive opened", "in 1987 in Lisbon."]
    scan = text_image(lines, (1275, 1650), font_size=64, mode="L")
    page = PdfPageSpec(pdf_image("Scan", 0, 0, 612, 792), {"Scan": scan})
    _prepare(path).write_bytes(build_pdf([page]))
    return path


def normalise_zip(data: bytes) -> bytes:
    """Rewrite a zip archive with fixed timestamps so Office files are reproducible."""
    output = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=FIXED_TIMESTAMP.timetuple()[:6])
            fixed.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(fixed, source.read(info.filename))
    return output.getvalue()


def write_docx(path: Path) -> Path:
    """Write a DOCX with headings, paragraphs, a header-row table and one chart picture."""
    from docx import Document
    from docx.shared import Inches

    document = Document()
    document.core_properties.created = document.core_properties.modified = FIXED_TIMESTAMP
    document.add_heading("Marigold Protocol Memo", level=1)
    document.add_paragraph(FACTS["docx"])
    document.add_paragraph("Each signature must be collected before the Friday review.")
    document.add_heading("Signature requirements", level=2)
    rows = TABLES["docx"]
    table = document.add_table(rows=len(rows), cols=len(rows[0]))
    table.style = "Table Grid"
    for row_cells, row in zip(table.rows, rows, strict=True):
        for cell, text in zip(row_cells.cells, row, strict=True):
            cell.text = text
    document.add_heading("Signature trend", level=2)
    document.add_picture(io.BytesIO(png_bytes(chart_image(CHART_LABELS["docx"]))), width=Inches(4))
    document.add_paragraph("The chart shows signatures collected per quarter.")
    buffer = io.BytesIO()
    document.save(buffer)
    _prepare(path).write_bytes(normalise_zip(buffer.getvalue()))
    return path


PAGED_DOCX_TEXT: dict[str, int] = {
    "Anchor paragraph on the first page.": 1,
    "Bravo follows an explicit page break.": 2,
    "Before the run break on page two.": 2,
    "Charlie continues the paragraph after a run break.": 3,
    "Delta comes after a blank page.": 5,
    "Echo starts its page by itself.": 6,
    "Foxtrot breaks the page by its style.": 7,
    "Golf follows a table that opens a new section.": 8,
    "Hotel stays on the page after a continuous section.": 8,
    "India overrides its style and stays on the page.": 8,
}
"""Paragraphs of :func:`write_paged_docx` and the page each is on."""
PAGED_DOCX_TABLE_PAGE = 8
PAGED_DOCX_PAGES = 8
PAGED_DOCX_IMAGES: dict[str, int] = {"PAGE2": 2, "PAGE8": 8}
"""Chart labels of the pictures in :func:`write_paged_docx` and their pages."""

RENDERED_DOCX_TEXT: dict[str, int] = {
    "Word laid out this first page.": 1,
    "This sentence ends page one": 1,
    "and carries on to page two.": 2,
    "Page three follows a hard break.": 3,
    "After the long table, on page four.": 4,
}
"""Paragraphs (or parts) of :func:`write_rendered_docx` and the page each is on."""
RENDERED_DOCX_PAGES = 4
RENDERED_DOCX_IMAGES: dict[str, int] = {"WORD4": 4}


def _save_docx(document: Any, path: Path) -> Path:
    document.core_properties.created = document.core_properties.modified = FIXED_TIMESTAMP
    buffer = io.BytesIO()
    document.save(buffer)
    _prepare(path).write_bytes(normalise_zip(buffer.getvalue()))
    return path


def _docx_chart(document: Any, label: str) -> None:
    from docx.shared import Inches

    document.add_picture(io.BytesIO(png_bytes(chart_image(label))), width=Inches(3))


def write_paged_docx(path: Path) -> Path:
    """Write a DOCX no word processor laid out (`PAGED_DOCX_TEXT`): its pages start at an
    explicit page break, a break inside a paragraph, two breaks in a row (a blank page),
    "page break before" set on a paragraph and on a style's base, and a new-page section
    opening with a table; a continuous section and a paragraph switching its style's
    break off stay on the page."""
    from docx import Document
    from docx.enum.section import WD_SECTION
    from docx.enum.style import WD_STYLE_TYPE
    from docx.enum.text import WD_BREAK

    document = Document()
    base = document.styles.add_style("Chapter Base", WD_STYLE_TYPE.PARAGRAPH)
    base.paragraph_format.page_break_before = True
    chapter = document.styles.add_style("Chapter", WD_STYLE_TYPE.PARAGRAPH)
    chapter.base_style = base
    text = list(PAGED_DOCX_TEXT)
    document.add_paragraph(text[0])
    document.add_page_break()
    document.add_paragraph(text[1])
    _docx_chart(document, "PAGE2")
    run = document.add_paragraph().add_run(text[2])
    run.add_break(WD_BREAK.PAGE)
    run.add_text(text[3])
    document.add_page_break()
    document.add_page_break()
    document.add_paragraph(text[4])
    document.add_paragraph(text[5]).paragraph_format.page_break_before = True
    document.add_paragraph(text[6], style=chapter)
    document.add_section(WD_SECTION.NEW_PAGE)
    table = document.add_table(rows=2, cols=2)
    for cell, value in zip(table._cells, ("Golf", "table", "section", "start"), strict=True):
        cell.text = value
    document.add_paragraph(text[7])
    _docx_chart(document, "PAGE8")
    document.add_section(WD_SECTION.CONTINUOUS)
    document.add_paragraph(text[8])
    document.add_paragraph(text[9], style=chapter).paragraph_format.page_break_before = False
    return _save_docx(document, path)


def _rendered_break() -> Any:
    from docx.oxml.parser import OxmlElement

    return OxmlElement("w:lastRenderedPageBreak")


def write_rendered_docx(path: Path) -> Path:
    """Write a DOCX as Word saves one it laid out (`RENDERED_DOCX_TEXT`): a rendered break
    where each page starts, inside a paragraph, after a hard page break (which it does
    not double) and inside a table running over a page."""
    from docx import Document

    document = Document()
    text = list(RENDERED_DOCX_TEXT)
    document.add_paragraph(text[0])
    paragraph = document.add_paragraph()
    paragraph.add_run(text[1] + " ")
    paragraph.add_run()._r.append(_rendered_break())
    paragraph.add_run(text[2])
    document.add_page_break()
    document.add_paragraph().add_run(text[3])._r.insert(0, _rendered_break())
    table = document.add_table(rows=3, cols=1)
    for number, row in enumerate(table.rows, start=1):
        row.cells[0].text = f"Row {number} of the long table"
    table.rows[2].cells[0].paragraphs[0].runs[0]._r.insert(0, _rendered_break())
    document.add_paragraph(text[4])
    _docx_chart(document, "WORD4")
    return _save_docx(document, path)


def write_pptx(path: Path) -> Path:
    """Write a 3-slide PPTX: title + bullets, a table, a picture."""
    from pptx import Presentation
    from pptx.util import Inches

    presentation = Presentation()
    presentation.core_properties.created = presentation.core_properties.modified = FIXED_TIMESTAMP
    presentation.core_properties.revision = 1
    bullets = presentation.slides.add_slide(presentation.slide_layouts[1])
    bullets.shapes.title.text = "Project Halcyon"
    body = bullets.placeholders[1].text_frame
    body.text = FACTS["pptx"]
    body.add_paragraph().text = "The Halcyon team has twelve engineers."
    rows = TABLES["pptx"]
    table_slide = presentation.slides.add_slide(presentation.slide_layouts[5])
    table_slide.shapes.title.text = "Halcyon milestones"
    shape = table_slide.shapes.add_table(
        len(rows), len(rows[0]), Inches(1), Inches(2), Inches(8), Inches(1.5)
    )
    for row_index, row in enumerate(rows):
        for column_index, text in enumerate(row):
            shape.table.cell(row_index, column_index).text = text
    picture_slide = presentation.slides.add_slide(presentation.slide_layouts[5])
    picture_slide.shapes.title.text = "Halcyon budget chart"
    chart = io.BytesIO(png_bytes(chart_image(CHART_LABELS["pptx"])))
    picture_slide.shapes.add_picture(chart, Inches(2), Inches(2), width=Inches(6))
    buffer = io.BytesIO()
    presentation.save(buffer)
    _prepare(path).write_bytes(normalise_zip(buffer.getvalue()))
    return path


def _html_table(rows: tuple[tuple[str, ...], ...]) -> str:
    """Return an HTML table with a header row."""
    header = "".join(f"<th>{cell}</th>" for cell in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>\n" for row in rows[1:]
    )
    return f"<table>\n<thead><tr>{header}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>"


def write_html(path: Path) -> Path:
    """Write an HTML page (headings, paragraphs, table, data-URI image) plus a sibling PNG."""
    figure = _prepare(path).parent / HTML_IMAGE_NAME
    figure.write_bytes(png_bytes(chart_image(CHART_LABELS["html_file"], (2, 6, 4, 8))))
    inline_png = png_bytes(chart_image(CHART_LABELS["html"], (5, 2, 8, 6)))
    inline = base64.b64encode(inline_png).decode("ascii")
    page = f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Periwinkle Bridge</title></head>
<body>
<h1>Periwinkle Bridge</h1>
<p>{FACTS["html"]}</p>
<p>The bridge carries two lanes of traffic and a cycle path.</p>
<h2>Bridge comparison</h2>
{_html_table(TABLES["html"])}
<h2>Traffic</h2>
<img src="data:image/png;base64,{inline}" alt="{IMAGE_ALT_TEXT["html"]}">
<p>Toll revenue by quarter:</p>
<img src="{HTML_IMAGE_NAME}" alt="{IMAGE_ALT_TEXT["html_file"]}" width="480" height="320">
</body>
</html>
"""
    path.write_text(page, encoding="utf-8")
    return path


def write_markdown(path: Path) -> Path:
    """Write a Markdown file (headings, paragraphs, pipe table, image link) plus a sibling PNG."""
    figure = _prepare(path).parent / MARKDOWN_IMAGE_NAME
    figure.write_bytes(png_bytes(chart_image(CHART_LABELS["markdown"], (9, 4, 6, 2))))
    rows = TABLES["markdown"]
    table = "\n".join("| " + " | ".join(row) + " |" for row in rows[:1])
    table += "\n|" + "---|" * len(rows[0]) + "\n"
    table += "\n".join("| " + " | ".join(row) + " |" for row in rows[1:])
    text = (
        f"# Tamarind Reactor Notes\n\n{FACTS['markdown']}\n\n"
        "The reactor is inspected by the Sorrel safety board.\n\n"
        f"## Coolant table\n\n{table}\n\n## Temperature chart\n\n"
        f"![{IMAGE_ALT_TEXT['markdown']}]({MARKDOWN_IMAGE_NAME})\n"
    )
    path.write_text(text, encoding="utf-8")
    return path


def write_text(path: Path) -> Path:
    """Write a plain-text file with three paragraphs."""
    paragraphs = (FACTS["text"] + " It was founded by cartographers.", *TEXT_EXTRA_FACTS)
    _prepare(path).write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
    return path


def _poster(name: str) -> ImageModule.Image:
    """Return a 720x400 image showing FACTS[name] in large text, with shapes."""
    return text_image(["Poster", FACTS[name]], (720, 400), font_size=56)


def write_png(path: Path) -> Path:
    """Write a 720x400 PNG with large OCR-readable text and shapes."""
    _prepare(path).write_bytes(png_bytes(_poster("png")))
    return path


def write_jpeg(path: Path) -> Path:
    """Write a 720x400 JPEG with large OCR-readable text and shapes."""
    _poster("jpeg").save(_prepare(path), format="JPEG", quality=90)
    return path


def write_webp(path: Path) -> Path:
    """Write a 720x400 lossy WebP with large OCR-readable text and shapes."""
    _poster("webp").save(_prepare(path), format="WEBP", quality=90, method=4)
    return path


def write_tiff(path: Path) -> Path:
    """Write a 2-frame TIFF (LZW) with OCR-readable text on each frame."""
    first = text_image(["Page one", FACTS["tiff"]], (720, 400), font_size=56)
    second = text_image(["Page two", TIFF_PAGE_TWO_TEXT], (720, 400), font_size=56)
    first.save(
        _prepare(path), format="TIFF", save_all=True, append_images=[second], compression="tiff_lzw"
    )
    return path


GOOD_DOCUMENTS: dict[str, tuple[str, Callable[[Path], Path]]] = {
    "pdf": ("report.pdf", write_pdf),
    "scanned_pdf": ("scanned.pdf", write_scanned_pdf),
    "docx": ("memo.docx", write_docx),
    "pptx": ("deck.pptx", write_pptx),
    "html": ("page.html", write_html),
    "markdown": ("notes.md", write_markdown),
    "text": ("plain.txt", write_text),
    "png": ("poster.png", write_png),
    "jpeg": ("photo.jpg", write_jpeg),
    "webp": ("banner.webp", write_webp),
    "tiff": ("pages.tiff", write_tiff),
}
"""Good document name -> (file name, writer)."""


def write_good_documents(target: Path) -> dict[str, Path]:
    """Write every good document into ``target``; return name -> path."""
    return {
        name: writer(target / file_name) for name, (file_name, writer) in GOOD_DOCUMENTS.items()
    }


def write_bad_documents(target: Path) -> dict[str, Path]:
    """Write every bad input into ``target``; return bad-input class -> path."""
    return write_all_bad_documents(target)


def write_corpus(target: Path) -> GeneratedCorpus:
    """Write good documents to ``target/"good"`` and bad inputs to ``target/"bad"``."""
    return GeneratedCorpus(
        root=target,
        good=write_good_documents(target / "good"),
        bad=write_bad_documents(target / "bad"),
    )


def write_long_pdf(path: Path, pages: int, image_every: int = 10, variant: int = 0) -> Path:
    """Write a born-digital PDF of ``pages`` pages: numbered paragraphs on every page and
    a chart on every ``image_every``-th page, for streaming tests and benchmarks. A
    non-zero ``variant`` puts its number in the text and charts, so several files share
    no text and no image (nor cached captions)."""
    label = f"File {variant} " if variant else ""
    specs = []
    for number in range(1, pages + 1):
        content = pdf_text(72, 740, 16, f"{label}Section {number}: turbine log", bold=True)
        for line in range(18):
            sentence = (
                f"{label}Page {number} line {line}: the inspection crew measured blade "
                f"vibration of {(variant * 31 + number * 7 + line) % 97} units at station {line}."
            )
            content += pdf_text(72, 712 - line * 18, 10, sentence)
        images = {}
        if image_every and number % image_every == 0:
            content += pdf_image("Chart", 72, 120, 300, 200)
            values = (number % 5 + 1, 4 + variant % 7, 6, 2)
            images["Chart"] = chart_image(f"{label[5:]}P{number}", values=values)
        specs.append(PdfPageSpec(content, images))
    _prepare(path).write_bytes(build_pdf(specs))
    return path
