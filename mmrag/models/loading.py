"""Turning any failure to load a model into a `ModelLoadError` that says what to do."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mmrag.errors import ModelLoadError


def hub_offline() -> bool:
    """True when the Hugging Face hub must not be contacted (HF_HUB_OFFLINE set)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def is_local_model(model: str) -> bool:
    """A model given as a directory (or a ``local-dir:`` open_clip name)."""
    return model.startswith("local-dir:") or Path(model).expanduser().is_dir()


def local_model_dir(model: str) -> Path | None:
    """The folder holding a model: the directory given, or the hub id's snapshot in the
    local cache; None where it is not on this machine (never contacts the hub)."""
    folder = Path(model).expanduser()
    if folder.is_dir():
        return folder.resolve()
    if model.startswith("local-dir:") or model.count("/") != 1:
        return None
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model, local_files_only=True))
    except Exception:  # not cached, or not a hub id
        return None


def explain_load_failure(exc: BaseException, model: str) -> str:
    """The reason a model did not load, in words a user can act on."""
    text = f"{type(exc).__name__}: {exc}"
    lowered = text.lower()
    if "out of memory" in lowered or type(exc).__name__ == "OutOfMemoryError":
        return "out of memory while loading"
    if not is_local_model(model) and (
        hub_offline()
        or "offline" in lowered
        or "couldn't connect" in lowered
        or "connection" in lowered
        or "localentrynotfound" in lowered
        or "name or service not known" in lowered
    ):
        return (
            "the Hugging Face hub is unreachable (offline) and the model is not in the local cache"
        )
    if (
        isinstance(exc, FileNotFoundError)
        or "no such file" in lowered
        or "does not appear to have" in lowered
    ):
        return f"a model file is missing ({exc})"
    if "is not a local folder and is not a valid model identifier" in lowered:
        return "no such local directory and no such model on the hub"
    return text.splitlines()[0][:300]


@contextmanager
def loading(role: str, model: str, setting: str) -> Iterator[None]:
    """Wrap model loading: any exception becomes a ModelLoadError naming model, reason, fix."""
    try:
        yield
    except ModelLoadError:
        raise
    except Exception as exc:
        reason = explain_load_failure(exc, model)
        fix = (
            f"set {setting} to a local model directory, a model in the local cache, or another "
            f"backend (run `mmrag models` to check); with hub access the model downloads once"
        )
        raise ModelLoadError(role=role, model=model, reason=reason, fix=fix) from exc
