"""Parsing in a child process: the same elements as in process, and every runaway
(time, memory, a crash, a cancelled job) ends in the child, reported by name."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import psutil
import pytest
from PIL import Image

from mmrag.errors import CorruptFileError, EncryptedFileError, LimitExceededError
from mmrag.parsing import parse_file
from mmrag.parsing.sandbox import parse_untrusted
from mmrag.settings import ParsingSettings
from mmrag.testing.documents import write_docx, write_pdf, write_tiff
from mmrag.testing.documents_bad import write_encrypted_pdf

LIMITS = ParsingSettings(ocr=False, timeout_s=60, memory_mb=256)


def _parse_children() -> list[psutil.Process]:
    """Parser processes: children of the fork server, itself our child."""
    return [
        grandchild
        for child in psutil.Process().children()
        for grandchild in child.children()
        if grandchild.is_running() and grandchild.status() != psutil.STATUS_ZOMBIE
    ]


def _summary(element: object) -> tuple[object, ...]:
    image = getattr(element, "image", None)
    size = image.size if image is not None else None
    return (type(element).__name__, getattr(element, "text", None), element.page, size)  # type: ignore[attr-defined]


@pytest.mark.parametrize("writer", [write_pdf, write_docx, write_tiff])
def test_a_child_gives_what_the_parser_gives_in_process(tmp_path: Path, writer: object) -> None:
    path = writer(tmp_path / "doc")  # type: ignore[operator]
    inline = parse_file(path, LIMITS.model_copy(update={"isolate": False}))
    isolated = parse_untrusted(path, LIMITS, name=path.name)

    assert (isolated.file_type, isolated.page_count) == (inline.file_type, inline.page_count)
    assert [_summary(e) for e in isolated.elements] == [_summary(e) for e in inline.elements]
    assert isolated.warnings == inline.warnings


def test_a_bad_file_fails_with_its_own_error_under_the_given_name(tmp_path: Path) -> None:
    path = write_encrypted_pdf(tmp_path / "x.pdf")
    with pytest.raises(EncryptedFileError) as caught:
        parse_untrusted(path, LIMITS, name="report.pdf")
    assert str(caught.value.path) == "report.pdf"
    assert "password" in caught.value.reason


def test_a_file_needing_more_memory_than_allowed_is_stopped(tmp_path: Path) -> None:
    path = tmp_path / "large.png"  # 6000 x 6000: 108 MB as RGB, under the pixel limit
    Image.radial_gradient("L").resize((6000, 6000)).save(path)

    parsed = parse_untrusted(path, LIMITS.model_copy(update={"memory_mb": 64}), name="large.png")
    with pytest.raises(LimitExceededError, match=r"parsing.memory_mb \(64 MiB\)"):
        list(parsed.elements)
    assert not _parse_children()


def test_a_file_parsing_past_the_time_limit_is_stopped(tmp_path: Path) -> None:
    path = tmp_path / "long.txt"  # seconds of work for the text parser
    path.write_text("".join(f"Paragraph {i} has a few words in it.\n\n" for i in range(60_000)))

    started = time.monotonic()
    with pytest.raises(LimitExceededError, match=r"parsing.timeout_s \(0.5 s\)"):
        parse_untrusted(path, LIMITS.model_copy(update={"timeout_s": 0.5}), name="long.txt")
    assert time.monotonic() - started < 10
    assert not _parse_children()


def test_a_parser_process_that_dies_is_reported_not_raised(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "doc.pdf")
    parsed = parse_untrusted(path, LIMITS, name="doc.pdf")
    for child in _parse_children():
        child.send_signal(signal.SIGKILL)
    with pytest.raises(CorruptFileError, match="parser process died"):
        list(parsed.elements)


def test_closing_the_elements_stops_the_child(tmp_path: Path) -> None:
    """A cancelled job closes its elements: the child goes at once."""
    path = write_pdf(tmp_path / "doc.pdf")
    parsed = parse_untrusted(path, LIMITS, name="doc.pdf")
    next(parsed.elements)
    assert _parse_children()

    parsed.elements.close()  # type: ignore[attr-defined]

    assert not _parse_children()
