"""The transformer of a sentence-transformers model, run by OpenVINO on the CPU.

On this project's 2-core CPU OpenVINO runs MiniLM about twice as fast as PyTorch with
bf16 autocast (`benchmarks/text_embedding.py`). Only the transformer moves: tokenizing,
prompts, pooling and normalising stay sentence-transformers' own modules, so the
vectors are the model's. The model is exported once (fp32 IR) into the model cache,
keyed by its weights and the OpenVINO version, and compiled in bf16 where the CPU has
bf16 instructions, as PyTorch's autocast is (`device.use_cpu_autocast`).

sentence-transformers has an OpenVINO backend of its own, but it needs optimum-intel,
which pins transformers below the version mmrag needs; `openvino` itself has no such
pin, and converting a transformers encoder needs nothing else.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from mmrag.models.device import use_cpu_autocast

logger = logging.getLogger(__name__)

# Bump when the exported graph changes shape (inputs, outputs), to re-export.
_EXPORT_FORMAT = "1"
# A converted model is used only if it agrees with PyTorch fp32 at least this well.
MIN_COSINE = 0.999
_PROBE = "OpenVINO check: the quarterly revenue grew 12 % in 2024, see Figure 3 on page 7."
# Inputs a transformers encoder takes from a sentence-transformers tokenizer.
_MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class OpenVinoUnavailable(Exception):
    """This model cannot run on OpenVINO here; the message says why."""


def openvino_installed() -> bool:
    return importlib.util.find_spec("openvino") is not None


def model_cache_dir() -> Path:
    """Where derived model files (exports) are kept: ``MMRAG_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/mmrag`` (``~/.cache/mmrag``)."""
    explicit = os.environ.get("MMRAG_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mmrag"


def _weights_key(module: Any) -> str:
    """A digest of the encoder's config and weights: the export is reused only for the
    same model, wherever it was loaded from."""
    import openvino
    import torch

    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{_EXPORT_FORMAT}/{openvino.__version__}/".encode())
    digest.update(module.config.to_json_string().encode())
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().cpu().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _last_hidden_state(encoder: Any) -> Any:
    """The encoder as a module returning only its token embeddings (no pooler head)."""
    import torch

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any = None) -> Any:
            extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
            output = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **extra)
            return output[0]  # [batch, tokens, hidden]

    return LastHiddenState().eval()


def _drop_weights(encoder: Any) -> None:
    """Free the PyTorch copy of the weights OpenVINO now holds (90 MB for MiniLM): on
    this path nothing runs the PyTorch encoder again."""
    import torch

    for tensor in (*encoder.parameters(), *encoder.buffers()):
        tensor.data = torch.empty(0, dtype=tensor.dtype)


class OpenVinoTransformer:
    """Runs ``model[0]`` (the transformer) of a SentenceTransformer with OpenVINO; the
    model's other modules (pooling, dense, normalize) run as they are."""

    def __init__(self, model: Any, *, precision: str) -> None:
        import openvino
        from sentence_transformers.models import Transformer

        transformer = model[0]
        if not isinstance(transformer, Transformer):
            raise OpenVinoUnavailable(f"its first module is {type(transformer).__name__}")
        self._model = model
        self._inputs: list[str] = []
        self.precision = "bf16" if use_cpu_autocast("cpu", precision) else "f32"
        exported = self._export(transformer.auto_model)
        core = openvino.Core()
        self._compiled = core.compile_model(
            exported,
            "CPU",
            {"INFERENCE_PRECISION_HINT": self.precision, "PERFORMANCE_HINT": "LATENCY"},
        )
        self._inputs = [port.get_any_name() for port in self._compiled.inputs]
        self._requests = threading.local()  # an infer request is not safe to share
        self._check_against_torch()
        _drop_weights(transformer.auto_model)

    def _export(self, encoder: Any) -> Path:
        """The IR for this encoder, converted on first use and kept in the model cache."""
        import openvino
        import torch

        target = model_cache_dir() / "openvino" / _weights_key(encoder)
        xml = target / "model.xml"
        if xml.is_file():
            return xml
        logger.info("exporting the text embedder to OpenVINO (once) into %s", target)
        features = self._features([_PROBE, "a second, shorter text"], "")
        example = {k: v for k, v in features.items() if k in _MODEL_INPUTS}
        # Tracing warns about Python branches on shapes; the ones in encoders are constant
        # for any input (mask and keys always have the same length here).
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            converted = openvino.convert_model(_last_hidden_state(encoder), example_input=example)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
        try:
            openvino.save_model(converted, staging / "model.xml", compress_to_fp16=False)
            try:
                staging.rename(target)  # atomic: a concurrent export of the same key wins
            except OSError:
                if not xml.is_file():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return xml

    def _check_against_torch(self) -> None:
        """Refuse an export whose vectors drift from PyTorch fp32 (a bad conversion)."""
        import torch

        with torch.inference_mode():  # the whole model in PyTorch, fp32 (no autocast here)
            expected = self._model(self._features([_PROBE], ""))["sentence_embedding"]
        expected = expected[0].float().numpy()
        found = self.encode([_PROBE], prompt="")[0]
        cosine = float(np.dot(expected, found) / (np.linalg.norm(expected) * np.linalg.norm(found)))
        if cosine < MIN_COSINE:
            raise OpenVinoUnavailable(
                f"its OpenVINO vectors differ from PyTorch's (cosine {cosine:.4f} < {MIN_COSINE})"
            )

    def _request(self) -> Any:
        request = getattr(self._requests, "request", None)
        if request is None:
            request = self._requests.request = self._compiled.create_infer_request()
        return request

    def encode(self, texts: list[str], *, prompt: str) -> np.ndarray:
        """Sentence embeddings ``[len(texts), dimension]`` as the model's own modules
        pool them (not yet normalised unless the model normalises)."""
        import torch

        features = self._features(texts, prompt)
        inputs = {name: features[name].numpy() for name in self._inputs}
        hidden = self._request().infer(inputs)[0]  # [batch, tokens, hidden]
        features["token_embeddings"] = torch.from_numpy(np.asarray(hidden, dtype=np.float32))
        with torch.inference_mode():
            for module in list(self._model)[1:]:
                features = module(features)
        return features["sentence_embedding"].float().numpy()

    def _features(self, texts: list[str], prompt: str) -> dict[str, Any]:
        preprocess = getattr(self._model, "preprocess", None)
        if preprocess is not None:  # sentence-transformers 6: prompt and prompt_length
            return dict(preprocess(texts, prompt=prompt or None))
        features = dict(self._model.tokenize([prompt + text for text in texts]))
        if prompt and not all(getattr(m, "include_prompt", True) for m in self._model):
            prompt_ids = self._model.tokenize([prompt])["input_ids"]
            features["prompt_length"] = prompt_ids.shape[-1] - 1  # without the end token
        return features
