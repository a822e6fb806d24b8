"""Tesseract as mmrag runs it: one thread per image, images in parallel, clear failures."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from mmrag.errors import ModelRuntimeError
from mmrag.ocr import ocr_lines, ocr_text, ocr_texts
from mmrag.testing.documents_bad import text_image

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
