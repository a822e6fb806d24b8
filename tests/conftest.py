"""Shared fixtures. The default tier is offline and CPU-only: the hub is never contacted."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

# Before any Hugging Face import: a failed hub call retries for ~20 s otherwise.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Model exports (OpenVINO) go to a cache of this run's own, shared by the servers and
# workers the tests start, and removed at the end; never into the user's ~/.cache.
_MODEL_CACHE = tempfile.mkdtemp(prefix="mmrag-test-cache-")
os.environ["MMRAG_CACHE_DIR"] = _MODEL_CACHE
atexit.register(shutil.rmtree, _MODEL_CACHE, True)

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from mmrag.settings import Settings  # noqa: E402
from mmrag.testing import FakeCaptioner, FakeImageEmbedder, FakeTextEmbedder  # noqa: E402
from mmrag.testing.documents import GeneratedCorpus, write_corpus  # noqa: E402

pytest_plugins = ["tests.servers_fixtures"]


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> GeneratedCorpus:
    """Small generated documents of every supported type, plus every kind of bad input."""
    return write_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny random SigLIP, open_clip and SmolVLM models saved in their real formats."""
    from mmrag.testing.__main__ import make_offline_models

    target = tmp_path_factory.mktemp("models")
    make_offline_models(target)
    return target


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Offline settings with a fresh data directory per test."""
    return Settings(data_dir=tmp_path / "data", profile="offline")


@pytest.fixture
def text_embedder() -> FakeTextEmbedder:
    return FakeTextEmbedder()


@pytest.fixture
def image_embedder() -> FakeImageEmbedder:
    return FakeImageEmbedder()


@pytest.fixture
def captioner() -> FakeCaptioner:
    return FakeCaptioner()
