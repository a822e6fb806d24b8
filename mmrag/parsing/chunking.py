"""Text elements to chunks: packed up to a size, split where too long, never across pages."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from mmrag.types import BBox, Chunk, ElementKind, TextElement


def _union(boxes: list[BBox]) -> BBox | None:
    if not boxes:
        return None
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def split_long_text(text: str, chunk_size: int, chunk_overlap: int) -> list[str]:
    """Split text longer than ``chunk_size`` at paragraph, line, sentence, then word breaks."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        separators=["\n\n", "\n", ". ", "; ", ", ", " ", ""],
        keep_separator="end",
    )
    return [part.strip() for part in splitter.split_text(text) if part.strip()]


class Chunker:
    """Packs consecutive text elements of one page into chunks of about ``chunk_size`` chars.

    Tables stay chunks of their own (split by rows when long), so a table hit cites the
    table; running text is packed so each chunk carries enough context to embed well.
    """

    def __init__(self, *, chunk_size: int, chunk_overlap: int) -> None:
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap

    def chunk(self, elements: Iterable[TextElement]) -> Iterator[Chunk]:
        pending: list[TextElement] = []
        for element in elements:
            starts_new = element.kind is ElementKind.TABLE or (
                pending
                and (pending[0].page != element.page or pending[0].kind is ElementKind.TABLE)
            )
            if pending and (
                starts_new or self._size(pending) + len(element.text) > self.chunk_size
            ):
                yield from self._emit(pending)
                pending = []
            pending.append(element)
        if pending:
            yield from self._emit(pending)

    @staticmethod
    def _size(elements: list[TextElement]) -> int:
        return sum(len(element.text) + 1 for element in elements)

    def _emit(self, elements: list[TextElement]) -> Iterator[Chunk]:
        first = elements[0]
        text = "\n".join(element.text for element in elements)
        boxes = [element.bbox for element in elements if element.bbox is not None]
        categories = tuple(dict.fromkeys(element.category for element in elements))
        parts = (
            [text]
            if len(text) <= self.chunk_size
            else split_long_text(text, self.chunk_size, self.chunk_overlap)
        )
        for part in parts:
            yield Chunk(
                text=part,
                page=first.page,
                kind=first.kind,
                categories=categories,
                bbox=_union(boxes),
            )
