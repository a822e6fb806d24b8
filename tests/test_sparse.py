"""The sparse channel's BM25 follows its settings (`sparse.*`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.runner import index_fingerprint
from mmrag.errors import ConfigError
from mmrag.services import build_services
from mmrag.settings import Settings, SparseSettings
from mmrag.sparse import SparseEncoder

# Five words that are neither stop words nor stems of each other.
FIVE = "harbour lantern quartz violin meadow"


def weights(encoder: SparseEncoder, text: str) -> list[float]:
    [(_, values)] = encoder.embed_documents([text])
    return values


def test_an_element_of_average_length_weighs_one_per_term() -> None:
    # BM25's saturated tf is tf (k1 + 1) / (tf + k1 (1 - b + b len / avg_len)): exactly 1
    # for a term seen once in an element of the average length, whatever k1 and b.
    for k1, b in ((1.2, 0.75), (2.0, 0.3)):
        encoder = SparseEncoder(SparseSettings(avg_len=5, k1=k1, b=b))
        assert weights(encoder, FIVE) == pytest.approx([1.0] * 5)
    assert weights(SparseEncoder(SparseSettings(avg_len=50)), FIVE) != pytest.approx([1.0] * 5)


def test_length_normalisation_follows_b() -> None:
    longer = f"{FIVE} {' '.join(f'filler{i}' for i in range(40))}"
    normalised = SparseEncoder(SparseSettings(avg_len=10, b=0.75))
    assert max(weights(normalised, longer)) < min(weights(normalised, FIVE))
    flat = SparseEncoder(SparseSettings(avg_len=10, b=0.0))
    assert weights(flat, longer)[0] == pytest.approx(weights(flat, FIVE)[0])


def test_the_services_encoder_uses_the_settings(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, profile="offline", sparse={"avg_len": 5})
    assert weights(build_services(settings).sparse, FIVE) == pytest.approx([1.0] * 5)


def test_an_unknown_language_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="sparse.language 'klingon'"):
        SparseEncoder(SparseSettings(language="klingon"))


def test_the_eval_index_depends_on_the_sparse_settings() -> None:
    base = Settings(profile="offline")
    spelled_out = Settings(profile="offline", sparse=SparseSettings().model_dump())
    assert index_fingerprint(spelled_out) == index_fingerprint(base)
    for changed in ({"avg_len": 64}, {"k1": 1.5}, {"b": 0.5}, {"language": "german"}):
        assert index_fingerprint(Settings(profile="offline", sparse=changed)) != (
            index_fingerprint(base)
        )
