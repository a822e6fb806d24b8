"""Every model backend through its real loading code: tiny random models, the shipped
MiniLM, tesseract, and an OpenAI-compatible server stand-in."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from mmrag.errors import ConfigError, ModelLoadError, ModelRuntimeError
from mmrag.models.captioners import OcrCaptioner, OpenAICaptioner, TransformersCaptioner
from mmrag.models.image import OpenClipEmbedder, SiglipEmbedder
from mmrag.models.registry import captioners, image_embedders, text_embedders
from mmrag.models.text import SentenceTransformerEmbedder
from mmrag.profiles import shipped_minilm_path
from mmrag.settings import (
    CaptionerSettings,
    ImageEmbedderSettings,
    Settings,
    TextEmbedderSettings,
)

IMAGES = [
    Image.new("RGB", (80, 60), (200, 30, 30)),
    Image.new("RGB", (120, 90), (20, 40, 220)),
    Image.new("RGB", (64, 64), (10, 200, 10)),
]


def assert_unit_rows(vectors: np.ndarray, rows: int) -> None:
    assert vectors.dtype == np.float32 and vectors.shape[0] == rows
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def test_minilm_embeds_queries_and_documents() -> None:
    embedder = SentenceTransformerEmbedder.load(
        TextEmbedderSettings(model=shipped_minilm_path() or "", batch_size=2)
    )

    documents = embedder.embed_documents(
        [
            "The turbine produces 42 megawatts.",
            "Wind turbines generate electric power.",
            "A recipe for lemon cake.",
        ]
    )
    query = embedder.embed_query("How much power does the turbine produce?")

    assert embedder.dimension == 384
    assert_unit_rows(documents, 3)
    scores = documents @ query
    assert scores[0] > scores[2] and scores[1] > scores[2]


def test_tiny_siglip_through_transformers(tiny_models: Path) -> None:
    embedder = SiglipEmbedder.load(
        ImageEmbedderSettings(model=str(tiny_models / "siglip"), batch_size=2)
    )

    images = embedder.embed_images(IMAGES)
    texts = embedder.embed_texts(["a red square", "a blue rectangle " * 40])  # truncated

    assert embedder.dimension == 32
    assert_unit_rows(images, 3)
    assert_unit_rows(texts, 2)
    assert embedder.embed_query("red").shape == (32,)
    assert not np.allclose(images[0], images[1])


def test_tiny_siglip_through_open_clip(tiny_models: Path) -> None:
    embedder = OpenClipEmbedder.load(
        ImageEmbedderSettings(backend="open-clip", model=str(tiny_models / "open-clip"))
    )

    assert_unit_rows(embedder.embed_images(IMAGES), 3)
    assert_unit_rows(embedder.embed_texts(["a chart", "a photo"]), 2)
    assert embedder.dimension == 32


def test_tiny_smolvlm_captions_in_batches(tiny_models: Path) -> None:
    captioner = TransformersCaptioner.load(
        CaptionerSettings(model=str(tiny_models / "smolvlm"), batch_size=2, max_new_tokens=8)
    )

    captions = captioner.caption(IMAGES)

    assert len(captions) == 3 and all(isinstance(c, str) for c in captions)
    assert captioner.items_processed == 3
    assert str(tiny_models / "smolvlm") in captioner.cache_key


def test_ocr_captioner_reads_text(corpus) -> None:  # type: ignore[no-untyped-def]
    captioner = OcrCaptioner(languages="eng", batch_size=2)

    with Image.open(corpus.good["png"]) as poster:
        (caption,) = captioner.caption([poster])

    assert "FALCON" in caption.upper() and captioner.reads_text


def openai_server(reply: str, seen: list[dict]) -> httpx.Client:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, json={"choices": [{"message": {"content": reply}}]})

    return httpx.Client(base_url="http://vlm.test/v1", transport=httpx.MockTransport(handle))


def test_openai_captioner_sends_images_and_prompt() -> None:
    seen: list[dict] = []
    settings = CaptionerSettings(backend="openai", model="served-vlm", prompt="Describe it.")
    captioner = OpenAICaptioner(client=openai_server(" A bar chart. ", seen), settings=settings)

    captions = captioner.caption(IMAGES[:2])

    assert captions == ["A bar chart.", "A bar chart."]
    content = seen[0]["messages"][0]["content"]
    assert seen[0]["model"] == "served-vlm"
    assert content[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert content[1] == {"type": "text", "text": "Describe it."}


def test_openai_captioner_server_down_is_a_runtime_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = httpx.Client(base_url="http://vlm.test/v1", transport=httpx.MockTransport(refuse))
    captioner = OpenAICaptioner(client=client, settings=CaptionerSettings(model="served-vlm"))

    with pytest.raises(ModelRuntimeError, match="served-vlm"):
        captioner.caption(IMAGES[:1])


def test_openai_captioner_needs_a_url() -> None:
    with pytest.raises(ModelLoadError, match="captioner.base_url"):
        OpenAICaptioner.load(CaptionerSettings(backend="openai"))


def test_missing_hub_model_offline_names_model_reason_and_fix() -> None:
    with pytest.raises(ModelLoadError) as caught:
        SiglipEmbedder.load(ImageEmbedderSettings(model="google/siglip-so400m-patch14-384"))

    message = str(caught.value)
    assert "google/siglip-so400m-patch14-384" in message
    assert "offline" in message and "image_embedder.model" in message


def test_missing_local_directory_is_a_load_error(tmp_path: Path) -> None:
    (tmp_path / "empty-model").mkdir()
    with pytest.raises(ModelLoadError, match="captioner.model"):
        TransformersCaptioner.load(CaptionerSettings(model=str(tmp_path / "empty-model")))


def test_registries_list_valid_names_for_unknown_backends() -> None:
    settings = Settings(image_embedder=ImageEmbedderSettings(backend="clip-xl"))
    with pytest.raises(ConfigError, match="open-clip, siglip"):
        image_embedders.create("clip-xl", settings)
    assert {"transformers", "openai", "ocr", "none"} <= set(captioners.names())
    assert "sentence-transformers" in text_embedders.names()
    assert image_embedders.create("none", settings) is None


def test_other_vlm_families_run_through_the_same_code(tmp_path: Path) -> None:
    from mmrag.models.answerers import TransformersAnswerer
    from mmrag.models.base import Source
    from mmrag.settings import AnswererSettings
    from mmrag.testing.tiny_models import build_tiny_qwen2vl
    from mmrag.types import ElementKind, Hit

    qwen = str(build_tiny_qwen2vl(tmp_path / "qwen2-vl"))
    captioner = TransformersCaptioner.load(
        CaptionerSettings(model=qwen, batch_size=2, max_new_tokens=6)
    )
    answerer = TransformersAnswerer.load(AnswererSettings(model=qwen, max_new_tokens=6))
    chart = Hit(
        point_id="p",
        score=1.0,
        document_id="d",
        source="/docs/a.pdf",
        page=1,
        kind=ElementKind.IMAGE,
        text="a chart",
    )

    captions = captioner.caption(IMAGES)
    pieces = list(answerer.stream("What is shown?", [Source(1, chart, IMAGES[0])]))

    assert len(captions) == 3 and all(isinstance(c, str) for c in captions)
    assert pieces and answerer.items_processed == 1
