"""The cross-encoder reranker, loaded through the registry as users configure it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmrag.errors import ModelLoadError
from mmrag.models.base import Reranker, RerankItem
from mmrag.models.registry import rerankers
from mmrag.settings import Settings

QUERY = "How much power does the turbine produce?"
PASSAGES = [
    "The turbine produces 42 megawatts.",
    "A recipe for lemon cake.",
    "Wind turbines generate electric power. " * 40,  # longer than the model's window
]


def load(model: Path | str, batch_size: int = 2) -> Reranker:
    settings = Settings(
        reranker={"backend": "cross-encoder", "model": str(model), "batch_size": batch_size}
    )
    reranker = rerankers.create(settings.reranker.backend, settings)
    assert isinstance(reranker, Reranker)
    return reranker


@pytest.fixture(scope="module")
def reranker(tiny_models: Path) -> Reranker:
    return load(tiny_models / "cross-encoder")


def test_cross_encoder_scores_each_candidate_in_order(reranker: Reranker) -> None:
    scores = reranker.rerank(QUERY, [RerankItem(text) for text in PASSAGES])

    assert scores.shape == (3,) and scores.dtype == np.float32
    assert np.isfinite(scores).all()
    assert reranker.items_processed == 3


def test_cross_encoder_is_deterministic_and_batch_independent(
    reranker: Reranker, tiny_models: Path
) -> None:
    items = [RerankItem(text) for text in PASSAGES]
    one_batch = load(tiny_models / "cross-encoder", batch_size=8)

    first = reranker.rerank(QUERY, items)
    again = reranker.rerank(QUERY, items)
    together = one_batch.rerank(QUERY, items)
    reversed_order = reranker.rerank(QUERY, items[::-1])[::-1]

    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(first, together, rtol=5e-3)
    np.testing.assert_allclose(first, reversed_order, rtol=5e-3)
    assert len(set(first.tolist())) == 3  # each pair scored on its own text


def test_cross_encoder_reads_text_and_ignores_images(reranker: Reranker) -> None:
    picture = Image.new("RGB", (32, 32), (200, 30, 30))

    with_image = reranker.rerank(QUERY, [RerankItem(PASSAGES[0], image=picture)])
    without = reranker.rerank(QUERY, [RerankItem(PASSAGES[0])])

    assert not reranker.reads_images
    np.testing.assert_array_equal(with_image, without)
    assert reranker.rerank(QUERY, []).shape == (0,)


def test_missing_reranker_names_model_and_setting(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="reranker.model"):
        load(tmp_path / "no-such-model")


def test_reranker_is_off_by_default() -> None:
    settings = Settings()
    assert settings.reranker.backend == "none"
    assert rerankers.create(settings.reranker.backend, settings) is None
    assert {"cross-encoder", "none"} <= set(rerankers.names())
