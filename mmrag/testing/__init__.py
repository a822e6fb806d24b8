"""Test support shipped with the library: fakes for the text, image, caption and answer
roles, tiny random models built from real configs (`tiny_models`: also the page
embedder and the reranker), and generated documents (`documents`).

``python -m mmrag.testing make-offline-models DIR`` writes tiny SigLIP, open_clip,
SmolVLM, Qwen2-VL, ColModernVBERT and cross-encoder models plus a config file that uses
them, to exercise every code path offline.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence

import numpy as np
from PIL import Image, ImageStat

from mmrag.models.base import Answerer, Captioner, ImageEmbedder, Source, TextEmbedder

_WORD = re.compile(r"\w+")


def _hashed_bag_of_words(text: str, dimension: int) -> np.ndarray:
    vector = np.zeros(dimension, dtype=np.float32)
    for word in _WORD.findall(text.lower()):
        bucket = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little")
        vector[bucket % dimension] += 1.0
    return vector


class FakeTextEmbedder(TextEmbedder):
    """Hashed bag of words: texts sharing words are close; deterministic; instant."""

    def __init__(self, *, dimension: int = 64, batch_size: int = 8) -> None:
        super().__init__(model_id="fake-text", batch_size=batch_size)
        self.dimension = dimension
        self.batches: list[int] = []  # sizes of the batches the model saw

    def _embed_batch(self, texts: list[str], *, query: bool) -> np.ndarray:
        self.batches.append(len(texts))
        return np.stack([_hashed_bag_of_words(text, self.dimension) for text in texts])


class FakeImageEmbedder(ImageEmbedder):
    """Images by a centred 4x4 colour thumbnail (the same picture scores 1.0, different
    pictures less); texts by hashed words. One space, no cross-modal meaning."""

    dimension = 48

    def __init__(self, *, batch_size: int = 8) -> None:
        super().__init__(model_id="fake-image", batch_size=batch_size)

    def _embed_image_batch(self, images: list[Image.Image]) -> np.ndarray:
        rows = []
        for image in images:
            thumbnail = np.asarray(image.convert("RGB").resize((4, 4)), dtype=np.float32)
            vector = thumbnail.reshape(-1)  # [48]
            rows.append(vector - vector.mean() + 1e-3)
        return np.stack(rows)

    def _embed_text_batch(self, texts: list[str]) -> np.ndarray:
        return np.stack([_hashed_bag_of_words(text, self.dimension) + 1e-3 for text in texts])


class FakeCaptioner(Captioner):
    """Describes size and dominant colour; records every batch it is given."""

    def __init__(self, *, batch_size: int = 4, prompt: str = "describe") -> None:
        super().__init__(model_id="fake-captioner", batch_size=batch_size, prompt=prompt)
        self.batches: list[int] = []

    def _caption_batch(self, images: list[Image.Image]) -> list[str]:
        self.batches.append(len(images))
        captions = []
        for image in images:
            red, green, blue = (int(c) for c in ImageStat.Stat(image).mean[:3])
            captions.append(
                f"an image of {image.width}x{image.height} pixels, "
                f"mean colour rgb({red}, {green}, {blue})"
            )
        return captions


class FakeAnswerer(Answerer):
    """Cites the first two sources in three pieces; records what it was shown."""

    def __init__(self) -> None:
        super().__init__(model_id="fake-answerer", batch_size=1)
        self.calls: list[tuple[str, list[Source]]] = []

    def stream(self, question: str, sources: Sequence[Source]) -> Iterator[str]:
        self.calls.append((question, list(sources)))
        numbers = [source.number for source in sources[:2]]
        yield "According to the sources"
        yield "".join(f" [{number}]" for number in numbers)
        yield ", that is the answer."


__all__ = ["FakeAnswerer", "FakeCaptioner", "FakeImageEmbedder", "FakeTextEmbedder"]
