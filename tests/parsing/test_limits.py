"""Limits before work: hostile files fail fast, with the setting they broke; good files
parse as before. Each hostile file is generated small, against a lowered limit."""

from __future__ import annotations

import io
import shutil
import struct
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from mmrag.errors import CorruptFileError, DocumentError, ImageTooLargeError, LimitExceededError
from mmrag.parsing import parse_file
from mmrag.parsing.filetypes import detect_file_type, read_zip_directory
from mmrag.settings import ParsingSettings
from mmrag.testing import hostile_builders as hostile
from mmrag.testing.documents import KEYWORDS, GeneratedCorpus
from mmrag.testing.documents_bad import PdfPageSpec, build_pdf, pdf_text
from mmrag.types import Element, ElementKind, ImageElement, TextElement


def consume(path: Path, settings: ParsingSettings) -> tuple[list[Element], list[str]]:
    parsed = parse_file(path, settings)
    elements = list(parsed.elements)
    return elements, parsed.warnings


def refused(path: Path, settings: ParsingSettings, setting: str) -> LimitExceededError:
    """Parse ``path``: it must be refused as over ``parsing.<setting>``, naming the file."""
    with pytest.raises(LimitExceededError) as caught:
        consume(path, settings)
    assert caught.value.path == path
    assert f"parsing.{setting}" in caught.value.reason, caught.value.reason
    return caught.value


def all_text(elements: list[Element]) -> str:
    return " ".join(e.text for e in elements if isinstance(e, TextElement)).lower()


# ------------------------------------------------------------------ Office packages


def test_docx_zip_bomb_is_refused_from_its_directory(tmp_path: Path) -> None:
    # 20,000 identical paragraphs: ~900 KB of XML in a few KB, 300:1 and more.
    path = hostile.write_docx_bomb(tmp_path / "bomb.docx", 20_000)
    started = time.perf_counter()
    with pytest.raises(LimitExceededError) as caught:
        consume(path, ParsingSettings())
    assert time.perf_counter() - started < 2, "refused before any XML is parsed"
    reason = caught.value.reason
    assert "word/document.xml" in reason and "100:1" in reason, reason


@pytest.mark.parametrize("name", ["docx", "pptx"])
def test_office_package_over_max_unzipped_mb_is_refused(corpus: GeneratedCorpus, name: str) -> None:
    error = refused(corpus.good[name], ParsingSettings(max_unzipped_mb=0.01), "max_unzipped_mb")
    assert "unpacks to" in error.reason and "(0.01)" in error.reason, error.reason


@pytest.mark.parametrize("name", ["docx", "pptx"])
def test_office_package_over_max_zip_entries_is_refused(corpus: GeneratedCorpus, name: str) -> None:
    path = corpus.good[name]
    with zipfile.ZipFile(path) as archive:
        parts = len(archive.infolist())
    error = refused(path, ParsingSettings(max_zip_entries=parts - 1), "max_zip_entries")
    assert f"{parts:,} parts" in error.reason, error.reason
    elements, _ = consume(path, ParsingSettings(max_zip_entries=parts))
    assert elements, "at the limit the package parses"


def _lie_about_entries(path: Path, entries: int) -> None:
    """Rewrite the end-of-directory record to declare ``entries`` (zipfile ignores it)."""
    data = bytearray(path.read_bytes())
    at = data.rfind(b"PK\x05\x06")
    data[at + 8 : at + 12] = struct.pack("<HH", entries, entries)
    path.write_bytes(bytes(data))


def test_office_package_understating_its_entries_is_still_refused(tmp_path: Path) -> None:
    path = hostile.write_docx_with_entries(tmp_path / "padded.docx", 300)
    _lie_about_entries(path, 5)
    directory = read_zip_directory(path)
    assert directory is not None and directory.entries == 5
    refused(path, ParsingSettings(max_zip_entries=100), "max_zip_entries")


def test_office_part_inflating_past_its_declared_size_is_refused(tmp_path: Path) -> None:
    # zipfile trusts the directory's size but inflates up to 2 GiB before cutting there.
    path = hostile.write_docx_lying_size(tmp_path / "lying.docx", 20_000, declared=1024)
    with pytest.raises(CorruptFileError) as caught:
        consume(path, ParsingSettings())
    assert "word/document.xml inflates past the 1,024 bytes" in caught.value.reason


@pytest.mark.parametrize(
    "write",
    [
        hostile.write_docx_billion_laughs,
        lambda path: hostile.write_docx_billion_laughs(path, levels=2),  # expands to 100 words
    ],
    ids=["billion-laughs", "small-entity"],
)
def test_docx_declaring_a_dtd_is_refused(tmp_path: Path, write: Callable[[Path], Path]) -> None:
    path = write(tmp_path / "entities.docx")
    with pytest.raises(CorruptFileError) as caught:
        consume(path, ParsingSettings())
    assert "DTD" in caught.value.reason and "word/document.xml" in caught.value.reason


def test_docx_nested_too_deep_is_corrupt_not_a_crash(tmp_path: Path) -> None:
    # libxml2 refuses XML deeper than 256 levels; the error names the file.
    path = hostile.write_docx_deep(tmp_path / "deep.docx", 300)
    with pytest.raises(CorruptFileError) as caught:
        consume(path, ParsingSettings())
    assert caught.value.path == path


def test_pptx_over_max_pages_is_refused_before_parsing(tmp_path: Path) -> None:
    path = hostile.write_pptx_slides(tmp_path / "deck.pptx", 3)
    error = refused(path, ParsingSettings(max_pages=2), "max_pages")
    assert "3 slides" in error.reason, error.reason
    elements, _ = consume(path, ParsingSettings(max_pages=3))
    assert "slide 3" in all_text(elements)


def test_repeated_docx_picture_is_decoded_once(tmp_path: Path) -> None:
    from docx import Document
    from docx.shared import Inches

    from mmrag.testing.documents_bad import chart_image, png_bytes

    document = Document()
    document.add_paragraph("The same chart, three times.")
    chart = png_bytes(chart_image("again"))
    for _ in range(3):
        document.add_picture(io.BytesIO(chart), width=Inches(3))
    path = tmp_path / "charts.docx"
    document.save(str(path))
    elements, warnings = consume(path, ParsingSettings())
    assert len([e for e in elements if isinstance(e, ImageElement)]) == 1
    assert warnings == []


@pytest.mark.parametrize("name", ["docx", "pptx"])
def test_office_file_named_in_bytes_that_are_not_utf8_parses(
    corpus: GeneratedCorpus, tmp_path: Path, name: str
) -> None:
    import os

    path = Path(os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9." + name.encode()))
    shutil.copy(corpus.good[name], path)
    elements, _ = consume(path, ParsingSettings(ocr=False))
    for keyword in KEYWORDS[name]:
        assert keyword.lower() in all_text(elements)


# ------------------------------------------------------------------ file type detection


def test_detection_trusts_the_name_when_told_not_to_inspect(corpus: GeneratedCorpus) -> None:
    docx = corpus.good["docx"]
    assert detect_file_type(docx, inspect_packages=False).file_type == "docx"
    renamed = docx.with_name("renamed.pptx")
    shutil.copy(docx, renamed)
    assert detect_file_type(renamed).file_type == "docx"  # read from its parts
    assert detect_file_type(renamed, inspect_packages=False).file_type == "pptx"  # the name


def test_detection_reads_no_directory_past_its_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mmrag.parsing import filetypes

    monkeypatch.setattr(filetypes, "MAX_INSPECTED_ENTRIES", 10)
    small = hostile.write_zip_with_entries(tmp_path / "small.pptx", 5)
    large = hostile.write_zip_with_entries(tmp_path / "large.pptx", 50)
    assert detect_file_type(small).file_type == "docx"  # inspected: it holds word/document.xml
    assert detect_file_type(large).file_type == "pptx"  # too many parts: taken at its name


def test_zip64_directory_count_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 4)  # zipfile writes zip64 records
    path = hostile.write_zip_with_entries(tmp_path / "wide.docx", 9)
    assert path.read_bytes().rfind(b"PK\x06\x06") > 0
    directory = read_zip_directory(path)
    assert directory is not None and directory.entries == 9


# ------------------------------------------------------------------ PDF


def test_pdf_over_max_pages_is_refused_when_opened(tmp_path: Path) -> None:
    path = hostile.write_blank_pdf_pages(tmp_path / "long.pdf", 3)
    with pytest.raises(LimitExceededError) as caught:
        parse_file(path, ParsingSettings(max_pages=2))
    assert caught.value.reason == "the PDF has 3 pages, over parsing.max_pages (2)"


@pytest.mark.parametrize(
    ("in_form", "flate_twice"),
    [(False, False), (True, False), (False, True)],
    ids=["page", "form", "flate-twice"],
)
def test_page_content_over_max_page_content_mb_is_refused_before_pdfium_reads_it(
    tmp_path: Path, in_form: bool, flate_twice: bool
) -> None:
    padded = tmp_path / "padded.pdf"
    hostile.write_pdf_padded_content(padded, 3_000_000, in_form=in_form, flate_twice=flate_twice)
    assert padded.stat().st_size < 20_000
    error = refused(padded, ParsingSettings(max_page_content_mb=2), "max_page_content_mb")
    assert error.reason.startswith("page 1's content inflates past"), error.reason
    # Under the limit, the same page is read as before.
    elements, _ = consume(padded, ParsingSettings(max_page_content_mb=4))
    assert "padded content page" in all_text(elements)


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [({"page_images": "all", "ocr": False}, "render_dpi"), ({"page_images": "none"}, "ocr_dpi")],
    ids=["page-image", "ocr"],
)
def test_huge_page_is_rendered_within_max_image_pixels(
    tmp_path: Path, overrides: dict[str, object], setting: str
) -> None:
    from mmrag.testing.documents_bad import pdf_image, text_image

    # A 200 x 200 inch page with a picture of text: 1.6 billion pixels at 200 dpi.
    scan = text_image(["HUGE PAGE"], (1200, 300), font_size=160, mode="L")
    page = PdfPageSpec(pdf_image("Scan", 0, 12000, 14400, 2400), {"Scan": scan}, 14400, 14400)
    path = tmp_path / "huge.pdf"
    path.write_bytes(build_pdf([page]))
    settings = ParsingSettings(max_image_pixels=2_000_000, **overrides)
    elements, warnings = consume(path, settings)
    (warning,) = [w for w in warnings if f"parsing.{setting}" in w]
    assert warning.startswith("page 1: rendered at 7 dpi") and "max_image_pixels" in warning
    pages = [e for e in elements if isinstance(e, ImageElement) and e.kind is ElementKind.PAGE]
    for page_image in pages:
        assert page_image.image.width * page_image.image.height <= 2_000_000
    texts = [e for e in elements if isinstance(e, TextElement)]
    assert len(pages) == (setting == "render_dpi") and len(texts) == (setting == "ocr_dpi")
    for text in texts:  # OCR boxes are scaled back with the dpi used
        assert "huge" in text.text.lower()
        assert text.bbox is not None
        left, top, right, bottom = text.bbox
        assert 0 <= left < right <= 14400 and 0 <= top < bottom <= 2400, text.bbox


def _count_ocr(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    from mmrag.parsing import pdf

    calls: list[int] = []
    real = pdf.ocr_lines

    def counted(image: object, languages: str) -> object:
        calls.append(1)
        return real(image, languages)  # type: ignore[arg-type]

    monkeypatch.setattr(pdf, "ocr_lines", counted)
    return calls


def test_blank_pages_are_not_ocrd_or_rendered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count_ocr(monkeypatch)
    path = hostile.write_blank_pdf_pages(tmp_path / "blank.pdf", 30)
    elements, warnings = consume(path, ParsingSettings(page_images="all"))
    assert (elements, warnings, calls) == ([], [], [])


def test_only_pages_with_something_on_them_are_ocrd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count_ocr(monkeypatch)
    path = hostile.write_blank_pdf_pages(tmp_path / "mixed.pdf", 6, text_every=3)
    elements, _ = consume(path, ParsingSettings())
    assert len(calls) == 2
    pages = {e.page for e in elements if isinstance(e, TextElement) and "blank" in e.text.lower()}
    assert pages == {3, 6}


def test_a_tiny_word_is_not_a_blank_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_ocr(monkeypatch)
    path = tmp_path / "tiny.pdf"
    path.write_bytes(build_pdf([PdfPageSpec(pdf_text(300, 400, 4, "ok"), {})]))
    consume(path, ParsingSettings())
    assert len(calls) == 1, "a 4 pt word (under min_page_chars) is still OCR'd"


def test_many_one_letter_runs_take_linear_time(tmp_path: Path) -> None:
    path = hostile.write_pdf_many_text_runs(tmp_path / "runs.pdf", 6000)
    started = time.perf_counter()
    elements, warnings = consume(path, ParsingSettings())
    assert time.perf_counter() - started < 3  # text per rectangle was quadratic: ~18 s
    assert all_text(elements).split().count("x") == 6000
    assert warnings == []
    texts = [e for e in elements if isinstance(e, TextElement)]
    assert all(e.bbox is not None for e in texts), "read in one pass, still with positions"


def test_image_drawn_many_times_is_decoded_once_per_page(tmp_path: Path) -> None:
    path = hostile.write_pdf_repeated_image(tmp_path / "again.pdf", 200)
    elements, _ = consume(path, ParsingSettings())
    assert len([e for e in elements if e.kind is ElementKind.IMAGE]) == 1


# ------------------------------------------------------------------ image files


@pytest.mark.parametrize(
    ("write", "name"),
    [(hostile.write_tiff_frames, "frames.tiff"), (hostile.write_gif_frames, "frames.gif")],
    ids=["tiff", "gif"],
)
def test_image_with_too_many_frames_is_refused(
    tmp_path: Path, write: Callable[[Path, int], Path], name: str
) -> None:
    path = write(tmp_path / name, 12)
    error = refused(path, ParsingSettings(max_pages=10, ocr=False), "max_pages")
    assert "at least 11 frames" in error.reason, error.reason
    parsed = parse_file(path, ParsingSettings(max_pages=12, ocr=False))
    assert parsed.page_count == 12


def test_tiff_page_loop_is_corrupt(tmp_path: Path) -> None:
    path = hostile.write_tiff_loop(tmp_path / "loop.tiff")
    with pytest.raises(CorruptFileError) as caught:
        consume(path, ParsingSettings(ocr=False))
    assert "loops" in caught.value.reason


def test_every_frame_is_held_to_max_image_pixels(tmp_path: Path) -> None:
    path = hostile.write_tiff_growing(tmp_path / "grows.tiff", 100, 2000)
    with pytest.raises(ImageTooLargeError) as caught:
        consume(path, ParsingSettings(max_image_pixels=1_000_000, ocr=False))
    assert "frame 2" in caught.value.reason and "max_image_pixels" in caught.value.reason


# ------------------------------------------------------------------ text, Markdown, HTML


@pytest.mark.parametrize("name", ["text", "markdown", "html"])
def test_text_file_over_max_text_mb_is_refused_unread(corpus: GeneratedCorpus, name: str) -> None:
    path = corpus.good[name]
    error = refused(path, ParsingSettings(max_text_mb=0.0001), "max_text_mb")
    assert "(0.0001)" in error.reason


@pytest.mark.parametrize("suffix", [".txt", ".md"])
def test_line_over_max_line_chars_is_refused(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"long{suffix}"
    path.write_text("A first line.\n" + "word " * 400 + "\r\nlast line\n")  # 2,000 chars
    error = refused(path, ParsingSettings(max_line_chars=1000), "max_line_chars")
    assert "2,000 characters" in error.reason, error.reason
    elements, _ = consume(path, ParsingSettings(max_line_chars=2000))
    assert "last line" in all_text(elements)


def test_html_is_not_held_to_max_line_chars(tmp_path: Path) -> None:
    path = tmp_path / "minified.html"
    path.write_text("<html><body>" + "<p>A paragraph of words.</p>" * 100 + "</body></html>")
    elements, _ = consume(path, ParsingSettings(max_line_chars=1000))
    assert len(elements) == 100


@pytest.mark.parametrize(
    ("tag", "texts"), [("div", 1), ("span", 1), ("blockquote", 1)], ids=["div", "span", "quote"]
)
def test_html_nested_over_max_depth_is_refused(tmp_path: Path, tag: str, texts: int) -> None:
    deep = hostile.write_nested_html(tmp_path / "deep.html", 40, tag)
    error = refused(deep, ParsingSettings(max_depth=32), "max_depth")
    assert "nests elements 42 deep" in error.reason, error.reason  # with <html> and <body>
    elements, _ = consume(deep, ParsingSettings(max_depth=42))
    assert "deep inside" in all_text(elements)


def test_html_nested_100k_deep_fails_fast(tmp_path: Path) -> None:
    path = hostile.write_nested_html(tmp_path / "deeper.html", 100_000)
    started = time.perf_counter()
    error = refused(path, ParsingSettings(), "max_depth")
    assert time.perf_counter() - started < 2
    assert "100,002 deep" in error.reason


@pytest.mark.parametrize("marker", [">", "-"], ids=["quotes", "list"])
def test_markdown_nested_over_max_depth_is_refused(tmp_path: Path, marker: str) -> None:
    path = hostile.write_nested_markdown(tmp_path / "deep.md", 40, marker)
    refused(path, ParsingSettings(max_depth=30), "max_depth")
    shallow = hostile.write_nested_markdown(tmp_path / "shallow.md", 10, marker)
    elements, _ = consume(shallow, ParsingSettings(max_depth=30))
    assert "before the nest" in all_text(elements)


def test_markdown_nested_100k_deep_fails_fast(tmp_path: Path) -> None:
    path = hostile.write_nested_markdown(tmp_path / "deeper.md", 100_000)
    started = time.perf_counter()
    refused(path, ParsingSettings(), "max_depth")
    assert time.perf_counter() - started < 2


def test_raw_html_nested_in_markdown_is_held_to_max_depth(tmp_path: Path) -> None:
    path = tmp_path / "raw.md"
    path.write_text("# Raw\n\n" + "<div>" * 50 + "\ninside\n" + "</div>" * 50 + "\n")
    error = refused(path, ParsingSettings(max_depth=40), "max_depth")
    assert "the Markdown's HTML" in error.reason


@pytest.mark.parametrize(
    "filler",
    ["[" * 60_000, "[](" * 20_000, "![" * 30_000, " ".join("`" * n for n in range(1, 300))],
    ids=["brackets", "empty-links", "image-openers", "backtick-runs"],
)
def test_pathological_markdown_parses_in_linear_time(tmp_path: Path, filler: str) -> None:
    path = tmp_path / "brackets.md"
    path.write_text(f"The Quillon archive holds 4,000 maps.\n\n{filler}\n")
    started = time.perf_counter()
    elements, _ = consume(path, ParsingSettings())
    assert time.perf_counter() - started < 10  # quadratic: minutes to hours
    assert "quillon archive" in all_text(elements)


def test_long_run_without_spaces_in_text_parses_in_linear_time(tmp_path: Path) -> None:
    path = tmp_path / "run.txt"
    path.write_text("The Quillon archive holds 4,000 maps.\n\n" + "](" * 40_000 + "\n")
    started = time.perf_counter()
    elements, _ = consume(path, ParsingSettings())
    assert time.perf_counter() - started < 10  # spaCy's affix splitting was quadratic
    assert "quillon archive" in all_text(elements)


def test_markdown_elements_keep_their_categories(tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    path.write_text(
        "# Kestrel notes\n\nThe Kestrel project started in 2019 and finished in 2023.\n\n"
        "- reduce cost\n- improve uptime\n\n```\ncode block\n```\n\n"
        "| Name | Role |\n|---|---|\n| Ada | Lead |\n"
    )
    elements, _ = consume(path, ParsingSettings())
    found = [(e.category, e.text) for e in elements if isinstance(e, TextElement)]
    assert found[0] == ("Title", "Kestrel notes")
    assert found[1][1] == "The Kestrel project started in 2019 and finished in 2023."
    assert found[2:4] == [("ListItem", "reduce cost"), ("ListItem", "improve uptime")]
    assert ("Table", "Name | Role\nAda | Lead") in found


def test_repeated_image_source_is_decoded_once(corpus: GeneratedCorpus, tmp_path: Path) -> None:
    shutil.copy(corpus.good["html"].with_name("page_figure.png"), tmp_path / "figure.png")
    page = tmp_path / "again.html"
    page.write_text(
        "<html><body><p>The figure, three times.</p>" + '<img src="figure.png" alt="f">' * 3
    )
    elements, _ = consume(page, ParsingSettings())
    assert len([e for e in elements if isinstance(e, ImageElement)]) == 1


def test_image_link_out_of_the_folder_is_not_read(tmp_path: Path) -> None:
    from mmrag.testing.documents_bad import chart_image, png_bytes

    outside = tmp_path / "secret.png"
    outside.write_bytes(png_bytes(chart_image("SECRET")))
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "innocent.png").symlink_to(outside)
    page = folder / "page.md"
    page.write_text("# Page\n\nSome text here.\n\n![x](innocent.png)\n")
    elements, warnings = consume(page, ParsingSettings())
    assert [e for e in elements if isinstance(e, ImageElement)] == []
    assert len(warnings) == 1 and "innocent.png" in warnings[0]


def test_every_limit_error_is_a_document_error() -> None:
    assert issubclass(LimitExceededError, DocumentError)
