"""Text embedder backends."""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmrag.errors import ConfigError, ModelLoadError
from mmrag.models.base import TextEmbedder
from mmrag.models.device import inference, resolve_device, surely_cpu, weights_dtype
from mmrag.models.loading import loading, local_model_dir
from mmrag.models.openvino import (
    OpenVinoTransformer,
    OpenVinoUnavailable,
    load_exported,
    openvino_installed,
)
from mmrag.models.registry import text_embedders
from mmrag.settings import Settings, TextEmbedderSettings

logger = logging.getLogger(__name__)

# The prompts `SentenceTransformer.encode_document` / `encode_query` look for, in order.
_DOCUMENT_PROMPTS = ("document", "passage", "corpus")
_QUERY_PROMPTS = ("query",)


class SentenceTransformerEmbedder(TextEmbedder):
    """Any sentence-transformers model, by hub id or local directory."""

    def __init__(
        self,
        *,
        model: Any,
        model_id: str,
        batch_size: int,
        device: str,
        precision: str = "auto",
        openvino: OpenVinoTransformer | None = None,
    ) -> None:
        super().__init__(model_id=model_id, batch_size=batch_size)
        self._model = model
        self._device = device
        self._precision = precision
        self._openvino = openvino
        self.runtime = f"openvino {openvino.precision}" if openvino else "torch"
        self._counter: Any = None  # the tokenizer copy that counts tokens for chunking
        self._counting = threading.Lock()
        # sentence-transformers 6 renamed the method; accept both.
        dimension = getattr(model, "get_embedding_dimension", None)
        dimension = dimension or model.get_sentence_embedding_dimension
        self.dimension = int(dimension())
        window = getattr(model, "max_seq_length", None)
        self.max_tokens = int(window) if window else None

    @classmethod
    def load(cls, settings: TextEmbedderSettings) -> SentenceTransformerEmbedder:
        """Through sentence-transformers (and PyTorch); see `load_text_embedder` for the
        path that skips both."""
        with loading("text embedder", settings.model, "text_embedder.model"):
            from sentence_transformers import SentenceTransformer

            device = resolve_device(settings.device)
            dtype = weights_dtype(device, settings.precision)
            model = SentenceTransformer(
                settings.model, device=device, model_kwargs={"dtype": dtype}
            )
        return cls(
            model=model,
            model_id=settings.model,
            batch_size=settings.batch_size,
            device=device,
            precision=settings.precision,
            openvino=_openvino_runtime(model, device, settings, local_model_dir(settings.model)),
        )

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens each text takes as a document: the model's document prompt, the text and
        the special tokens, counted by the model's own tokenizer without truncation."""
        prompt = self._document_prompt()
        with self._counting:  # a fast tokenizer is not safe to call from two threads
            if self._counter is None:
                # Its own copy: calling without truncation changes a fast tokenizer's state,
                # which must not race the encoding of queries and chunks.
                self._counter = copy.deepcopy(self._model.tokenizer)
            encoded = self._counter(
                [prompt + text for text in texts],
                add_special_tokens=True,
                truncation=False,
                verbose=False,  # no "longer than the maximum" warning: long texts are the point
            )
        return [len(ids) for ids in encoded["input_ids"]]

    def _document_prompt(self) -> str:
        """The prompt `encode_document` prepends (most models have none)."""
        return self._prompt(_DOCUMENT_PROMPTS)

    def _prompt(self, names: tuple[str, ...]) -> str:
        """The first of the model's prompts by these names, else its default prompt."""
        prompts: dict[str, str] = getattr(self._model, "prompts", None) or {}
        for name in names:
            if name in prompts:
                return prompts[name]
        default = getattr(self._model, "default_prompt_name", None)
        return prompts.get(default, "") if default else ""

    def _embed_batch(self, texts: list[str], *, query: bool) -> np.ndarray:
        if self._openvino is not None:
            prompt = self._prompt(_QUERY_PROMPTS if query else _DOCUMENT_PROMPTS)
            return self._openvino.encode(texts, prompt=prompt)
        # encode_query / encode_document apply the model's own query/passage prompts.
        encode = self._model.encode_query if query else self._model.encode_document
        with inference(self._device, self._precision):
            vectors = encode(
                texts, batch_size=len(texts), convert_to_numpy=True, show_progress_bar=False
            )
        return np.asarray(vectors, dtype=np.float32)  # [batch, dimension]


def load_text_embedder(settings: TextEmbedderSettings) -> TextEmbedder:
    """The text embedder: from its checked OpenVINO export alone where there is one (no
    PyTorch or sentence-transformers import: seconds, not tens of them), else through
    sentence-transformers, which makes the export for next time."""
    if settings.runtime != "torch" and surely_cpu(settings.device) and openvino_installed():
        model_dir = local_model_dir(settings.model)
        try:
            exported = model_dir and load_exported(
                model_dir,
                model_id=settings.model,
                batch_size=settings.batch_size,
                precision=settings.precision,
            )
        except Exception as exc:  # a damaged export: the full path rebuilds what it needs
            logger.warning("the OpenVINO export of %s did not load: %s", settings.model, exc)
            exported = None
        if exported:
            return exported
    return SentenceTransformerEmbedder.load(settings)


def _openvino_runtime(
    model: Any, device: str, settings: TextEmbedderSettings, model_dir: Path | None
) -> OpenVinoTransformer | None:
    """OpenVINO for the transformer where the settings and this machine allow it."""
    if settings.runtime == "torch":
        return None
    if device != "cpu":
        if settings.runtime == "openvino":
            raise ConfigError(
                f"text_embedder.runtime=openvino runs on the CPU, but the device is {device}; "
                "set text_embedder.device=cpu or text_embedder.runtime=auto"
            )
        return None
    if not openvino_installed():
        if settings.runtime == "openvino":
            raise ConfigError(
                "text_embedder.runtime=openvino but the openvino package is not installed "
                "(pip install openvino), or set text_embedder.runtime=auto"
            )
        return None
    try:
        return OpenVinoTransformer(model, precision=settings.precision, model_dir=model_dir)
    except Exception as exc:  # a conversion can fail in many ways; PyTorch still works
        reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        if settings.runtime == "openvino":
            raise ModelLoadError(
                role="text embedder",
                model=settings.model,
                reason=f"it cannot run on OpenVINO: {reason}",
                fix="set text_embedder.runtime=torch (or auto)",
            ) from exc
        logger.warning(
            "text embedder %s runs on PyTorch: OpenVINO cannot run it (%s)",
            settings.model,
            reason if isinstance(exc, OpenVinoUnavailable) else f"{type(exc).__name__}: {reason}",
        )
        return None


@text_embedders.register("sentence-transformers")
def _build_sentence_transformer(settings: Settings) -> TextEmbedder:
    return load_text_embedder(settings.text_embedder)
