"""One small base class per model role; the batching is written once, here.

Backends implement one abstract batch method; callers use the public methods,
which split any input into batches of ``batch_size``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np
from PIL import Image

from mmrag.citations import neutralise
from mmrag.types import Hit

T = TypeVar("T")
R = TypeVar("R")


def _in_batches(items: Sequence[T], batch_size: int, run: Callable[[list[T]], R]) -> list[R]:
    return [run(list(items[i : i + batch_size])) for i in range(0, len(items), batch_size)]


def _stack(parts: list[np.ndarray], dimension: int) -> np.ndarray:
    if not parts:
        return np.zeros((0, dimension), dtype=np.float32)
    return np.concatenate(parts).astype(np.float32, copy=False)


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (rows of zeros stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)  # [n, 1]
    return vectors / np.maximum(norms, 1e-12)


class ModelRole(ABC):  # noqa: B024 - roles below declare the abstract methods
    """What every role has: a model id for logs, caches and reports, and a batch size."""

    role: str = "model"

    def __init__(self, *, model_id: str, batch_size: int) -> None:
        self.model_id = model_id
        self.batch_size = batch_size
        self.items_processed = 0  # inputs run through the model, for metrics and tests

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model_id={self.model_id!r})"


class TextEmbedder(ModelRole):
    """Texts to L2-normalised float32 vectors ``[n, dimension]``.

    ``max_tokens`` is the model's window (longer inputs are truncated), None where the
    backend has no tokenizer to count with; chunkers size chunks with `count_tokens`.
    """

    role = "text embedder"
    dimension: int
    max_tokens: int | None = None

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens the model would see for each text as a document, special tokens included,
        counted without truncation (so a count above ``max_tokens`` means truncated)."""
        raise NotImplementedError(f"{type(self).__name__} has no tokenizer (max_tokens is None)")

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Embed passages to index. Returns ``[len(texts), dimension]``."""
        return self._embed(texts, query=False)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed search queries (some models prefix queries differently)."""
        return self._embed(texts, query=True)

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one query. Returns ``[dimension]``."""
        return self.embed_queries([text])[0]

    def _embed(self, texts: Sequence[str], *, query: bool) -> np.ndarray:
        def run(batch: list[str]) -> np.ndarray:
            self.items_processed += len(batch)
            return self._embed_batch(batch, query=query)

        # Longest first, so each batch holds texts of similar length: less padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        by_length = [texts[i] for i in order]
        vectors = _stack(_in_batches(by_length, self.batch_size, run), self.dimension)
        restored = np.empty_like(vectors)
        restored[order] = vectors
        return l2_normalize(restored)

    @abstractmethod
    def _embed_batch(self, texts: list[str], *, query: bool) -> np.ndarray:
        """Embed one batch; returns ``[len(texts), dimension]``."""


class ImageEmbedder(ModelRole):
    """Images and query texts to vectors ``[n, dimension]`` in one space (SigLIP)."""

    role = "image embedder"
    dimension: int

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Embed images. Returns ``[len(images), dimension]``."""

        def run(batch: list[Image.Image]) -> np.ndarray:
            self.items_processed += len(batch)
            return self._embed_image_batch([image.convert("RGB") for image in batch])

        return l2_normalize(_stack(_in_batches(images, self.batch_size, run), self.dimension))

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts (queries, captions) into the image space. ``[len(texts), dimension]``."""

        def run(batch: list[str]) -> np.ndarray:
            self.items_processed += len(batch)
            return self._embed_text_batch(batch)

        return l2_normalize(_stack(_in_batches(texts, self.batch_size, run), self.dimension))

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one query text. Returns ``[dimension]``."""
        return self.embed_texts([text])[0]

    @abstractmethod
    def _embed_image_batch(self, images: list[Image.Image]) -> np.ndarray: ...

    @abstractmethod
    def _embed_text_batch(self, texts: list[str]) -> np.ndarray: ...


@dataclass(frozen=True, eq=False)
class MultiVector:
    """A late-interaction embedding: one unit-length float32 row per token or image patch.

    ``vectors`` is ``[n, dimension]``, padding and masked tokens dropped. For a page,
    ``grid = (rows, cols)`` says that the rows listed in ``patch_rows`` are the image
    patches of a regular grid over the whole page, row-major: ``patch_rows[r * cols + c]``
    is the row of the patch in grid row ``r``, column ``c`` (`patch_box` turns a row into
    its page region). The other rows are prompt tokens and, for models that also look at
    the page at a coarser scale, its global view. Queries, and models whose patches do not
    tile the page, have ``grid`` and ``patch_rows`` None.
    """

    vectors: np.ndarray  # [n, dimension] float32
    grid: tuple[int, int] | None = None
    patch_rows: np.ndarray | None = None  # [rows * cols] int64, row-major

    def __post_init__(self) -> None:
        if self.vectors.ndim != 2:
            raise ValueError(f"vectors must be [n, dimension], got shape {self.vectors.shape}")
        if (self.grid is None) != (self.patch_rows is None):
            raise ValueError("grid and patch_rows go together: give both or neither")
        if self.grid is not None and self.patch_rows is not None:
            rows, cols = self.grid
            if self.patch_rows.shape != (rows * cols,):
                raise ValueError(f"patch_rows must list {rows}x{cols} rows for grid {self.grid}")
            outside = (self.patch_rows < 0) | (self.patch_rows >= len(self.vectors))
            if outside.any():
                raise ValueError("patch_rows points outside vectors")

    def patch_box(self, row: int) -> tuple[float, float, float, float] | None:
        """The page region of vector ``row`` as (left, top, right, bottom) fractions of the
        page's width and height; None when that row is not a grid patch."""
        if self.grid is None or self.patch_rows is None:
            return None
        found = np.flatnonzero(self.patch_rows == row)
        if not len(found):
            return None
        rows, cols = self.grid
        grid_row, grid_col = divmod(int(found[0]), cols)
        return (grid_col / cols, grid_row / rows, (grid_col + 1) / cols, (grid_row + 1) / rows)


def pooled(multivector: MultiVector) -> np.ndarray:
    """The L2-normalised mean of the rows, ``[dimension]``: one vector for a first-stage
    (single-vector) search before late-interaction scoring."""
    mean = multivector.vectors.mean(axis=0, keepdims=True)  # [1, dimension]
    return l2_normalize(mean)[0].astype(np.float32, copy=False)


def _normalised(multivector: MultiVector) -> MultiVector:
    vectors = l2_normalize(np.asarray(multivector.vectors, dtype=np.float32))
    return replace(multivector, vectors=vectors.astype(np.float32, copy=False))


class PageEmbedder(ModelRole):
    """Page images and query texts to multi-vectors (late interaction, ColPali family):
    a page scores against a query by MaxSim, the sum over query rows of the best page row."""

    role = "page embedder"
    dimension: int

    def embed_pages(self, images: Sequence[Image.Image]) -> list[MultiVector]:
        """One `MultiVector` per page image, in order, with its patch grid where known."""

        def run(batch: list[Image.Image]) -> list[MultiVector]:
            self.items_processed += len(batch)
            return self._embed_page_batch([image.convert("RGB") for image in batch])

        batches = _in_batches(images, self.batch_size, run)
        return [_normalised(page) for batch in batches for page in batch]

    def embed_queries(self, texts: Sequence[str]) -> list[MultiVector]:
        """One `MultiVector` per query text (no grid), in order."""

        def run(batch: list[str]) -> list[MultiVector]:
            self.items_processed += len(batch)
            return self._embed_query_batch(batch)

        batches = _in_batches(texts, self.batch_size, run)
        return [_normalised(query) for batch in batches for query in batch]

    def embed_query(self, text: str) -> MultiVector:
        """Embed one query."""
        return self.embed_queries([text])[0]

    @abstractmethod
    def _embed_page_batch(self, images: list[Image.Image]) -> list[MultiVector]: ...

    @abstractmethod
    def _embed_query_batch(self, texts: list[str]) -> list[MultiVector]: ...


@dataclass(frozen=True)
class RerankItem:
    """One candidate for a reranker: its text and, for rerankers that read pixels, its image."""

    text: str
    image: Image.Image | None = None


class Reranker(ModelRole):
    """Scores each (query, candidate) pair jointly; higher means more relevant.

    The cross-encoder backend reads `RerankItem.text`. A multimodal reranker (a VLM that
    scores page images against the query) is another backend of this same role that reads
    `RerankItem.image` too; ``reads_images`` tells the caller to fetch the pixels.
    """

    role = "reranker"
    reads_images = False

    def rerank(self, query: str, candidates: Sequence[RerankItem]) -> np.ndarray:
        """One float32 score per candidate, in the candidates' order: ``[len(candidates)]``."""

        def run(batch: list[RerankItem]) -> np.ndarray:
            self.items_processed += len(batch)
            return np.asarray(self._score_batch(query, batch), dtype=np.float32).reshape(-1)

        parts = _in_batches(candidates, self.batch_size, run)
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)

    @abstractmethod
    def _score_batch(self, query: str, candidates: list[RerankItem]) -> np.ndarray:
        """Score one batch; returns ``[len(candidates)]``."""


class Captioner(ModelRole):
    """Images to captions, in batches. ``cache_key`` tells cached captions apart."""

    role = "captioner"
    reads_text = False  # True for captioners that only transcribe text (OCR)

    def __init__(self, *, model_id: str, batch_size: int, prompt: str) -> None:
        super().__init__(model_id=model_id, batch_size=batch_size)
        self.prompt = prompt

    @property
    def cache_key(self) -> str:
        """Captions depend on the model and the prompt; both go into the cache key."""
        return f"{type(self).__name__}|{self.model_id}|{self.prompt}"

    def caption(self, images: Sequence[Image.Image]) -> list[str]:
        """One caption per image, in order."""

        def run(batch: list[Image.Image]) -> list[str]:
            self.items_processed += len(batch)
            captions = self._caption_batch([image.convert("RGB") for image in batch])
            return [caption.strip() for caption in captions]

        return [c for batch in _in_batches(images, self.batch_size, run) for c in batch]

    @abstractmethod
    def _caption_batch(self, images: list[Image.Image]) -> list[str]: ...


@dataclass(frozen=True)
class Source:
    """A hit shown to the answerer as [number]; ``image`` holds its pixels when given.

    Answerers read the document through `text` and `document`, never through ``hit``:
    those are neutralised (`mmrag.citations.neutralise`), so nothing a document says can
    pass for a citation marker, a prompt delimiter or a turn of the conversation.
    ``hit`` stays as retrieved, for the citations.
    """

    number: int
    hit: Hit
    image: Image.Image | None = None

    @property
    def text(self) -> str:
        """The passage (or the image's caption, alt text and OCR text), neutralised."""
        return neutralise(self.hit.text)

    @property
    def document(self) -> str:
        """The file name (without folders), neutralised: uploads name their own files."""
        return neutralise(self.hit.source.rsplit("/", 1)[-1])


class Answerer(ModelRole):
    """Question + numbered sources (text and image pixels) to an answer citing them as [n],
    streamed token by token.

    Backends show each source's `Source.text` and `Source.document` (never the raw hit)
    and cite with the source's number; the caller keeps only the markers the answer's
    claims are supported by (`mmrag.citations.CitationCheck`)."""

    role = "answerer"

    @abstractmethod
    def stream(self, question: str, sources: Sequence[Source]) -> Iterator[str]:
        """Yield the answer text in pieces as the model produces them."""

    def complete(self, system: str, text: str) -> str | None:
        """The model's reply to one text-only turn (a follow-up question rewritten, say),
        or None for a backend without a language model (extractive)."""
        return None
