"""Every class of bad input, at the parser level: the right error, naming file and reason."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mmrag.errors import (
    CorruptFileError,
    DocumentError,
    EmptyDocumentError,
    EncryptedFileError,
    ImageTooLargeError,
    UnsupportedFileError,
)
from mmrag.parsing import parse_file
from mmrag.settings import ParsingSettings
from mmrag.testing.documents import KEYWORDS, GeneratedCorpus
from mmrag.testing.documents_bad import BAD_WRITERS, png_bytes, text_image
from mmrag.types import Element, ElementKind, ImageElement, TextElement

REJECTED: dict[str, tuple[type[DocumentError], tuple[str, ...]]] = {
    # bad-input class -> (error, words one of which the reason must use)
    "corrupt_pdf": (CorruptFileError, ("damaged", "truncated", "corrupt", "readable")),
    "empty": (EmptyDocumentError, ("empty", "0 bytes")),
    "encrypted_pdf": (EncryptedFileError, ("password", "encrypted")),
    "truncated_pdf": (CorruptFileError, ("damaged", "truncated", "corrupt", "readable")),
    "zero_page_pdf": (EmptyDocumentError, ("no pages", "0 pages", "zero pages")),
    "unsupported": (UnsupportedFileError, ("unsupported", "not supported")),
    "decompression_bomb": (ImageTooLargeError, ("too large", "pixels", "bomb")),
    "corrupt_docx": (CorruptFileError, ("docx",)),
    "corrupt_image": (CorruptFileError, ("image",)),
}
ACCEPTED = {"mislabelled", "no_text"}


def consume(path: Path, settings: ParsingSettings | None = None) -> tuple[list[Element], list[str]]:
    """Parse and read every element: some errors may only surface while streaming."""
    parsed = parse_file(path, settings or ParsingSettings())
    elements = list(parsed.elements)
    return elements, parsed.warnings


def assert_names_file_and_reason(exc: DocumentError, path: Path) -> None:
    assert exc.path == path
    assert str(path) in str(exc)
    assert exc.reason.strip()
    assert exc.reason in str(exc)


def test_every_bad_input_class_is_covered() -> None:
    assert set(REJECTED) | ACCEPTED == set(BAD_WRITERS)


@pytest.mark.parametrize("bad_class", sorted(REJECTED))
def test_bad_input_raises_the_right_error(corpus: GeneratedCorpus, bad_class: str) -> None:
    error, reason_words = REJECTED[bad_class]
    path = corpus.bad[bad_class]
    with pytest.raises(DocumentError) as caught:
        consume(path)
    assert caught.type is error, f"{bad_class}: {caught.type.__name__}: {caught.value}"
    assert_names_file_and_reason(caught.value, path)
    reason = caught.value.reason.lower()
    assert any(word in reason for word in reason_words), reason


@pytest.mark.parametrize(
    "bad_class",
    ["corrupt_pdf", "encrypted_pdf", "truncated_pdf", "zero_page_pdf", "empty", "unsupported"],
)
def test_bad_documents_fail_when_opened(corpus: GeneratedCorpus, bad_class: str) -> None:
    """Opening validates the file, before any element is read."""
    with pytest.raises(REJECTED[bad_class][0]):
        parse_file(corpus.bad[bad_class], ParsingSettings())


def test_unsupported_error_lists_supported_types(corpus: GeneratedCorpus) -> None:
    with pytest.raises(UnsupportedFileError) as caught:
        consume(corpus.bad["unsupported"])
    assert "pdf" in caught.value.reason.lower()
    assert "docx" in caught.value.reason.lower()


def test_mislabelled_png_is_parsed_as_an_image_with_a_warning(corpus: GeneratedCorpus) -> None:
    path = corpus.bad["mislabelled"]
    parsed = parse_file(path, ParsingSettings())
    elements = list(parsed.elements)
    assert parsed.file_type == "image"
    assert parsed.page_count == 1
    assert parsed.warnings, "a name/content mismatch must be reported"
    warning = parsed.warnings[0].lower()
    assert "pdf" in warning and "image" in warning, warning  # the name's type and the content's
    images = [e for e in elements if isinstance(e, ImageElement)]
    assert [image.kind for image in images] == [ElementKind.IMAGE]


def test_blank_pdf_yields_no_text_and_no_images(corpus: GeneratedCorpus) -> None:
    path = corpus.bad["no_text"]
    parsed = parse_file(path, ParsingSettings())
    elements = list(parsed.elements)
    assert parsed.file_type == "pdf"
    assert parsed.page_count == 1
    assert [e for e in elements if isinstance(e, TextElement)] == []
    assert [e for e in elements if isinstance(e, ImageElement)] == []


def test_blank_pdf_page_render_is_dropped_even_when_all_pages_are_rendered(
    corpus: GeneratedCorpus,
) -> None:
    elements, _ = consume(corpus.bad["no_text"], ParsingSettings(page_images="all"))
    assert elements == []


# ------------------------------------------------------------- image size limits


@pytest.mark.parametrize(
    ("name", "skipped"),
    [("pdf", 1), ("docx", 1), ("pptx", 1), ("html", 2), ("markdown", 1)],
)
def test_embedded_image_over_max_image_pixels_is_skipped_with_a_warning(
    corpus: GeneratedCorpus, name: str, skipped: int
) -> None:
    # Every embedded chart is 480x320 = 153,600 px.
    settings = ParsingSettings(max_image_pixels=100_000)
    parsed = parse_file(corpus.good[name], settings)
    elements = list(parsed.elements)
    assert [e for e in elements if e.kind is ElementKind.IMAGE] == []
    over = [w for w in parsed.warnings if "max_image_pixels" in w]
    assert len(over) == skipped, parsed.warnings
    text = " ".join(e.text for e in elements if isinstance(e, TextElement)).lower()
    for keyword in KEYWORDS[name]:
        assert keyword.lower() in text, "the document survives, text and all"


def test_image_file_over_max_image_pixels_is_refused(corpus: GeneratedCorpus) -> None:
    path = corpus.good["png"]  # 720x400 = 288,000 px
    with pytest.raises(ImageTooLargeError) as caught:
        consume(path, ParsingSettings(max_image_pixels=100_000))
    assert_names_file_and_reason(caught.value, path)
    assert "max_image_pixels" in caught.value.reason


def test_decompression_bomb_is_refused_under_a_low_limit(corpus: GeneratedCorpus) -> None:
    path = corpus.bad["decompression_bomb"]
    with pytest.raises(ImageTooLargeError) as caught:
        consume(path, ParsingSettings(max_image_pixels=1_000_000))
    assert_names_file_and_reason(caught.value, path)


def test_decompression_bomb_embedded_in_html_costs_a_warning(
    corpus: GeneratedCorpus, tmp_path: Path
) -> None:
    shutil.copy(corpus.bad["decompression_bomb"], tmp_path / "bomb.png")
    page = tmp_path / "bomb.html"
    page.write_text(
        "<html><body><h1>Report</h1><p>The Heron dam holds water.</p>"
        '<img src="bomb.png" alt="bomb"></body></html>',
        encoding="utf-8",
    )
    elements, warnings = consume(page)
    assert [e for e in elements if isinstance(e, ImageElement)] == []
    assert len(warnings) == 1 and "image 1" in warnings[0], warnings
    assert "heron" in " ".join(e.text for e in elements if isinstance(e, TextElement)).lower()


# ------------------------------------------------------------- more bad input


def test_text_file_with_nul_bytes_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "binary.txt"
    path.write_bytes(b"plain words\x00\x01\x02 then binary\x00\xff" * 20)
    with pytest.raises(CorruptFileError) as caught:
        consume(path)
    assert_names_file_and_reason(caught.value, path)


def test_truncated_image_is_corrupt(corpus: GeneratedCorpus, tmp_path: Path) -> None:
    data = corpus.good["png"].read_bytes()
    path = tmp_path / "truncated.png"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError) as caught:
        consume(path)
    assert_names_file_and_reason(caught.value, path)


def test_missing_file_and_directory_are_unsupported(tmp_path: Path) -> None:
    for path in (tmp_path / "missing.pdf", tmp_path):
        with pytest.raises(UnsupportedFileError) as caught:
            consume(path)
        assert_names_file_and_reason(caught.value, path)


def test_corrupt_image_embedded_in_markdown_costs_a_warning(
    corpus: GeneratedCorpus, tmp_path: Path
) -> None:
    shutil.copy(corpus.bad["corrupt_image"], tmp_path / "broken.png")
    page = tmp_path / "notes.md"
    page.write_text("# Notes\n\nThe Heron dam holds water.\n\n![broken](broken.png)\n")
    elements, warnings = consume(page)
    assert [e for e in elements if isinstance(e, ImageElement)] == []
    assert len(warnings) == 1 and "image 1" in warnings[0], warnings


def test_html_image_outside_the_document_folder_is_not_read(tmp_path: Path) -> None:
    outside = tmp_path / "secret.png"
    outside.write_bytes(png_bytes(text_image(["SECRET"], (300, 200), font_size=48)))
    folder = tmp_path / "site"
    folder.mkdir()
    page = folder / "index.html"
    page.write_text(
        '<html><body><p>The Heron dam holds water.</p><img src="../secret.png" alt="x">'
        '<img src="https://example.com/remote.png" alt="remote"></body></html>',
        encoding="utf-8",
    )
    elements, warnings = consume(page)
    assert [e for e in elements if isinstance(e, ImageElement)] == []
    assert len(warnings) == 1 and "secret.png" in warnings[0], warnings


# ------------------------------------------------------------- file handles


def unclosed(path: Path, settings: ParsingSettings) -> list[str]:
    """ResourceWarnings about ``path`` raised while parsing it (whatever the outcome)."""
    import contextlib
    import gc
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        with contextlib.suppress(DocumentError):
            consume(path, settings)
        gc.collect()
    return [str(w.message) for w in caught if path.name in str(w.message)]


def test_image_file_is_closed_when_refused_as_too_large(corpus: GeneratedCorpus) -> None:
    assert unclosed(corpus.good["png"], ParsingSettings(max_image_pixels=100_000)) == []


def test_image_file_is_closed_when_its_data_is_damaged(
    corpus: GeneratedCorpus, tmp_path: Path
) -> None:
    data = corpus.good["png"].read_bytes()
    path = tmp_path / "half.png"
    path.write_bytes(data[: len(data) // 2])
    assert unclosed(path, ParsingSettings()) == []


def test_multi_frame_image_file_is_closed_after_parsing(corpus: GeneratedCorpus) -> None:
    assert unclosed(corpus.good["tiff"], ParsingSettings(ocr=False)) == []
