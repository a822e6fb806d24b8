"""Precision governs every device and every backend (no GPU needed: pure logic, and CPU
loads with the GPU's dtype forced)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from mmrag.errors import ConfigError
from mmrag.models import device as device_module
from mmrag.models.device import use_cpu_autocast, weights_dtype

BF16, FP32 = torch.bfloat16, torch.float32


@pytest.mark.parametrize(
    ("device", "precision", "native_bf16", "expected"),
    [
        ("cuda", "auto", True, BF16),
        ("cuda", "bf16", True, BF16),
        ("cuda", "fp32", True, FP32),  # the bug: fp32 was ignored on GPUs
        ("cuda:1", "auto", True, BF16),
        ("cuda", "auto", False, FP32),  # pre-Ampere: no native bf16
        ("cuda", "fp32", False, FP32),
        ("mps", "auto", False, FP32),
        ("mps", "fp32", False, FP32),
        ("mps", "bf16", False, BF16),
        ("cpu", "auto", True, FP32),  # the CPU keeps fp32 weights; bf16 runs via autocast
        ("cpu", "fp32", True, FP32),
        ("cpu", "bf16", True, FP32),
    ],
)
def test_weights_dtype_table(
    monkeypatch: pytest.MonkeyPatch,
    device: str,
    precision: str,
    native_bf16: bool,
    expected: torch.dtype,
) -> None:
    monkeypatch.setattr(device_module, "gpu_has_native_bf16", lambda: native_bf16)
    assert weights_dtype(device, precision) == expected


def test_bf16_on_a_gpu_without_it_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device_module, "gpu_has_native_bf16", lambda: False)
    with pytest.raises(ConfigError, match="bf16"):
        weights_dtype("cuda", "bf16")


def test_unknown_precision_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="fp16"):
        weights_dtype("cpu", "fp16")


@pytest.mark.parametrize("fast_bf16", [True, False])
def test_cpu_autocast_follows_precision(monkeypatch: pytest.MonkeyPatch, fast_bf16: bool) -> None:
    monkeypatch.setattr(device_module, "cpu_has_fast_bf16", lambda: fast_bf16)
    assert use_cpu_autocast("cpu", "bf16")
    assert not use_cpu_autocast("cpu", "fp32")
    assert use_cpu_autocast("cpu", "auto") == fast_bf16
    assert not use_cpu_autocast("cuda", "bf16")  # GPUs run bf16 weights instead


def _bf16_everywhere(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make every backend load as on a bf16 GPU, on the CPU."""
    import importlib

    for name in modules:
        monkeypatch.setattr(importlib.import_module(name), "weights_dtype", lambda *_: BF16)


def _dtype(model: Any) -> torch.dtype:
    return next(model.parameters()).dtype


def test_text_embedder_and_reranker_load_in_the_precision_dtype(
    monkeypatch: pytest.MonkeyPatch, tiny_models: Path
) -> None:
    from mmrag.models.base import RerankItem
    from mmrag.models.rerankers import CrossEncoderReranker
    from mmrag.models.text import SentenceTransformerEmbedder
    from mmrag.profiles import shipped_minilm_path
    from mmrag.settings import RerankerSettings, TextEmbedderSettings

    _bf16_everywhere(monkeypatch, "mmrag.models.text", "mmrag.models.rerankers")
    text = SentenceTransformerEmbedder.load(TextEmbedderSettings(model=shipped_minilm_path() or ""))
    reranker = CrossEncoderReranker.load(RerankerSettings(model=str(tiny_models / "cross-encoder")))

    assert _dtype(text._model) == BF16 and _dtype(reranker._model) == BF16
    assert np.isfinite(text.embed_query("turbine")).all()
    assert np.isfinite(reranker.rerank("turbine", [RerankItem("power")])).all()


def test_pixel_backends_feed_bf16_weights_bf16_pixels(
    monkeypatch: pytest.MonkeyPatch, tiny_models: Path, tiny_colqwen2: Path
) -> None:
    from mmrag.models.image import OpenClipEmbedder, SiglipEmbedder
    from mmrag.models.pages import TransformersPageEmbedder
    from mmrag.settings import ImageEmbedderSettings, PageEmbedderSettings

    _bf16_everywhere(monkeypatch, "mmrag.models.image", "mmrag.models.pages")
    image = [Image.new("RGB", (80, 60), (200, 30, 30))]
    embedders: list[SiglipEmbedder | OpenClipEmbedder] = [
        SiglipEmbedder.load(ImageEmbedderSettings(model=str(tiny_models / "siglip"))),
        OpenClipEmbedder.load(
            ImageEmbedderSettings(backend="open-clip", model=str(tiny_models / "open-clip"))
        ),
    ]
    page = TransformersPageEmbedder.load(PageEmbedderSettings(model=str(tiny_colqwen2)))

    for embedder in embedders:
        assert _dtype(embedder._model) == BF16
        assert np.isfinite(embedder.embed_images(image)).all()
    assert _dtype(page._model) == BF16
    assert np.isfinite(page.embed_pages(image)[0].vectors).all()


def test_vlm_loads_in_the_precision_dtype(
    monkeypatch: pytest.MonkeyPatch, tiny_models: Path
) -> None:
    from mmrag.models.captioners import TransformersCaptioner
    from mmrag.settings import CaptionerSettings

    _bf16_everywhere(monkeypatch, "mmrag.models.vlm")
    captioner = TransformersCaptioner.load(
        CaptionerSettings(model=str(tiny_models / "smolvlm"), max_new_tokens=2)
    )

    assert _dtype(captioner._model) == BF16
    assert len(captioner.caption([Image.new("RGB", (64, 64))])) == 1
