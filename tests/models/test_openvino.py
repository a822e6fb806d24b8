"""The OpenVINO runtime for the text embedder: the shipped MiniLM's vectors agree with
PyTorch fp32, the export is made once, and a model OpenVINO cannot run falls back or
fails as `text_embedder.runtime` says."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mmrag.errors import ConfigError, ModelLoadError
from mmrag.models import openvino as openvino_module
from mmrag.models import text as text_module
from mmrag.models.base import TextEmbedder
from mmrag.models.openvino import ExportedEmbedder
from mmrag.models.text import SentenceTransformerEmbedder, load_text_embedder
from mmrag.profiles import shipped_minilm_path
from mmrag.settings import TextEmbedderSettings

MINILM = shipped_minilm_path() or ""
TEXTS = [
    "Quarterly revenue grew 12 % to 4.1 billion.",
    "turbine",
    # Past the model's 256-token window: truncated the same way in both runtimes.
    " ".join(["The maintenance log lists every inspection of the northern wind farm."] * 60),
    "Figure 3 shows the pressure curve of the second pump under load.",
]


def _load(runtime: str, precision: str = "auto") -> SentenceTransformerEmbedder:
    settings = TextEmbedderSettings(
        model=MINILM,
        device="cpu",
        runtime=runtime,  # type: ignore[arg-type]
        precision=precision,  # type: ignore[arg-type]
    )
    return SentenceTransformerEmbedder.load(settings)


@pytest.fixture(scope="module")
def fp32_torch() -> SentenceTransformerEmbedder:
    return _load("torch", "fp32")


@pytest.mark.parametrize("precision", ["auto", "fp32", "bf16"])
def test_openvino_vectors_agree_with_pytorch_fp32(
    fp32_torch: SentenceTransformerEmbedder, precision: str
) -> None:
    embedder = _load("openvino", precision)

    assert embedder.runtime == f"openvino {'f32' if precision == 'fp32' else 'bf16'}" or (
        precision == "auto" and embedder.runtime == "openvino f32"  # a CPU without bf16
    )
    for query in (False, True):
        found = embedder.embed_queries(TEXTS) if query else embedder.embed_documents(TEXTS)
        expected = fp32_torch.embed_queries(TEXTS) if query else fp32_torch.embed_documents(TEXTS)
        assert found.shape == expected.shape == (len(TEXTS), 384)
        assert np.allclose(np.linalg.norm(found, axis=1), 1.0, atol=1e-5)
        assert np.min(np.sum(found * expected, axis=1)) >= 0.999


def test_auto_uses_openvino_on_the_cpu_and_exports_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MMRAG_CACHE_DIR", str(tmp_path))
    first = _load("auto")
    exports = list((tmp_path / "openvino").iterdir())
    assert first.runtime.startswith("openvino") and len(exports) == 1
    assert (exports[0] / "model.xml").is_file() and (exports[0] / "model.bin").is_file()

    def no_second_export(*args: object, **kwargs: object) -> None:
        raise AssertionError("converted again although the export is cached")

    monkeypatch.setattr("openvino.convert_model", no_second_export)
    second = _load("auto")
    assert second.runtime == first.runtime
    assert np.allclose(second.embed_documents(TEXTS), first.embed_documents(TEXTS), atol=1e-6)


def test_batches_are_sorted_by_length_and_the_order_is_kept(
    fp32_torch: SentenceTransformerEmbedder,
) -> None:
    together = fp32_torch.embed_documents(TEXTS)
    one_by_one = np.stack([fp32_torch.embed_documents([text])[0] for text in TEXTS])
    assert np.allclose(together, one_by_one, atol=1e-5)


def test_a_drifting_export_falls_back_to_pytorch_under_auto(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(openvino_module, "MIN_COSINE", 1.5)  # no export can pass
    with caplog.at_level(logging.WARNING, logger="mmrag.models.text"):
        embedder = _load("auto")
    assert embedder.runtime == "torch"
    assert "runs on PyTorch: OpenVINO cannot run it" in caplog.text
    assert "differ from PyTorch's" in caplog.text

    with pytest.raises(ModelLoadError, match="cannot run on OpenVINO.*runtime=torch"):
        _load("openvino")


def test_runtime_openvino_without_the_package_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(text_module, "openvino_installed", lambda: False)
    assert _load("auto").runtime == "torch"
    with pytest.raises(ConfigError, match="openvino package is not installed"):
        _load("openvino")


def test_runtime_openvino_refuses_a_gpu_device(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = TextEmbedderSettings(model=MINILM, runtime="openvino")
    with pytest.raises(ConfigError, match="runs on the CPU, but the device is cuda"):
        text_module._openvino_runtime(object(), "cuda", settings, None)
    assert (
        text_module._openvino_runtime(
            object(), "cuda", settings.model_copy(update={"runtime": "auto"}), None
        )
        is None
    )


def _save_variant(target: Path, *, dense: bool = False, prompts: bool = False) -> Path:
    """The shipped MiniLM saved as another model: with a Dense head, or with query and
    document prompts that pooling leaves out."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Dense

    model = SentenceTransformer(MINILM, device="cpu")
    if dense:
        model = SentenceTransformer(modules=[model[0], model[1], Dense(384, 32)], device="cpu")
    if prompts:
        model.prompts = {"query": "query: ", "document": "passage: "}
        model.set_pooling_include_prompt(False)
    model.save(str(target))
    return target


def _load_any(model: str, runtime: str = "auto") -> TextEmbedder:
    return load_text_embedder(
        TextEmbedderSettings(model=model, device="cpu", runtime=runtime)  # type: ignore[arg-type]
    )


def test_a_checked_export_loads_alone_without_pytorch(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from mmrag.models.text import load_text_embedder\n"
        "from mmrag.settings import TextEmbedderSettings\n"
        f"e = load_text_embedder(TextEmbedderSettings(model={MINILM!r}))\n"
        "e.embed_query('turbine')\n"
        "print(type(e).__name__, 'torch' in sys.modules, 'sentence_transformers' in sys.modules)\n"
    )
    env = {**os.environ, "MMRAG_CACHE_DIR": str(tmp_path)}
    runs = [
        subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        ).stdout.split()
        for _ in range(2)
    ]
    assert runs[0] == ["SentenceTransformerEmbedder", "True", "True"]  # makes the export
    assert runs[1] == ["ExportedEmbedder", "False", "False"]


@pytest.mark.parametrize("prompts", [False, True])
def test_the_export_alone_embeds_and_counts_as_sentence_transformers_does(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, prompts: bool
) -> None:
    monkeypatch.setenv("MMRAG_CACHE_DIR", str(tmp_path / "cache"))
    model = str(_save_variant(tmp_path / "model", prompts=prompts)) if prompts else MINILM
    first, second = _load_any(model), _load_any(model)
    reference = _load_any(model, runtime="torch")
    assert isinstance(first, SentenceTransformerEmbedder) and first.runtime.startswith("openvino")
    assert isinstance(second, ExportedEmbedder)

    for query in (False, True):
        embed = "embed_queries" if query else "embed_documents"
        through_st = getattr(first, embed)(TEXTS)
        alone = getattr(second, embed)(TEXTS)
        assert np.min(np.sum(through_st * alone, axis=1)) >= 0.99999
        assert np.min(np.sum(getattr(reference, embed)(TEXTS) * alone, axis=1)) >= 0.999
    assert second.count_tokens(TEXTS) == reference.count_tokens(TEXTS)
    assert (second.max_tokens, second.dimension) == (reference.max_tokens, reference.dimension)


def test_a_model_with_more_than_pooling_keeps_sentence_transformers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MMRAG_CACHE_DIR", str(tmp_path / "cache"))
    model = str(_save_variant(tmp_path / "dense", dense=True))
    first, second = _load_any(model), _load_any(model)
    reference = _load_any(model, runtime="torch")

    assert isinstance(second, SentenceTransformerEmbedder)  # the Dense head runs there
    assert first.runtime.startswith("openvino") and second.runtime == first.runtime
    assert second.dimension == 32
    found, expected = second.embed_documents(TEXTS), reference.embed_documents(TEXTS)
    assert np.min(np.sum(found * expected, axis=1)) >= 0.999
