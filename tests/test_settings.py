"""Settings sources and precedence; run profiles."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmrag.errors import ConfigError
from mmrag.profiles import resolve_profile, shipped_minilm_path
from mmrag.settings import DEFAULT_TEXT_MODEL, Settings, load_settings


def test_precedence_overrides_env_file_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "mmrag.toml"
    config.write_text(
        'data_dir = "/from/file"\n[parsing]\nchunk_size = 700\nchunk_overlap = 50\n'
        '[captioner]\nbackend = "ocr"\n'
    )
    monkeypatch.setenv("MMRAG_PARSING__CHUNK_SIZE", "900")

    settings = load_settings(config, data_dir=tmp_path / "explicit")

    assert settings.data_dir == tmp_path / "explicit"  # keyword beats file
    assert settings.parsing.chunk_size == 900  # env beats file
    assert settings.parsing.chunk_overlap == 50  # file beats default
    assert settings.captioner.backend == "ocr"
    assert settings.text_embedder.model == DEFAULT_TEXT_MODEL  # default


def test_invalid_values_are_config_errors(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[parsing]\nchunk_size = 500\nchunk_overlap = 600\n")
    with pytest.raises(ConfigError, match="chunk_overlap"):
        load_settings(config)
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="unknown_section"):
        load_settings(None, unknown_section=1)


def test_offline_profile_swaps_hub_models_for_local_ones(tmp_path: Path) -> None:
    profile = resolve_profile(Settings(data_dir=tmp_path, profile="offline"))

    assert profile.name == "offline"
    assert profile.settings.text_embedder.model == shipped_minilm_path()
    assert profile.settings.image_embedder.backend == "none"
    assert profile.settings.captioner.backend == "ocr"
    assert any("offline profile" in note for note in profile.notes)


def test_auto_profile_detects_the_unreachable_hub(tmp_path: Path) -> None:
    # conftest sets HF_HUB_OFFLINE=1: the hub counts as unreachable.
    assert resolve_profile(Settings(data_dir=tmp_path)).name == "offline"


def test_offline_profile_keeps_local_models(tmp_path: Path, tiny_models: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        profile="offline",
        image_embedder={"model": str(tiny_models / "siglip")},
        captioner={"model": str(tiny_models / "smolvlm")},
    )

    profile = resolve_profile(settings)

    assert profile.settings.image_embedder.backend == "siglip"
    assert profile.settings.captioner.backend == "transformers"


def test_default_profile_changes_nothing(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, profile="default")
    assert resolve_profile(settings).settings == settings


def test_default_profile_without_the_hub_fails_at_once_naming_the_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr("mmrag.profiles.hub_reachable", lambda timeout_s=2.0: False)
    with pytest.raises(ConfigError) as caught:
        resolve_profile(Settings(data_dir=tmp_path, profile="default"))
    message = str(caught.value)
    assert "cannot be reached" in message and "--profile offline" in message
    assert "text embedder sentence-transformers/all-MiniLM-L6-v2" in message


def test_default_profile_without_the_hub_runs_on_local_models_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_models: Path
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr("mmrag.profiles.hub_reachable", lambda timeout_s=2.0: False)
    smolvlm = str(tiny_models / "smolvlm")
    settings = Settings(
        data_dir=tmp_path,
        profile="default",
        text_embedder={"model": shipped_minilm_path()},
        image_embedder={"model": str(tiny_models / "siglip")},
        page_embedder={"backend": "none"},
        reranker={"backend": "none"},
        captioner={"model": smolvlm},
        answerer={"model": smolvlm},
    )
    profile = resolve_profile(settings)
    assert profile.name == "default" and profile.settings == settings
    assert "from the cache" in profile.notes[0]
    import os

    assert os.environ["HF_HUB_OFFLINE"] == "1"  # the libraries will not retry the hub
