"""The chunker: packing, page and table boundaries, long-text splitting, boxes, categories."""

from __future__ import annotations

import random
import re

import pytest

from mmrag.parsing import parse_file
from mmrag.parsing.chunking import Chunker
from mmrag.settings import ParsingSettings
from mmrag.testing.documents import KEYWORDS, TABLES, GeneratedCorpus
from mmrag.types import BBox, Chunk, ElementKind, TextElement


def element(
    text: str,
    page: int = 1,
    category: str = "NarrativeText",
    bbox: BBox | None = None,
    kind: ElementKind = ElementKind.TEXT,
) -> TextElement:
    return TextElement(text=text, page=page, category=category, bbox=bbox, kind=kind)


def table(text: str, page: int = 1) -> TextElement:
    return element(text, page=page, category="Table", kind=ElementKind.TABLE)


def chunks_of(elements: list[TextElement], size: int = 100, overlap: int = 20) -> list[Chunk]:
    return list(Chunker(chunk_size=size, chunk_overlap=overlap).chunk(elements))


def contains_in_order(haystack: str, needles: list[str]) -> bool:
    position = 0
    for needle in needles:
        found = haystack.find(needle, position)
        if found < 0:
            return False
        position = found + len(needle)
    return True


def random_words(count: int, seed: int = 1) -> str:
    rng = random.Random(seed)
    return " ".join(
        "".join(rng.choice("abcdefghijklmnop") for _ in range(rng.randint(2, 9)))
        for _ in range(count)
    )


def overlap_length(first: str, second: str) -> int:
    """Length of the longest suffix of ``first`` that starts ``second``."""
    for length in range(min(len(first), len(second)), 0, -1):
        if first.endswith(second[:length]):
            return length
    return 0


# ------------------------------------------------------------------ packing


def test_no_elements_no_chunks() -> None:
    assert chunks_of([]) == []


def test_short_elements_are_packed_up_to_chunk_size() -> None:
    texts = [f"{letter * 29}." for letter in "abcde"]  # 30 chars each
    chunks = chunks_of([element(text) for text in texts], size=100)
    # Three 30-char elements and two separators fit in 100; a fourth does not.
    assert len(chunks) == 2
    assert contains_in_order(chunks[0].text, texts[:3])
    assert contains_in_order(chunks[1].text, texts[3:])
    assert all(len(chunk.text) <= 100 for chunk in chunks)


def test_every_element_lands_in_exactly_one_chunk_in_order() -> None:
    texts = [f"sentence number {index} about turbines." for index in range(40)]
    chunks = chunks_of([element(text) for text in texts], size=150)
    assert all(len(chunk.text) <= 150 for chunk in chunks)
    joined = "\n".join(chunk.text for chunk in chunks)
    assert contains_in_order(joined, texts)
    for text in texts:
        assert sum(text in chunk.text for chunk in chunks) == 1
    assert len(chunks) < len(texts) / 2, "short elements are packed, not emitted one by one"


def test_packing_boundary_is_exact() -> None:
    fits = chunks_of([element("a" * 50), element("b" * 49)], size=100)  # 50 + 1 + 49
    assert len(fits) == 1
    assert len(fits[0].text) <= 100
    spills = chunks_of([element("a" * 50), element("b" * 50)], size=100)  # 50 + 1 + 50
    assert [chunk.text for chunk in spills] == ["a" * 50, "b" * 50]


def test_chunks_never_cross_pages() -> None:
    elements = [
        element("page one, first.", page=1),
        element("page one, second.", page=1),
        element("page two, first.", page=2),
        element("page two, second.", page=2),
        element("page three.", page=3),
    ]
    chunks = chunks_of(elements, size=1000)
    assert [chunk.page for chunk in chunks] == [1, 2, 3]
    for chunk in chunks:
        source = [e.text for e in elements if e.page == chunk.page]
        assert contains_in_order(chunk.text, source)
        others = [e.text for e in elements if e.page != chunk.page]
        assert not any(text in chunk.text for text in others)


def test_page_change_starts_a_chunk_even_when_returning_to_a_page() -> None:
    elements = [element("one", page=1), element("two", page=2), element("one again", page=1)]
    assert [chunk.page for chunk in chunks_of(elements, size=1000)] == [1, 2, 1]


# ------------------------------------------------------------------ tables


def test_tables_are_chunks_of_their_own() -> None:
    grid = "Name | Value\nalpha | 1\nbeta | 2"
    elements = [element("Before the table."), table(grid), element("After the table.")]
    chunks = chunks_of(elements, size=1000)
    assert [chunk.kind for chunk in chunks] == [
        ElementKind.TEXT,
        ElementKind.TABLE,
        ElementKind.TEXT,
    ]
    assert chunks[1].text == grid
    assert chunks[1].categories == ("Table",)
    assert "alpha" not in chunks[0].text and "alpha" not in chunks[2].text


def test_consecutive_tables_are_not_merged() -> None:
    chunks = chunks_of([table("a | 1"), table("b | 2")], size=1000)
    assert [(chunk.kind, chunk.text) for chunk in chunks] == [
        (ElementKind.TABLE, "a | 1"),
        (ElementKind.TABLE, "b | 2"),
    ]


def test_long_table_is_split_at_row_boundaries() -> None:
    rows = [f"row {index} | value {index} | note {index}" for index in range(40)]
    chunks = chunks_of([table("\n".join(rows))], size=200, overlap=50)
    assert len(chunks) > 1
    for chunk in chunks:
        assert chunk.kind is ElementKind.TABLE
        assert len(chunk.text) <= 200
        assert all(line in rows for line in chunk.text.splitlines()), chunk.text
    covered = {line for chunk in chunks for line in chunk.text.splitlines()}
    assert covered == set(rows)


# ------------------------------------------------------------------ long elements


@pytest.mark.parametrize(("size", "overlap"), [(100, 0), (200, 50), (500, 150)])
def test_long_element_is_split_with_overlap_within_chunk_size(size: int, overlap: int) -> None:
    text = random_words(600)
    chunks = chunks_of([element(text, page=4, bbox=(1, 2, 3, 4))], size=size, overlap=overlap)
    assert len(chunks) > 1
    assert all(0 < len(chunk.text) <= size for chunk in chunks)
    assert all(chunk.page == 4 and chunk.kind is ElementKind.TEXT for chunk in chunks)
    assert all(chunk.bbox == (1, 2, 3, 4) for chunk in chunks)
    assert text.startswith(chunks[0].text)
    assert text.endswith(chunks[-1].text)
    for chunk in chunks:
        assert chunk.text in text, "splitting cuts, it does not rewrite"
    covered = {word for chunk in chunks for word in chunk.text.split()}
    assert covered == set(text.split())
    if overlap == 0:
        assert " ".join(chunk.text for chunk in chunks) == text
    for first, second in zip(chunks, chunks[1:], strict=False):
        shared = overlap_length(first.text, second.text)
        if overlap:
            assert 0 < shared <= overlap, (first.text, second.text)


def test_long_element_prefers_sentence_breaks() -> None:
    sentences = [f"Sentence {index} says something about turbines." for index in range(30)]
    chunks = chunks_of([element(" ".join(sentences))], size=200, overlap=50)
    assert len(chunks) > 1
    for chunk in chunks:
        assert len(chunk.text) <= 200
        assert chunk.text.endswith("."), chunk.text
        assert re.match(r"Sentence \d+ ", chunk.text), chunk.text


def test_text_without_spaces_is_still_split_to_size() -> None:
    chunks = chunks_of([element("x" * 1000)], size=100, overlap=20)
    assert len(chunks) >= 10
    assert all(0 < len(chunk.text) <= 100 for chunk in chunks)


def test_long_element_does_not_swallow_its_neighbours() -> None:
    long_text = random_words(200, seed=3)
    elements = [element("Short intro."), element(long_text), element("Short outro.")]
    chunks = chunks_of(elements, size=150, overlap=30)
    assert all(len(chunk.text) <= 150 for chunk in chunks)
    assert chunks[0].text == "Short intro."
    assert chunks[-1].text == "Short outro."
    middle = chunks[1:-1]
    assert middle and all(chunk.text in long_text for chunk in middle)


# ------------------------------------------------------------------ boxes and categories


def test_chunk_bbox_is_the_union_of_its_elements_boxes() -> None:
    elements = [
        element("first line", bbox=(10, 20, 30, 40)),
        element("second line", bbox=(5, 50, 25, 60)),
        element("third line, no box"),
        element("fourth line", bbox=(12, 22, 80, 45)),
    ]
    (chunk,) = chunks_of(elements, size=1000)
    assert chunk.bbox == (5, 20, 80, 60)


def test_chunk_without_boxes_has_no_bbox() -> None:
    (chunk,) = chunks_of([element("one"), element("two")], size=1000)
    assert chunk.bbox is None


def test_boxes_do_not_leak_across_chunks() -> None:
    elements = [
        element("a", page=1, bbox=(0, 0, 10, 10)),
        element("b", page=2, bbox=(50, 50, 60, 60)),
    ]
    chunks = chunks_of(elements, size=1000)
    assert [chunk.bbox for chunk in chunks] == [(0, 0, 10, 10), (50, 50, 60, 60)]


def test_categories_are_kept_once_in_order() -> None:
    elements = [
        element("Heading", category="Title"),
        element("Body one.", category="NarrativeText"),
        element("Item.", category="ListItem"),
        element("Body two.", category="NarrativeText"),
    ]
    (chunk,) = chunks_of(elements, size=1000)
    assert chunk.categories == ("Title", "NarrativeText", "ListItem")


def test_split_parts_keep_categories() -> None:
    chunks = chunks_of([element(random_words(300), category="Paragraph")], size=100)
    assert len(chunks) > 1
    assert all(chunk.categories == ("Paragraph",) for chunk in chunks)


# ------------------------------------------------------------------ on parsed documents


@pytest.fixture(scope="module")
def parsed_texts(corpus: GeneratedCorpus) -> dict[str, list[TextElement]]:
    settings = ParsingSettings()
    result = {}
    for name in ("pdf", "docx"):
        elements = list(parse_file(corpus.good[name], settings).elements)
        result[name] = [e for e in elements if isinstance(e, TextElement)]
    return result


def test_chunking_a_parsed_pdf(parsed_texts: dict[str, list[TextElement]]) -> None:
    texts = parsed_texts["pdf"]
    chunks = list(Chunker(chunk_size=200, chunk_overlap=30).chunk(texts))
    assert {chunk.page for chunk in chunks} == {1, 2}
    assert [chunk.page for chunk in chunks] == sorted(chunk.page for chunk in chunks)
    for chunk in chunks:
        assert len(chunk.text) <= 200
        assert chunk.bbox is not None
        left, top, right, bottom = chunk.bbox
        assert 0 <= left < right <= 612 and 0 <= top < bottom <= 792
    page_one = " ".join(chunk.text for chunk in chunks if chunk.page == 1).lower()
    for keyword in KEYWORDS["pdf"]:
        assert keyword.lower() in page_one
    assert "osprey" not in page_one


def test_chunking_a_parsed_docx_keeps_its_table_whole(
    parsed_texts: dict[str, list[TextElement]],
) -> None:
    chunks = list(Chunker(chunk_size=1000, chunk_overlap=150).chunk(parsed_texts["docx"]))
    tables = [chunk for chunk in chunks if chunk.kind is ElementKind.TABLE]
    assert len(tables) == 1
    assert tables[0].categories == ("Table",)
    assert tables[0].text.splitlines() == [" | ".join(row) for row in TABLES["docx"]]
    running = " ".join(chunk.text for chunk in chunks if chunk.kind is ElementKind.TEXT).lower()
    for keyword in KEYWORDS["docx"]:
        assert keyword.lower() in running
