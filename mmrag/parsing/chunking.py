"""Text elements to chunks: packed up to a size, split where too long, never across pages.

A chunk holds at most ``chunk_size`` characters and, when the text embedder has a
tokenizer, fits its window in the embedder's own tokens, together with the context prefix
the point builder puts before the embedded text: no chunk is cut short unseen. (Counted in
characters alone, 9% of chunks passed all-MiniLM-L6-v2's 256 tokens and lost a median 150
of them.) Characters keep chunks at the size that measured well whatever the window;
tokens make sure the model reads all of each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import lru_cache
from typing import Any

from mmrag.settings import ParsingSettings
from mmrag.types import BBox, Chunk, ElementKind, TextElement

TokenCounter = Callable[[Sequence[str]], list[int]]
"""Tokens each text takes in the embedder, special tokens (and any prompt) included."""

# Room kept in the window for the chunk context prefix ("<file name>: <first line>\n",
# up to 120 characters of line) when the prefix is not known yet: on the project's test
# documents it took 4 to 62 MiniLM tokens, 21 typically.
CONTEXT_RESERVE_TOKENS = 64
SEPARATORS = ["\n\n", "\n", ". ", "。", "; ", ", ", " ", ""]
# Splitting a long run without breaks measures it character by character: short pieces
# repeat, so their counts are kept (long ones rarely repeat and would hold memory).
PIECE_CACHE_SIZE = 65_536
PIECE_CACHE_CHARS = 32


def _searchable(text: str) -> bool:
    """Whether ``text`` has a letter or a digit (in any script)."""
    return any(character.isalnum() for character in text)


def _union(boxes: list[BBox]) -> BBox | None:
    if not boxes:
        return None
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def split_long_text(
    text: str, chunk_size: int, chunk_overlap: int, length: Callable[[str], int] = len
) -> list[str]:
    """Split text longer than ``chunk_size`` at paragraph, line, sentence, then word breaks,
    then anywhere; ``length`` measures a piece (characters by default)."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        separators=SEPARATORS,
        keep_separator="end",
        length_function=length,
    )
    return [part.strip() for part in splitter.split_text(text) if part.strip()]


class _Budget:
    """How much text a chunk may hold: ``chars`` characters and, counting the embedder's
    tokens, ``tokens`` of them (special tokens and any prompt included, as `sizes` counts).

    Inside a chunk, ``piece`` counts a part's tokens without those (``fixed`` per text).
    The splitter adds up one measure, `length`: the larger of a part's share of the
    characters and of the tokens, in integers. Parts within it are within both (for a
    tokenizer that counts joined text as its parts' sum); `split` counts every part again
    all the same and splits any still over the limit.
    """

    def __init__(
        self,
        *,
        chars: int,
        overlap: int,
        tokens: int | None = None,
        fixed: int = 0,
        count: TokenCounter | None = None,
        piece: Callable[[str], int] = len,
    ) -> None:
        self.chars, self.tokens, self.fixed = chars, tokens, fixed
        self._count, self.piece = count, piece
        self._room = tokens - fixed if tokens is not None else 1  # tokens left for text
        self.limit = chars * self._room  # in `length`'s unit
        self.overlap = overlap * self._room
        self.separator = piece("\n") if tokens is not None else 1  # joins elements

    def length(self, text: str) -> int:
        if self.tokens is None:
            return len(text)
        return max(len(text) * self._room, self.piece(text) * self.chars)

    def sizes(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text (0 when tokens are not counted)."""
        if self._count is None or not texts:
            return [0] * len(texts)
        return self._count(texts)

    def over(self, characters: int, tokens: int) -> bool:
        return characters > self.chars or (self.tokens is not None and tokens > self.tokens)

    def grow(self, tokens: int, size: int) -> int:
        """The tokens of a chunk of ``tokens`` with an element of ``size`` joined on (an
        estimate: `split` counts the joined text)."""
        return tokens + size - self.fixed + self.separator

    def split(self, text: str, limit: int | None = None) -> list[str]:
        """Parts of ``text`` within the budget, as counted."""
        limit = self.limit if limit is None else limit
        parts = split_long_text(text, limit, self.overlap * limit // self.limit, self.length)
        result = []
        for part, size in zip(parts, self.sizes(parts), strict=True):
            if not self.over(len(part), size) or limit <= 1:
                result.append(part)
            else:  # the tokenizer counts the part above its pieces' sum: split tighter
                tighter = limit * self._room // max(size - self.fixed, 1)
                result.extend(self.split(part, max(1, min(tighter, limit - 1))))
        return result


class Chunker:
    """Packs consecutive text elements of one page into chunks of up to ``chunk_size``
    characters and, given ``count_tokens`` and ``max_tokens`` (the embedder's), up to
    ``max_tokens`` less ``reserve_tokens`` tokens.

    ``reserve_tokens`` keeps room for a prefix the embedded text gets before each chunk
    (the chunk context); `chunk` takes the actual prefix instead when it is known. Long
    text is split with overlaps the share ``chunk_overlap`` is of ``chunk_size``.

    Tables stay chunks of their own (split by rows when long), so a table hit cites the
    table; running text is packed so each chunk carries enough context to embed well.
    """

    def __init__(
        self,
        *,
        chunk_size: int,
        chunk_overlap: int,
        count_tokens: TokenCounter | None = None,
        max_tokens: int | None = None,
        reserve_tokens: int = 0,
    ) -> None:
        if (count_tokens is None) != (max_tokens is None):
            raise ValueError("count_tokens and max_tokens go together: give both or neither")
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self.count_tokens = count_tokens
        self.max_tokens = max_tokens
        self.reserve_tokens = reserve_tokens
        self._fixed = count_tokens([""])[0] if count_tokens is not None else 0
        self._cached_piece = lru_cache(maxsize=PIECE_CACHE_SIZE)(self._piece_tokens)
        if max_tokens is not None and not 0 <= reserve_tokens < max_tokens - self._fixed:
            raise ValueError(
                f"reserve_tokens ({reserve_tokens}) must leave room for text in max_tokens "
                f"({max_tokens}, {self._fixed} of them taken by special tokens)"
            )
        self._default = self._budget(reserve_tokens)

    @classmethod
    def for_embedder(cls, settings: ParsingSettings, embedder: Any) -> Chunker:
        """The chunker for ``embedder``'s window and tokenizer (characters alone when it
        has none: ``max_tokens`` None or absent), with room for the chunk context."""
        max_tokens = getattr(embedder, "max_tokens", None)
        return cls(
            chunk_size=settings.chunk_size,
            chunk_overlap=settings.chunk_overlap,
            count_tokens=embedder.count_tokens if max_tokens is not None else None,
            max_tokens=max_tokens,
            reserve_tokens=CONTEXT_RESERVE_TOKENS if settings.chunk_context else 0,
        )

    def chunk(
        self, elements: Iterable[TextElement], *, prefix: str | None = None
    ) -> Iterator[Chunk]:
        """Chunks of ``elements``, in order. Counting tokens, with ``prefix`` (the text the
        embedder gets before each chunk) room is kept for exactly it rather than
        ``reserve_tokens``, up to half the window (a longer prefix would leave no room)."""
        elements = list(elements)  # one page: its token counts are taken in one batch
        budget = self._default
        if prefix is not None and self.max_tokens is not None:
            budget = self._budget(min(self._piece(prefix), (self.max_tokens - self._fixed) // 2))
        sizes = budget.sizes([element.text for element in elements])
        pending: list[TextElement] = []
        length = count = 0  # the pending chunk's characters and (added up) tokens
        for element, size in zip(elements, sizes, strict=True):
            starts_new = element.kind is ElementKind.TABLE or (
                pending
                and (pending[0].page != element.page or pending[0].kind is ElementKind.TABLE)
            )
            longer, more = length + 1 + len(element.text), budget.grow(count, size)
            if pending and (starts_new or budget.over(longer, more)):
                yield from self._emit(pending, budget)
                pending = []
            length, count = (longer, more) if pending else (len(element.text), size)
            pending.append(element)
        if pending:
            yield from self._emit(pending, budget)

    def _budget(self, reserve: int) -> _Budget:
        if self.count_tokens is None or self.max_tokens is None:
            return _Budget(chars=self.chunk_size, overlap=self.chunk_overlap)
        return _Budget(
            chars=self.chunk_size,
            overlap=self.chunk_overlap,
            tokens=self.max_tokens - reserve,
            fixed=self._fixed,
            count=self.count_tokens,
            piece=self._piece,
        )

    def _piece(self, text: str) -> int:
        """Tokens ``text`` adds inside a chunk (special tokens not counted)."""
        if len(text) <= PIECE_CACHE_CHARS:
            return self._cached_piece(text)
        return self._piece_tokens(text)

    def _piece_tokens(self, text: str) -> int:
        if self.count_tokens is None:
            return len(text)
        return max(self.count_tokens([text])[0] - self._fixed, 0)

    def _emit(self, elements: list[TextElement], budget: _Budget) -> Iterator[Chunk]:
        """The elements as one chunk, or split where they overflow the budget. A part with
        no letter or digit (a run of brackets, a rule of dashes) is dropped: nothing in it
        can be searched for, and embedding it costs as much as a paragraph."""
        first = elements[0]
        text = "\n".join(element.text for element in elements)
        boxes = [element.bbox for element in elements if element.bbox is not None]
        categories = tuple(dict.fromkeys(element.category for element in elements))
        fits = not budget.over(len(text), budget.sizes([text])[0])
        for part in [text] if fits else budget.split(text):
            if not _searchable(part):
                continue
            yield Chunk(
                text=part,
                page=first.page,
                kind=first.kind,
                categories=categories,
                bbox=_union(boxes),
            )
