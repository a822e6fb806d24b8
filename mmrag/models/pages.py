"""Page embedder backends: late-interaction retrievers (ColPali family) through transformers.

The checkpoint's ``model_type`` picks transformers' own classes, and with them the way
the image-patch rows of a page's multi-vector map to a grid over the page:

- ``colmodernvbert`` (ColModernVBertForRetrieval, ColModernVBertProcessor): the page cut
  into R x C tiles of k x k tokens each (k² = ``image_seq_len``), row-major inside each
  tile, tiles row-major; the coarse global view that follows is left out of the grid.
- ``colqwen2`` (ColQwen2ForRetrieval, ColQwen2Processor): the ``image_grid_thw`` patches
  merged ``merge_size`` x ``merge_size`` into one token each, row-major.
- ``colpali`` (ColPaliForRetrieval, ColPaliProcessor): a square, row-major (PaliGemma
  squashes the page to a square).

Only checkpoints in transformers' format load (``model_type`` above, e.g.
``vidore/colqwen2-v1.0-hf``); colpali-engine adapters need converting first.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from mmrag.models.base import MultiVector, PageEmbedder
from mmrag.models.device import inference, resolve_device, weights_dtype
from mmrag.models.loading import loading
from mmrag.models.registry import page_embedders
from mmrag.settings import PageEmbedderSettings, Settings

ROLE = "page embedder"
SETTING = "page_embedder.model"

# (grid, sequence positions of the grid's patches, row-major), or None: no regular grid.
Layout = tuple[tuple[int, int], np.ndarray] | None
# (processor, processor outputs, index in the batch, that row's input ids) -> Layout
LayoutFunction = Callable[[Any, Any, int, np.ndarray], Layout]


def _checked(grid: tuple[int, int], positions: np.ndarray) -> Layout:
    """The layout, if the image tokens found fill the grid exactly."""
    rows, cols = grid
    if rows < 1 or cols < 1 or len(positions) != rows * cols:
        return None
    return grid, positions


def _image_positions(processor: Any, ids: np.ndarray) -> np.ndarray:
    token_id = getattr(processor, "image_token_id", None)
    if token_id is None:  # ColQwen2Processor of transformers 5.3 keeps only the token
        token_id = processor.tokenizer.convert_tokens_to_ids(processor.image_token)
    return np.flatnonzero(ids == token_id)


def merged_patch_layout(processor: Any, inputs: Any, index: int, ids: np.ndarray) -> Layout:
    """Qwen2-VL: ``image_grid_thw`` (1, h, w) patches, merged ``m x m`` into one token each,
    in row-major order over the resized page (which keeps the page's aspect ratio)."""
    _, height, width = (int(value) for value in inputs["image_grid_thw"][index])
    merge = int(processor.image_processor.merge_size)
    return _checked((height // merge, width // merge), _image_positions(processor, ids))


def square_layout(processor: Any, inputs: Any, index: int, ids: np.ndarray) -> Layout:
    """PaliGemma: the page squashed to a square, one token per patch, row-major."""
    positions = _image_positions(processor, ids)
    side = math.isqrt(len(positions))
    return _checked((side, side), positions)


def tiled_layout(processor: Any, inputs: Any, index: int, ids: np.ndarray) -> Layout:
    """Idefics3-style splitting: the resized page cut into R x C tiles, each k x k tokens
    (row-major inside the tile), tiles in row-major order, then a k x k global view."""
    positions = _image_positions(processor, ids)
    side = math.isqrt(int(processor.image_seq_len))
    tile_ids: dict[int, tuple[int, int]] = {
        int(token): divmod(number, 6) for number, token in enumerate(processor.row_col_ids)
    }
    if len(tile_ids) != len(processor.row_col_ids):
        return None  # the tokenizer lacks the <row_i_col_j> tokens: tiles cannot be told apart
    tiles = [tile_ids[token] for token in ids.tolist() if token in tile_ids]
    if not tiles:  # a small page: only the global view, squashed to a square
        return _checked((side, side), positions)
    tile_rows = 1 + max(row for row, _ in tiles)
    tile_cols = 1 + max(col for _, col in tiles)
    if len(tiles) != tile_rows * tile_cols or len(positions) != (len(tiles) + 1) * side * side:
        return None
    grid = (tile_rows * side, tile_cols * side)
    row, col = np.divmod(np.arange(grid[0] * grid[1]), grid[1])  # page grid, row-major
    tile = (row // side) * tile_cols + col // side
    sequence = tile * side * side + (row % side) * side + col % side
    return grid, positions[sequence]


@dataclass(frozen=True)
class Family:
    """The transformers classes for one ``model_type`` and how its patches tile a page."""

    model_class: str
    processor_class: str
    layout: LayoutFunction


FAMILIES: dict[str, Family] = {
    "colmodernvbert": Family("ColModernVBertForRetrieval", "ColModernVBertProcessor", tiled_layout),
    "colqwen2": Family("ColQwen2ForRetrieval", "ColQwen2Processor", merged_patch_layout),
    "colpali": Family("ColPaliForRetrieval", "ColPaliProcessor", square_layout),
}


def family_of(model_type: str) -> Family:
    """The family for a checkpoint's ``model_type``; ValueError names the supported ones."""
    try:
        return FAMILIES[model_type]
    except KeyError:
        supported = ", ".join(sorted(FAMILIES))
        raise ValueError(
            f"model_type {model_type!r} is not a late-interaction retriever in transformers' "
            f"format (supported: {supported}; e.g. vidore/colqwen2-v1.0-hf)"
        ) from None


class TransformersPageEmbedder(PageEmbedder):
    """ColModernVBERT, ColQwen2 or ColPali through transformers' retrieval classes."""

    def __init__(
        self,
        *,
        model: Any,
        processor: Any,
        layout: LayoutFunction,
        device: str,
        settings: PageEmbedderSettings,
    ) -> None:
        super().__init__(model_id=settings.model, batch_size=settings.batch_size)
        self._model = model
        self._processor = processor
        self._layout = layout
        self._device = device
        self._precision = settings.precision
        self.dimension = int(model.config.embedding_dim)

    @classmethod
    def load(cls, settings: PageEmbedderSettings) -> TransformersPageEmbedder:
        with loading(ROLE, settings.model, SETTING):
            import transformers

            config = transformers.AutoConfig.from_pretrained(settings.model)
            family = family_of(config.model_type)
            device = resolve_device(settings.device)
            model_class = getattr(transformers, family.model_class)
            model = model_class.from_pretrained(
                settings.model, dtype=weights_dtype(device, settings.precision)
            )
            processor_class = getattr(transformers, family.processor_class)
            processor = processor_class.from_pretrained(settings.model)
        return cls(
            model=model.to(device).eval(),
            processor=processor,
            layout=family.layout,
            device=device,
            settings=settings,
        )

    def _embed_page_batch(self, images: list[Image.Image]) -> list[MultiVector]:
        inputs = self._processor.process_images(images=images)
        embeddings, mask = self._run(inputs)
        ids = inputs["input_ids"].cpu().numpy()  # [batch, sequence]
        pages = []
        for index in range(len(images)):
            kept = np.flatnonzero(mask[index])  # sequence positions of real tokens
            layout = self._layout(self._processor, inputs, index, ids[index])
            if layout is None:
                pages.append(MultiVector(embeddings[index, kept]))
                continue
            grid, positions = layout
            # Image tokens are never padding: each one is found among the kept rows.
            patch_rows = np.searchsorted(kept, positions).astype(np.int64)
            pages.append(MultiVector(embeddings[index, kept], grid, patch_rows))
        return pages

    def _embed_query_batch(self, texts: list[str]) -> list[MultiVector]:
        embeddings, mask = self._run(self._processor.process_queries(text=texts))
        return [MultiVector(embeddings[index, mask[index]]) for index in range(len(texts))]

    def _run(self, inputs: Any) -> tuple[np.ndarray, np.ndarray]:
        """The model's token vectors ``[batch, sequence, dimension]`` and the mask of real
        (non-padding) tokens ``[batch, sequence]``."""
        inputs = inputs.to(self._device)
        inputs.pop("labels", None)  # ColPali's processor adds training labels
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self._model.dtype)
        with inference(self._device, self._precision):
            embeddings = self._model(**inputs).embeddings  # [batch, sequence, dimension]
        mask = inputs["attention_mask"].bool().cpu().numpy()  # [batch, sequence]
        return embeddings.float().cpu().numpy(), mask


@page_embedders.register("transformers")
def _build_transformers(settings: Settings) -> PageEmbedder:
    return TransformersPageEmbedder.load(settings.page_embedder)


@page_embedders.register("none")
def _build_none(settings: Settings) -> None:
    return None
