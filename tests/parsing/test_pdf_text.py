"""PDF text comes out in whole words, however the PDF draws them (glyph by glyph, kerned,
drop caps, a font change inside a word, letter-spaced, justified, condensed)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mmrag.parsing import parse_file
from mmrag.settings import ParsingSettings
from mmrag.testing.documents import (
    FACTS,
    KERNED_PDF_LINES,
    PDF_PAGE_TWO_FACT,
    TABLES,
    write_kerned_pdf,
    write_long_pdf,
    write_pdf,
)
from mmrag.types import TextElement

PAGE_HEIGHT = 792.0


def texts_of(path: Path) -> list[TextElement]:
    parsed = parse_file(path, ParsingSettings(isolate=False))
    return [element for element in parsed.elements if isinstance(element, TextElement)]


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text)


def assert_whole_words(extracted: str, expected: list[str], *, complete: bool = False) -> None:
    """Every expected line is in the text word for word. With ``complete`` (the lines are
    all the text there is) no word of the text is a piece of a word of theirs either
    (``breache s``, ``T he``)."""
    squashed = " ".join(extracted.split())
    for line in expected:
        assert line in squashed, f"{line!r} not whole in {squashed!r}"
    if complete:
        known = {word for line in expected for word in words(line)}
        assert set(words(extracted)) == known, set(words(extracted)) ^ known


@pytest.fixture(scope="module")
def kerned(tmp_path_factory: pytest.TempPathFactory) -> list[TextElement]:
    return texts_of(write_kerned_pdf(tmp_path_factory.mktemp("kerned") / "kerned.pdf"))


def test_words_drawn_in_pieces_come_out_whole(kerned: list[TextElement]) -> None:
    text = "\n".join(element.text for element in kerned)
    assert_whole_words(text, list(KERNED_PDF_LINES), complete=True)


def test_lines_keep_their_order_and_boxes(kerned: list[TextElement]) -> None:
    tops = []
    for line in KERNED_PDF_LINES:
        (owner,) = [element for element in kerned if line in " ".join(element.text.split())]
        assert owner.bbox is not None
        left, top, right, bottom = owner.bbox
        assert 60 < left < right < 612 and 0 < top < bottom < PAGE_HEIGHT
        tops.append(top)
    assert tops == sorted(tops), "top to bottom, as drawn"


def test_generated_report_has_no_split_words(tmp_path: Path) -> None:
    elements = texts_of(write_pdf(tmp_path / "report.pdf"))
    cells = [cell for row in TABLES["pdf"] for cell in row]
    expected = [FACTS["pdf"], PDF_PAGE_TWO_FACT, "Zephyr Turbine Annual Report", *cells]
    assert_whole_words("\n".join(element.text for element in elements), expected)


def test_long_generated_pdf_has_no_split_words(tmp_path: Path) -> None:
    elements = texts_of(write_long_pdf(tmp_path / "long.pdf", pages=3, image_every=0))
    text = " ".join(" ".join(element.text for element in elements).split())
    for page in (1, 2, 3):
        assert f"Section {page}: turbine log" in text
        for line in range(18):
            assert f"Page {page} line {line}: the inspection crew measured blade" in text
