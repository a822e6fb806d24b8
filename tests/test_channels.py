"""A channel is one module: a toy channel registered here is indexed, searched, fused and
scored by the eval harness with no other change."""

from __future__ import annotations

import string
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from eval.datasets import load_mmrag_dataset
from eval.runner import configurations, run_eval
from mmrag.channels import (
    Channel,
    Encoded,
    Indexable,
    Models,
    VectorKind,
    VectorSpec,
    VectorValue,
    channel_names,
    register,
    unregister,
)
from mmrag.errors import ConfigError
from mmrag.services import Services, build_services
from mmrag.settings import Settings
from mmrag.store import PointFilter
from mmrag.testing.documents import GeneratedCorpus
from mmrag.types import ElementKind
from tests.eval.test_run import write_dataset


class LetterChannel(Channel):
    """Letter frequencies of the text: a poor retriever, but plainly its own."""

    name = "letters"
    summary = "letter histogram of text chunks (a test channel)"
    kinds = frozenset({ElementKind.TEXT, ElementKind.TABLE})

    @classmethod
    def create(cls, models: Models, settings: Settings) -> Channel | None:
        return cls()

    def vectors(self) -> list[VectorSpec]:
        return [VectorSpec("letters", VectorKind.DENSE, 26)]

    def encode_documents(self, items: Sequence[Indexable]) -> list[Encoded]:
        return [Encoded({"letters": self._histogram(item.text)}) for item in items]

    def encode_query(self, text: str) -> VectorValue | None:
        return self._histogram(text)

    @staticmethod
    def _histogram(text: str) -> list[float]:
        counts = np.array([text.lower().count(c) for c in string.ascii_lowercase], float) + 0.01
        return (counts / np.linalg.norm(counts)).tolist()


@pytest.fixture
def letters() -> Iterator[None]:
    register(LetterChannel)
    yield
    unregister("letters")


@pytest.fixture
def services(letters: None, tmp_path: Path) -> Iterator[Services]:
    settings = Settings(
        data_dir=tmp_path / "data",
        profile="offline",
        retrieval={"channels": {"letters": {"weight": 0.5, "candidates": 7}}},
    )
    built = build_services(settings)
    yield built
    built.close()


def test_a_registered_channel_is_indexed_searched_and_fused(
    services: Services, corpus: GeneratedCorpus
) -> None:
    assert "letters" in channel_names()
    results = services.ingest_here([corpus.good["text"]], tenant="default")
    assert [r.outcome for r in results] == ["indexed"]

    alone = services.retriever.search(
        "Juniper library maps", tenant="default", channels=["letters"]
    )
    assert alone.hits and all(set(hit.channels) == {"letters"} for hit in alone.hits)
    assert len(alone.rankings["letters"]) <= 7  # its own candidate count

    fused = services.retriever.search("Juniper library maps", tenant="default")
    assert "letters" in fused.rankings and services.retriever.weights()["letters"] == 0.5
    assert any("letters" in hit.channels for hit in fused.hits)


def test_the_eval_harness_scores_a_registered_channel(
    services: Services, corpus: GeneratedCorpus, tmp_path: Path
) -> None:
    dataset = load_mmrag_dataset(write_dataset(corpus, tmp_path / "dataset"))
    assert "letters" in configurations(services)
    run = run_eval(dataset, services.settings, services=services)
    assert all("letters" in result.scores for result in run.results)
    assert all("ndcg@5" in result.scores["letters"] for result in run.results)


def test_an_unknown_channel_in_the_settings_is_a_clear_error(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, profile="offline", retrieval={"channels": {"telepathy": {}}}
    )
    with pytest.raises(ConfigError, match="telepathy"):
        build_services(settings).channels  # noqa: B018 - building is the test


def test_the_store_holds_each_channels_vector(services: Services, corpus: GeneratedCorpus) -> None:
    services.ingest_here([corpus.good["text"]], tenant="default")
    names = {spec.name for spec in services.ingestor._points.schema().vectors}
    assert {"text", "sparse", "letters"} <= names
    assert services.store.count(PointFilter(match={"tenant": "default"})) > 0
