"""DOCX page numbers come from the page breaks in the file, for text and pictures alike,
and parsing.max_pages holds for DOCX pages."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmrag.errors import LimitExceededError
from mmrag.parsing import ParsedFile, parse_file
from mmrag.parsing.docx_pages import paginate
from mmrag.settings import ParsingSettings
from mmrag.testing.documents import (
    PAGED_DOCX_IMAGES,
    PAGED_DOCX_PAGES,
    PAGED_DOCX_TABLE_PAGE,
    PAGED_DOCX_TEXT,
    RENDERED_DOCX_IMAGES,
    RENDERED_DOCX_PAGES,
    RENDERED_DOCX_TEXT,
    GeneratedCorpus,
    write_paged_docx,
    write_rendered_docx,
)
from mmrag.types import Element, ElementKind, ImageElement, TextElement


def parse(path: Path, **settings: object) -> tuple[ParsedFile, list[Element]]:
    parsed = parse_file(path, ParsingSettings.model_validate({"isolate": False, **settings}))
    return parsed, list(parsed.elements)


def page_of(elements: list[Element], text: str) -> int:
    (page,) = {e.page for e in elements if isinstance(e, TextElement) and text in e.text}
    return page


@pytest.fixture(scope="module")
def paged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_paged_docx(tmp_path_factory.mktemp("docx") / "paged.docx")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_rendered_docx(tmp_path_factory.mktemp("docx") / "rendered.docx")


def test_written_page_breaks_number_the_pages(paged: Path) -> None:
    parsed, elements = parse(paged)
    assert {text: page_of(elements, text) for text in PAGED_DOCX_TEXT} == PAGED_DOCX_TEXT
    (table,) = [e for e in elements if e.kind is ElementKind.TABLE]
    assert table.page == PAGED_DOCX_TABLE_PAGE, "a section's new page holds its first table"
    assert parsed.page_count == PAGED_DOCX_PAGES
    assert parsed.warnings == []


def test_pictures_get_the_page_they_sit_on(paged: Path, rendered: Path) -> None:
    for path, expected in ((paged, PAGED_DOCX_IMAGES), (rendered, RENDERED_DOCX_IMAGES)):
        _, elements = parse(path)
        pictures = [e for e in elements if isinstance(e, ImageElement)]
        assert [picture.page for picture in pictures] == list(expected.values())


def test_rendered_page_breaks_number_the_pages(rendered: Path) -> None:
    parsed, elements = parse(rendered)
    assert {text: page_of(elements, text) for text in RENDERED_DOCX_TEXT} == RENDERED_DOCX_TEXT
    (table,) = [e for e in elements if e.kind is ElementKind.TABLE]
    assert table.page == 3, "the table starts on page 3 and runs over to page 4"
    assert parsed.page_count == RENDERED_DOCX_PAGES


def test_every_element_is_within_the_page_count(paged: Path, rendered: Path) -> None:
    for path in (paged, rendered):
        parsed, elements = parse(path)
        assert {e.page for e in elements} <= set(range(1, parsed.page_count + 1))


def test_docx_over_max_pages_is_refused_before_its_text_is_read(
    paged: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mmrag.parsing import office

    def unread(*args: object, **kwargs: object) -> None:
        raise AssertionError("unstructured read a document over the limit")

    monkeypatch.setattr(office, "partition", unread)
    with pytest.raises(LimitExceededError) as caught:
        parse(paged, max_pages=PAGED_DOCX_PAGES - 1)
    assert caught.value.path == paged
    assert "parsing.max_pages" in caught.value.reason, caught.value.reason


def test_docx_at_max_pages_is_read(paged: Path) -> None:
    parsed, _ = parse(paged, max_pages=PAGED_DOCX_PAGES)
    assert parsed.page_count == PAGED_DOCX_PAGES


def test_docx_without_page_breaks_is_one_page_left_as_it_is(corpus: GeneratedCorpus) -> None:
    import docx

    path = corpus.good["docx"]
    document = docx.Document(str(path))
    before = document.element.xml
    pagination = paginate(document, path, max_pages=1)
    assert (pagination.pages, pagination.changed) == (1, False)
    assert document.element.xml == before
