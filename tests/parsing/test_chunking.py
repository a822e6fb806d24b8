"""The chunker: packing, page and table boundaries, long-text splitting, boxes, categories;
sizes in characters, and in the real MiniLM tokenizer's tokens within its window."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence

import pytest

from mmrag.parsing import parse_file
from mmrag.parsing.chunking import CONTEXT_RESERVE_TOKENS, Chunker, TokenCounter
from mmrag.settings import ParsingSettings
from mmrag.testing import FakeTextEmbedder
from mmrag.testing.documents import KEYWORDS, TABLES, GeneratedCorpus
from mmrag.testing.tiny_models import minilm_directory
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


def test_parts_without_a_letter_or_digit_are_not_chunks() -> None:
    """A run of brackets or a rule of dashes has nothing to search for: no chunk of it
    is made (each would cost the embedder as much as a paragraph); a part with one word,
    in any script, stays."""
    runs = [element("Zephyr 42 opens the file."), element("[" * 950), element("-" * 80)]
    chunks = chunks_of(runs, size=100, overlap=20)
    assert [chunk.text for chunk in chunks] == ["Zephyr 42 opens the file."]
    assert chunks_of([element("=" * 30), element("---")]) == []
    kept = chunks_of([element("((( 東京 )))"), element("[[[ 7 ]]]", page=2)])
    assert [chunk.text for chunk in kept] == ["((( 東京 )))", "[[[ 7 ]]]"]


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


# ------------------------------------------------------------------ in the embedder's tokens

CONTEXT_PREFIX_WORDS = "annual report 2023 wind farm: Zephyr turbine output and maintenance log"


@pytest.fixture(scope="module")
def minilm() -> tuple[TokenCounter, int]:
    """The shipped all-MiniLM-L6-v2 tokenizer as a batch counter (special tokens in,
    nothing truncated) and the model's window."""
    from transformers import AutoTokenizer

    directory = minilm_directory()
    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    window = json.loads((directory / "sentence_bert_config.json").read_text())["max_seq_length"]

    def count(texts: Sequence[str]) -> list[int]:
        encoded = tokenizer(list(texts), add_special_tokens=True, truncation=False, verbose=False)
        return [len(ids) for ids in encoded["input_ids"]]

    return count, int(window)


def long_texts(seed: int = 5) -> dict[str, list[str]]:
    """Pages of text that run past a 256-token window in different ways."""
    rng = random.Random(seed)
    words = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 11)))
        for _ in range(400)
    ]

    def sentence(count: int) -> str:
        return " ".join(rng.choice(words) for _ in range(count)).capitalize() + "."

    def cjk(count: int) -> str:
        return "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(count))

    return {
        "paragraphs": [" ".join(sentence(rng.randint(4, 30)) for _ in range(3)) for _ in range(40)],
        "one giant paragraph": [" ".join(rng.choice(words) for _ in range(4000))],
        "long words": [
            " ".join(
                "".join(rng.choice("abcdefghij0123456789") for _ in range(rng.randint(20, 90)))
                for _ in range(300)
            )
        ],
        "numbers": [", ".join(f"{rng.randint(0, 10**6)}.{rng.randint(0, 99)}" for _ in range(900))],
        "cjk without spaces": [cjk(3000), "。".join(cjk(rng.randint(10, 60)) for _ in range(60))],
        "mixed": [
            cjk(200)
            + random_words(300, seed=seed)
            + "".join(rng.choice("-=*#_~") for _ in range(400))
            + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(3000))
        ],
    }


def assert_covers(text: str, parts: list[str]) -> None:
    """Each part is a cut of ``text``, in order (overlaps allowed), and together they hold
    every letter and digit of it (a stretch of only symbols and spaces may be dropped)."""
    covered = [not character.isalnum() for character in text]
    start, end = -1, 0
    for part in parts:
        gap_end = end  # a part may start after whitespace the split dropped
        while gap_end < len(text) and text[gap_end].isspace():
            gap_end += 1
        # The latest place it fits without a gap (repeated text fits in several places).
        found = text.rfind(part, start + 1, gap_end + len(part))
        start = found if found >= 0 else text.find(part, start + 1)
        assert start >= 0, f"not a cut of the text, or out of order: {part[:80]!r}"
        end = start + len(part)
        covered[start:end] = [True] * len(part)
    assert all(covered), f"lost: {text[covered.index(False) :][:80]!r}"


@pytest.mark.parametrize("name", list(long_texts()))
def test_token_chunks_fit_the_window_with_the_context_and_lose_nothing(
    minilm: tuple[TokenCounter, int], name: str
) -> None:
    count, window = minilm
    reserve = 64
    chunker = Chunker(
        chunk_size=1000,
        chunk_overlap=150,
        count_tokens=count,
        max_tokens=window,
        reserve_tokens=reserve,
    )
    texts = long_texts()[name]
    chunks = list(chunker.chunk([element(text) for text in texts]))
    prefix = " ".join(CONTEXT_PREFIX_WORDS.split() * 8)
    while count([prefix])[0] - 2 > reserve:  # a context prefix as long as the reserve
        prefix = prefix.rsplit(" ", 1)[0]
    embedded = count([f"{prefix}\n{chunk.text}" for chunk in chunks])
    assert max(embedded) <= window, "a chunk would be truncated by the embedder"
    assert max(count([chunk.text for chunk in chunks])) <= window - reserve
    assert all(len(chunk.text) <= 1000 for chunk in chunks)
    assert_covers("\n".join(texts), [chunk.text for chunk in chunks])


def test_characters_alone_overflow_the_window(minilm: tuple[TokenCounter, int]) -> None:
    """The finding: 1,000 characters of dense text (numbers, CJK) pass MiniLM's window."""
    count, window = minilm
    chunker = Chunker(chunk_size=1000, chunk_overlap=150)
    for name in ("numbers", "cjk without spaces"):
        texts = long_texts()[name]
        chunks = list(chunker.chunk([element(text) for text in texts]))
        assert max(count([chunk.text for chunk in chunks])) > window


def test_token_chunks_fill_the_window_where_characters_allow(
    minilm: tuple[TokenCounter, int],
) -> None:
    count, window = minilm
    chunker = Chunker(chunk_size=5000, chunk_overlap=0, count_tokens=count, max_tokens=window)
    text = long_texts()["one giant paragraph"][0]
    chunks = [chunk.text for chunk in chunker.chunk([element(text)])]
    sizes = count(chunks)
    assert max(sizes) <= window
    assert min(sizes[:-1]) > window * 0.8, "split by tokens, not by a character guess"
    assert " ".join(chunks) == text


def test_a_known_prefix_is_measured_instead_of_the_reserve(
    minilm: tuple[TokenCounter, int],
) -> None:
    count, window = minilm
    chunker = Chunker(
        chunk_size=5000, chunk_overlap=0, count_tokens=count, max_tokens=window, reserve_tokens=8
    )
    texts = long_texts()["cjk without spaces"]
    long_prefix = "Reactor inspection: " + ", ".join(str(n) for n in range(40)) + "\n"
    for prefix in (long_prefix, "Memo\n"):
        chunks = list(chunker.chunk([element(text) for text in texts], prefix=prefix))
        assert max(count([prefix + chunk.text for chunk in chunks])) <= window
        assert_covers("\n".join(texts), [chunk.text for chunk in chunks])
    short = list(chunker.chunk([element(text) for text in texts], prefix="Memo\n"))
    long = list(chunker.chunk([element(text) for text in texts], prefix=long_prefix))
    assert len(short) < len(long)


def test_short_elements_are_packed_up_to_the_token_budget(
    minilm: tuple[TokenCounter, int],
) -> None:
    count, window = minilm
    texts = [
        f"Reading {index}: {index * 7919 % 10007} kWh at 0.{index:04d} Hz." for index in range(300)
    ]
    chunker = Chunker(chunk_size=4000, chunk_overlap=200, count_tokens=count, max_tokens=window)
    chunks = list(chunker.chunk([element(text) for text in texts]))
    assert max(count([chunk.text for chunk in chunks])) <= window
    assert len(chunks) < len(texts) / 5, "packed, not one element a chunk"
    for text in texts:
        assert sum(text in chunk.text for chunk in chunks) == 1


def test_long_table_is_split_at_rows_within_the_token_budget(
    minilm: tuple[TokenCounter, int],
) -> None:
    count, window = minilm
    rows = [
        f"{index} | {index * 31337 % 99991} | 0.{index * 7:05d} | Q{index % 4 + 1}"
        for index in range(200)
    ]
    chunker = Chunker(chunk_size=4000, chunk_overlap=0, count_tokens=count, max_tokens=window)
    chunks = list(chunker.chunk([table("\n".join(rows))]))
    assert len(chunks) > 1
    assert max(count([chunk.text for chunk in chunks])) <= window
    for chunk in chunks:
        assert chunk.kind is ElementKind.TABLE
        assert all(line in rows for line in chunk.text.splitlines()), chunk.text
    assert {line for chunk in chunks for line in chunk.text.splitlines()} == set(rows)


class _WindowedEmbedder:
    """The two attributes the chunker reads from a text embedder."""

    def __init__(self, count: TokenCounter, window: int) -> None:
        self.count_tokens = count
        self.max_tokens = window


@pytest.mark.parametrize("context", [True, False])
def test_chunker_for_an_embedder_with_a_tokenizer_counts_its_tokens(
    minilm: tuple[TokenCounter, int], context: bool
) -> None:
    count, window = minilm
    settings = ParsingSettings(chunk_context=context)
    chunker = Chunker.for_embedder(settings, _WindowedEmbedder(count, window))
    assert (chunker.max_tokens, chunker.count_tokens) == (window, count)
    assert chunker.reserve_tokens == (CONTEXT_RESERVE_TOKENS if context else 0)
    assert chunker.chunk_size == settings.chunk_size
    text = long_texts()["numbers"][0]
    chunks = list(chunker.chunk([element(text)]))
    assert max(count([chunk.text for chunk in chunks])) <= window - chunker.reserve_tokens


@pytest.mark.parametrize("embedder", [FakeTextEmbedder(), None, object()], ids=str)
def test_chunker_for_an_embedder_without_tokenizer_counts_characters(embedder: object) -> None:
    chunker = Chunker.for_embedder(ParsingSettings(chunk_size=300), embedder)
    assert chunker.max_tokens is None and chunker.count_tokens is None
    chunks = list(chunker.chunk([element(random_words(500))]))
    assert len(chunks) > 1 and all(len(chunk.text) <= 300 for chunk in chunks)


def test_token_budget_arguments_are_checked(minilm: tuple[TokenCounter, int]) -> None:
    count, window = minilm
    with pytest.raises(ValueError, match="together"):
        Chunker(chunk_size=1000, chunk_overlap=0, count_tokens=count)
    with pytest.raises(ValueError, match="together"):
        Chunker(chunk_size=1000, chunk_overlap=0, max_tokens=window)
    with pytest.raises(ValueError, match="reserve_tokens"):
        Chunker(
            chunk_size=1000,
            chunk_overlap=0,
            count_tokens=count,
            max_tokens=window,
            reserve_tokens=window - 2,
        )
