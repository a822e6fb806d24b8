"""Image embedder backends: SigLIP through transformers or open_clip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mmrag.models.base import ImageEmbedder
from mmrag.models.device import inference, resolve_device, weights_dtype
from mmrag.models.loading import loading
from mmrag.models.registry import image_embedders
from mmrag.settings import ImageEmbedderSettings, Settings

ROLE = "image embedder"
SETTING = "image_embedder.model"


def _features(output: Any) -> Any:
    """transformers 5 may wrap projected features in a ModelOutput."""
    return getattr(output, "pooler_output", output)


class SiglipEmbedder(ImageEmbedder):
    """A SigLIP / SigLIP 2 model loaded with transformers' Auto classes."""

    def __init__(
        self,
        *,
        model: Any,
        processor: Any,
        device: str,
        model_id: str,
        batch_size: int,
        precision: str = "auto",
    ):
        super().__init__(model_id=model_id, batch_size=batch_size)
        self._model = model
        self._processor = processor
        self._device = device
        self._precision = precision
        config = model.config
        self.dimension = int(
            getattr(config, "projection_dim", None) or config.text_config.hidden_size
        )
        # SigLIP was trained on text padded to a fixed length; pad the same way.
        self._text_length = int(config.text_config.max_position_embeddings)

    @classmethod
    def load(cls, settings: ImageEmbedderSettings) -> SiglipEmbedder:
        with loading(ROLE, settings.model, SETTING):
            from transformers import AutoModel, AutoProcessor

            device = resolve_device(settings.device)
            dtype = weights_dtype(device, settings.precision)
            model = AutoModel.from_pretrained(settings.model, dtype=dtype)
            processor = AutoProcessor.from_pretrained(settings.model)
        return cls(
            model=model.to(device).eval(),
            processor=processor,
            device=device,
            model_id=settings.model,
            batch_size=settings.batch_size,
            precision=settings.precision,
        )

    def _embed_image_batch(self, images: list[Image.Image]) -> np.ndarray:

        inputs = self._processor(images=images, return_tensors="pt").to(self._device)
        inputs["pixel_values"] = inputs["pixel_values"].to(self._model.dtype)
        with inference(self._device, self._precision):
            features = _features(self._model.get_image_features(**inputs))  # [batch, dim]
        return features.float().cpu().numpy()

    def _embed_text_batch(self, texts: list[str]) -> np.ndarray:

        inputs = self._processor(
            text=texts,
            padding="max_length",
            truncation=True,
            max_length=self._text_length,
            return_tensors="pt",
        ).to(self._device)
        with inference(self._device, self._precision):
            features = _features(self._model.get_text_features(**inputs))  # [batch, dim]
        return features.float().cpu().numpy()


def open_clip_name(model: str) -> str:
    """A plain directory becomes open_clip's ``local-dir:`` form; names pass through."""
    if not model.startswith(("local-dir:", "hf-hub:")) and Path(model).expanduser().is_dir():
        return f"local-dir:{Path(model).expanduser()}"
    return model


class OpenClipEmbedder(ImageEmbedder):
    """A SigLIP model through open_clip (``hf-hub:timm/ViT-B-16-SigLIP`` or ``local-dir:DIR``)."""

    def __init__(
        self,
        *,
        model: Any,
        preprocess: Any,
        tokenizer: Any,
        device: str,
        model_id: str,
        batch_size: int,
        precision: str = "auto",
    ):
        super().__init__(model_id=model_id, batch_size=batch_size)
        self._model = model
        self._preprocess = preprocess
        self._tokenizer = tokenizer
        self._device = device
        self._precision = precision
        # open_clip models keep the output width in different places per family; ask the model.
        self.dimension = int(self._embed_text_batch(["probe"]).shape[1])

    @classmethod
    def load(cls, settings: ImageEmbedderSettings) -> OpenClipEmbedder:
        name = open_clip_name(settings.model)
        with loading(ROLE, settings.model, SETTING):
            import open_clip

            device = resolve_device(settings.device)
            model, _, preprocess = open_clip.create_model_and_transforms(name, device=device)
            model.to(weights_dtype(device, settings.precision))
            tokenizer = open_clip.get_tokenizer(name)
        return cls(
            model=model.eval(),
            preprocess=preprocess,
            tokenizer=tokenizer,
            device=device,
            model_id=settings.model,
            batch_size=settings.batch_size,
            precision=settings.precision,
        )

    def _embed_image_batch(self, images: list[Image.Image]) -> np.ndarray:
        import torch

        dtype = next(self._model.parameters()).dtype
        pixels = torch.stack([self._preprocess(image) for image in images])  # [batch, 3, h, w]
        pixels = pixels.to(self._device, dtype=dtype)
        with inference(self._device, self._precision):
            features = self._model.encode_image(pixels)  # [batch, dim]
        return features.float().cpu().numpy()

    def _embed_text_batch(self, texts: list[str]) -> np.ndarray:

        tokens = self._tokenizer(texts).to(self._device)
        with inference(self._device, self._precision):
            features = self._model.encode_text(tokens)  # [batch, dim]
        return features.float().cpu().numpy()


@image_embedders.register("siglip")
def _build_siglip(settings: Settings) -> ImageEmbedder:
    return SiglipEmbedder.load(settings.image_embedder)


@image_embedders.register("open-clip")
def _build_open_clip(settings: Settings) -> ImageEmbedder:
    return OpenClipEmbedder.load(settings.image_embedder)


@image_embedders.register("none")
def _build_none(settings: Settings) -> None:
    return None
