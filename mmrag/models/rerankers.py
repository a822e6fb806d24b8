"""Reranker backends: a cross-encoder through sentence-transformers.

A multimodal reranker (a VLM scoring page images against the query) would be another
backend of the same `Reranker` role, reading `RerankItem.image` where this one reads
`RerankItem.text`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mmrag.models.base import Reranker, RerankItem
from mmrag.models.device import inference, resolve_device, weights_dtype
from mmrag.models.loading import loading
from mmrag.models.registry import rerankers
from mmrag.settings import RerankerSettings, Settings

ROLE = "reranker"
SETTING = "reranker.model"


class CrossEncoderReranker(Reranker):
    """Any sentence-transformers CrossEncoder with one output (hub id or local directory).

    Scores are the model's raw relevance logits: the same order as its sigmoid
    probabilities, without the ties a saturated sigmoid makes among strong matches.
    """

    def __init__(
        self, *, model: Any, model_id: str, batch_size: int, device: str, precision: str = "auto"
    ) -> None:
        super().__init__(model_id=model_id, batch_size=batch_size)
        self._model = model
        self._device = device
        self._precision = precision

    @classmethod
    def load(cls, settings: RerankerSettings) -> CrossEncoderReranker:
        with loading(ROLE, settings.model, SETTING):
            from sentence_transformers import CrossEncoder

            device = resolve_device(settings.device)
            dtype = weights_dtype(device, settings.precision)
            model = CrossEncoder(settings.model, device=device, model_kwargs={"dtype": dtype})
            if model.num_labels != 1:
                raise ValueError(
                    f"the model has {model.num_labels} outputs; a reranker needs one relevance "
                    "score per (query, passage) pair"
                )
        return cls(
            model=model,
            model_id=settings.model,
            batch_size=settings.batch_size,
            device=device,
            precision=settings.precision,
        )

    def _score_batch(self, query: str, candidates: list[RerankItem]) -> np.ndarray:
        import torch

        pairs = [(query, candidate.text) for candidate in candidates]
        with inference(self._device, self._precision):
            scores = self._model.predict(
                pairs,
                batch_size=len(pairs),
                activation_fn=torch.nn.Identity(),
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(scores, dtype=np.float32)  # [batch]


@rerankers.register("cross-encoder")
def _build_cross_encoder(settings: Settings) -> Reranker:
    return CrossEncoderReranker.load(settings.reranker)


@rerankers.register("none")
def _build_none(settings: Settings) -> None:
    return None
