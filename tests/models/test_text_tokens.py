"""Token counts for chunking: the text embedder's window and its own tokenizer."""

from __future__ import annotations

import pytest

from mmrag.models.base import TextEmbedder
from mmrag.models.text import SentenceTransformerEmbedder
from mmrag.profiles import shipped_minilm_path
from mmrag.settings import TextEmbedderSettings
from mmrag.testing import FakeTextEmbedder

TEXTS = ["", "The turbine produces 42 megawatts.", "Wind turbines generate power. " * 80]


@pytest.fixture(scope="module")
def minilm() -> SentenceTransformerEmbedder:
    path = shipped_minilm_path()
    assert path is not None
    return SentenceTransformerEmbedder.load(TextEmbedderSettings(model=path))


def test_shipped_minilm_window_is_256_tokens(minilm: SentenceTransformerEmbedder) -> None:
    assert minilm.max_tokens == 256


def test_counts_match_the_tokenizer_with_special_tokens(
    minilm: SentenceTransformerEmbedder,
) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(shipped_minilm_path())

    counts = minilm.count_tokens(TEXTS)

    assert counts == [len(tokenizer(text)["input_ids"]) for text in TEXTS]
    assert counts[0] == 2  # [CLS] [SEP]
    assert counts[2] > 256  # counted past the window, not truncated


def test_a_backend_without_tokenizer_has_no_window() -> None:
    embedder: TextEmbedder = FakeTextEmbedder()

    assert embedder.max_tokens is None
    with pytest.raises(NotImplementedError):
        embedder.count_tokens(["text"])
