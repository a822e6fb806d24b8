"""Text embedders run by OpenVINO on the CPU.

On this project's 2-core CPU OpenVINO runs MiniLM faster than PyTorch with bf16 autocast
(`benchmarks/text_embedding.py`). The first load of a model goes through
sentence-transformers: its transformer is exported (fp32 IR) into the model cache,
keyed by the model's files (or, where they cannot be found, its weights) and the
OpenVINO version, compiled in bf16 where the CPU has bf16 instructions (as PyTorch's
autocast is, `device.use_cpu_autocast`), checked against PyTorch fp32, and run with the
model's own tokenizing, prompts and pooling (`OpenVinoTransformer`).

Once a checked export exists, and the model is a plain encoder (a transformer, mean or
CLS pooling, normalisation), the export also holds the tokenizer and the pooling, and
later loads use it alone (`ExportedEmbedder`): no PyTorch, transformers or
sentence-transformers import, so `mmrag search` starts in seconds and an ingest process
holds no PyTorch for the text embedder.

sentence-transformers has an OpenVINO backend of its own, but it needs optimum-intel,
which pins transformers below the version mmrag needs; `openvino` itself has no such
pin, and converting a transformers encoder needs nothing else.
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import json
import logging
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmrag.models.base import TextEmbedder
from mmrag.models.device import use_cpu_autocast

logger = logging.getLogger(__name__)

# Bump when the exported graph changes shape (inputs, outputs), to re-export.
_EXPORT_FORMAT = "2"
# Beside model.xml in a checked export of a plain encoder: what `ExportedEmbedder` needs.
MANIFEST, TOKENIZER = "embedder.json", "tokenizer.json"
_POOLING_MODES = {"mean": "mean", "mean_tokens": "mean", "cls": "cls", "cls_token": "cls"}
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


def source_key(model_dir: Path) -> str:
    """A digest of the model's files (names, sizes, modification times) and the OpenVINO
    version: found without loading anything, changed by any change to the model."""
    import openvino

    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{_EXPORT_FORMAT}/{openvino.__version__}/files/".encode())
    for file in sorted(model_dir.rglob("*")):
        if file.is_file() and "openvino" not in file.relative_to(model_dir).parts:
            stat = file.stat()
            digest.update(
                f"{file.relative_to(model_dir)}:{stat.st_size}:{stat.st_mtime_ns};".encode()
            )
    return digest.hexdigest()


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

    def __init__(self, model: Any, *, precision: str, model_dir: Path | None = None) -> None:
        from sentence_transformers.models import Transformer

        transformer = model[0]
        if not isinstance(transformer, Transformer):
            raise OpenVinoUnavailable(f"its first module is {type(transformer).__name__}")
        self._model = model
        key = source_key(model_dir) if model_dir else _weights_key(transformer.auto_model)
        exported = self._export(transformer.auto_model, model_cache_dir() / "openvino" / key)
        self._runner = _Compiled(exported, precision)
        self.precision = self._runner.precision
        self._check_against_torch()
        if model_dir is not None:
            _write_manifest(model, exported.parent)
        _drop_weights(transformer.auto_model)

    def _export(self, encoder: Any, target: Path) -> Path:
        """The IR for this encoder, converted on first use and kept in the model cache."""
        import openvino
        import torch

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

    def encode(self, texts: list[str], *, prompt: str) -> np.ndarray:
        """Sentence embeddings ``[len(texts), dimension]`` as the model's own modules
        pool them (not yet normalised unless the model normalises)."""
        import torch

        features = self._features(texts, prompt)
        inputs = {name: features[name].numpy() for name in self._runner.inputs}
        hidden = self._runner.hidden(inputs)
        features["token_embeddings"] = torch.from_numpy(hidden)
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


class _Compiled:
    """An exported encoder compiled for the CPU in throughput mode: a batch is split
    across the CPU's streams (one per core or two) and its parts run at once, which is
    faster than one request spanning every core (`benchmarks/text_embedding.py`)."""

    def __init__(self, xml: Path, precision: str) -> None:
        import openvino

        self.precision = "bf16" if use_cpu_autocast("cpu", precision) else "f32"
        self._compiled = openvino.Core().compile_model(
            xml,
            "CPU",
            {"INFERENCE_PRECISION_HINT": self.precision, "PERFORMANCE_HINT": "THROUGHPUT"},
        )
        self.inputs = [port.get_any_name() for port in self._compiled.inputs]
        self.streams = max(1, int(self._compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        self._requests = threading.local()  # infer requests are not safe to share

    def hidden(self, features: dict[str, np.ndarray]) -> np.ndarray:
        """Token embeddings ``[batch, tokens, hidden]`` (float32)."""
        import openvino

        queue = getattr(self._requests, "queue", None)
        if queue is None:
            queue = self._requests.queue = openvino.AsyncInferQueue(self._compiled, self.streams)
        rows = len(features[self.inputs[0]])
        bounds = np.linspace(0, rows, min(self.streams, rows) + 1).astype(int)
        parts: list[np.ndarray] = [np.zeros(0)] * (len(bounds) - 1)

        def collect(request: Any, index: int) -> None:
            parts[index] = np.array(request.get_output_tensor(0).data, dtype=np.float32)

        queue.set_callback(collect)
        for index, (start, stop) in enumerate(itertools.pairwise(bounds)):
            queue.start_async({name: features[name][start:stop] for name in self.inputs}, index)
        queue.wait_all()
        return np.concatenate(parts)


def _pooling_mode(config: dict[str, Any]) -> str | None:
    """ "mean" or "cls" from a sentence-transformers Pooling config (5.x flags or 6.x
    ``pooling_mode``); None for any other pooling."""
    named = config.get("pooling_mode")
    modes = [named] if isinstance(named, str) else list(named or [])
    modes += [key.removeprefix("pooling_mode_") for key, on in config.items() if on is True]
    found = {_POOLING_MODES.get(mode) for mode in modes if mode != "include_prompt"}
    return found.pop() if len(found) == 1 and None not in found else None


def _write_manifest(model: Any, export: Path) -> None:
    """Beside a checked export: the tokenizer and pooling of a plain encoder, so later
    loads need neither PyTorch nor sentence-transformers. Other models get none."""
    names = [type(module).__name__ for module in model]
    tokenizer = getattr(model, "tokenizer", None)
    if names[1:] not in (["Pooling"], ["Pooling", "Normalize"]):
        return
    if tokenizer is None or not getattr(tokenizer, "is_fast", False):
        return
    pooling = model[1].get_config_dict()
    mode = _pooling_mode(pooling)
    if mode is None or (export / MANIFEST).is_file():
        return
    manifest = {
        "pooling": mode,
        "include_prompt": bool(pooling.get("include_prompt", True)),
        "max_tokens": int(model.max_seq_length),
        "lowercase": bool(getattr(model[0], "do_lower_case", False)),
        "dimension": int(pooling.get("embedding_dimension") or pooling["word_embedding_dimension"]),
        "prompts": dict(getattr(model, "prompts", None) or {}),
        "default_prompt_name": getattr(model, "default_prompt_name", None),
        "pad_id": int(tokenizer.pad_token_id or 0),
        "pad_token": str(tokenizer.pad_token or "[PAD]"),
        "padding_side": str(getattr(tokenizer, "padding_side", "right")),
    }
    (export / TOKENIZER).write_text(tokenizer.backend_tokenizer.to_str())
    staging = export / f".{MANIFEST}.{os.getpid()}"
    staging.write_text(json.dumps(manifest, indent=1))
    staging.rename(export / MANIFEST)  # last: its presence says the export is complete


class ExportedEmbedder(TextEmbedder):
    """A plain encoder from its checked OpenVINO export: the tokenizer (Hugging Face
    ``tokenizers``), the compiled model and mean or CLS pooling, as sentence-transformers
    runs them (`tests/models/test_openvino.py` compares the two)."""

    def __init__(self, export: Path, *, model_id: str, batch_size: int, precision: str) -> None:
        from tokenizers import Tokenizer

        super().__init__(model_id=model_id, batch_size=batch_size)
        self._manifest: dict[str, Any] = json.loads((export / MANIFEST).read_text())
        self.dimension = int(self._manifest["dimension"])
        self.max_tokens = int(self._manifest["max_tokens"])
        self._tokenizer = Tokenizer.from_str((export / TOKENIZER).read_text())
        self._tokenizer.enable_truncation(max_length=self.max_tokens)
        self._tokenizer.enable_padding(
            direction=self._manifest["padding_side"],
            pad_id=self._manifest["pad_id"],
            pad_token=self._manifest["pad_token"],
        )
        self._counter = Tokenizer.from_str((export / TOKENIZER).read_text())
        self._counter.no_truncation()
        self._counter.no_padding()
        self._counting = threading.Lock()
        self._runner = _Compiled(export / "model.xml", precision)
        self.runtime = f"openvino {self._runner.precision}"

    def _prompt(self, query: bool) -> str:
        prompts: dict[str, str] = self._manifest["prompts"]
        for name in ("query",) if query else ("document", "passage", "corpus"):
            if name in prompts:
                return prompts[name]
        default = self._manifest["default_prompt_name"]
        return prompts.get(default, "") if default else ""

    def _texts(self, texts: list[str], prompt: str) -> list[str]:
        texts = [prompt + text for text in texts]
        return [text.lower() for text in texts] if self._manifest["lowercase"] else texts

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        with self._counting:
            encoded = self._counter.encode_batch(self._texts(list(texts), self._prompt(False)))
        return [len(item.ids) for item in encoded]

    def _embed_batch(self, texts: list[str], *, query: bool) -> np.ndarray:
        prompt = self._prompt(query)
        encoded = self._tokenizer.encode_batch(self._texts(texts, prompt))
        mask = np.array([item.attention_mask for item in encoded], dtype=np.int64)
        features = {
            "input_ids": np.array([item.ids for item in encoded], dtype=np.int64),
            "attention_mask": mask,
            "token_type_ids": np.array([item.type_ids for item in encoded], dtype=np.int64),
        }
        hidden = self._runner.hidden(features)  # [batch, tokens, hidden]
        if self._manifest["pooling"] == "cls":
            return hidden[:, 0]
        weights = mask.astype(np.float32)
        if prompt and not self._manifest["include_prompt"]:
            prompt_tokens = len(self._counter.encode(self._texts([""], prompt)[0]).ids) - 1
            weights[:, :prompt_tokens] = 0.0  # as sentence-transformers: prompt not pooled
        summed = np.einsum("bth,bt->bh", hidden, weights)
        return summed / np.maximum(weights.sum(axis=1, keepdims=True), 1e-9)


def load_exported(
    model_dir: Path, *, model_id: str, batch_size: int, precision: str
) -> ExportedEmbedder | None:
    """The embedder from a checked export of the model in ``model_dir``; None when there
    is none yet (the first load makes it) or the model is not a plain encoder."""
    export = model_cache_dir() / "openvino" / source_key(model_dir)
    if not (export / MANIFEST).is_file():
        return None
    return ExportedEmbedder(export, model_id=model_id, batch_size=batch_size, precision=precision)
