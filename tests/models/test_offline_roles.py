"""The offline profile turns the page embedder and the reranker off unless their model
is local or cached, as it does the image embedder."""

from __future__ import annotations

from pathlib import Path

from mmrag.profiles import resolve_profile
from mmrag.settings import Settings


def test_offline_profile_turns_uncached_page_embedder_and_reranker_off(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, profile="offline", reranker={"backend": "cross-encoder"})

    profile = resolve_profile(settings)

    assert profile.settings.page_embedder.backend == "none"
    assert profile.settings.reranker.backend == "none"
    assert any(note.startswith("page embedder:") for note in profile.notes)
    assert any(note.startswith("reranker:") for note in profile.notes)


def test_offline_profile_keeps_local_page_embedder_and_reranker(
    tmp_path: Path, tiny_models: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        profile="offline",
        page_embedder={"model": str(tiny_models / "colmodernvbert")},
        reranker={"backend": "cross-encoder", "model": str(tiny_models / "cross-encoder")},
    )

    profile = resolve_profile(settings)

    assert profile.settings.page_embedder == settings.page_embedder
    assert profile.settings.reranker == settings.reranker
    assert not any(note.startswith(("page embedder:", "reranker:")) for note in profile.notes)


def test_offline_profile_leaves_a_disabled_reranker_silent(tmp_path: Path) -> None:
    profile = resolve_profile(Settings(data_dir=tmp_path, profile="offline"))  # reranker: none

    assert not any(note.startswith("reranker:") for note in profile.notes)
