"""Tesseract as mmrag runs it: one thread per image, images in parallel, clear failures."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from mmrag.errors import ModelRuntimeError
from mmrag.ocr import ocr_lines, ocr_text, ocr_texts
from mmrag.parsing import parse_file
from mmrag.settings import ParsingSettings
from mmrag.testing.documents_bad import PdfPageSpec, build_pdf, pdf_image, pdf_text, text_image
from mmrag.types import TextElement

WORDS = ["HARBOUR", "LANTERN", "MERIDIAN", "QUARRY", "TIMBER"]


def test_ocr_texts_reads_each_image_in_order() -> None:
    images = [text_image([word], (900, 600), font_size=72) for word in WORDS]

    texts = ocr_texts(images, "eng")

    assert [text.splitlines()[0] for text in texts] == WORDS  # (the shapes below read as junk)
    assert texts == [ocr_text(image, "eng") for image in images]


def test_ocr_lines_have_boxes_around_their_words() -> None:
    image = text_image(["NORTH GATE", "", "SOUTH GATE"], (900, 900), font_size=72)

    lines = ocr_lines(image, "eng")

    assert [line.text for line in lines[:2]] == ["NORTH GATE", "SOUTH GATE"]
    first, second = (line.bbox for line in lines[:2])
    assert first[3] <= second[1]  # top to bottom
    assert all(
        0 <= left < right <= 900 and 0 <= top < bottom <= 900
        for left, top, right, bottom in (first, second)
    )


def test_grayscale_and_palette_images_are_read() -> None:
    image = text_image(["GRANITE"], (900, 600), font_size=72)

    assert ocr_text(image.convert("L"), "eng").startswith("GRANITE\n")
    assert ocr_text(image.convert("P"), "eng").startswith("GRANITE\n")


def test_a_missing_language_fails_naming_tesseract_and_its_reason() -> None:
    image = text_image(["GRANITE"], (900, 600), font_size=72)

    with pytest.raises(ModelRuntimeError, match=r"tesseract failed \(exit \d+\): .*\S"):
        ocr_text(image, "xqz")


def test_tesseract_runs_on_one_thread_without_changing_this_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stand-in tesseract that prints the thread limit it was started with.
    fake = tmp_path / "tesseract"
    fake.write_text('#!/bin/sh\ncat > /dev/null\necho "limit=$OMP_THREAD_LIMIT"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("OMP_THREAD_LIMIT", raising=False)

    texts = ocr_texts([text_image(["A"], (200, 100))] * 3, "eng")

    assert texts == ["limit=1"] * 3
    assert "OMP_THREAD_LIMIT" not in os.environ  # PyTorch's OpenMP pool keeps its threads


def write_scanned_pages(path: Path, words: list[str], text_page: int) -> Path:
    """A PDF of scanned pages, one word each, except ``text_page`` (1-based), which has a
    text layer instead."""
    pages = []
    for number, word in enumerate(words, start=1):
        if number == text_page:
            pages.append(PdfPageSpec(pdf_text(72, 700, 24, f"{word} typed page"), {}))
        else:
            scan = text_image([word], (1275, 1650), font_size=96, mode="L")
            pages.append(PdfPageSpec(pdf_image("Scan", 0, 0, 612, 792), {"Scan": scan}))
    path.write_bytes(build_pdf(pages))
    return path


def test_scanned_pages_ocrd_in_parallel_come_out_in_page_order(tmp_path: Path) -> None:
    pdf = write_scanned_pages(tmp_path / "scans.pdf", WORDS, text_page=3)

    parsed = parse_file(pdf, ParsingSettings(page_images="none"))
    texts = [(e.page, e.text) for e in parsed.elements if isinstance(e, TextElement)]

    assert [page for page, _ in texts] == [1, 2, 3, 4, 5]
    assert [text.split()[0] for _, text in texts] == WORDS


def test_a_parse_closed_early_stops_its_ocr(tmp_path: Path) -> None:
    pdf = write_scanned_pages(tmp_path / "scans.pdf", WORDS * 4, text_page=0)
    before = {thread.name for thread in threading.enumerate()}

    elements = parse_file(pdf, ParsingSettings(page_images="none")).elements
    first = next(iter(elements))
    elements.close()  # type: ignore[attr-defined]

    assert isinstance(first, TextElement) and first.page == 1
    assert {thread.name for thread in threading.enumerate()} - before == set()
