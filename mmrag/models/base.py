"""One small base class per model role; the batching is written once, here.

Backends implement one abstract batch method; callers use the public methods,
which split any input into batches of ``batch_size``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
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
    """Texts to L2-normalised float32 vectors ``[n, dimension]``."""

    role = "text embedder"
    dimension: int

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

        return l2_normalize(_stack(_in_batches(texts, self.batch_size, run), self.dimension))

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
