"""Backends by name, one registry per role.

Built-in backends register exactly as add-ons do::

    @captioners.register("my-vlm")
    def build(settings: CaptionerSettings) -> Captioner: ...

Factories import their heavy libraries inside, so ``import mmrag`` stays fast.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from mmrag.errors import ConfigError
from mmrag.models.base import (
    Answerer,
    Captioner,
    ImageEmbedder,
    PageEmbedder,
    Reranker,
    TextEmbedder,
)

R = TypeVar("R")

# Modules whose import registers the built-in backends.
_BUILTIN_MODULES = (
    "mmrag.models.text",
    "mmrag.models.image",
    "mmrag.models.captioners",
    "mmrag.models.answerers",
    "mmrag.models.pages",
    "mmrag.models.rerankers",
)


class Registry(Generic[R]):
    """Named factories for one model role."""

    def __init__(self, role: str, setting: str) -> None:
        self.role = role
        self.setting = setting  # the setting that picks the backend, for error messages
        self._factories: dict[str, Callable[[Any], R | None]] = {}

    def register(
        self, name: str
    ) -> Callable[[Callable[[Any], R | None]], Callable[[Any], R | None]]:
        def decorate(factory: Callable[[Any], R | None]) -> Callable[[Any], R | None]:
            self._factories[name] = factory
            return factory

        return decorate

    def names(self) -> list[str]:
        _load_builtins()
        return sorted(self._factories)

    def create(self, name: str, settings: Any) -> R | None:
        """Build the backend called ``name``; a factory may return None for "disabled"."""
        _load_builtins()
        try:
            factory = self._factories[name]
        except KeyError:
            valid = ", ".join(self.names())
            raise ConfigError(
                f"unknown {self.role} backend {name!r} in {self.setting}; valid: {valid}"
            ) from None
        return factory(settings)


_builtins_loaded = False


def _load_builtins() -> None:
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        for module in _BUILTIN_MODULES:
            importlib.import_module(module)


text_embedders: Registry[TextEmbedder] = Registry("text embedder", "text_embedder.backend")
image_embedders: Registry[ImageEmbedder] = Registry("image embedder", "image_embedder.backend")
captioners: Registry[Captioner] = Registry("captioner", "captioner.backend")
answerers: Registry[Answerer] = Registry("answerer", "answerer.backend")
page_embedders: Registry[PageEmbedder] = Registry("page embedder", "page_embedder.backend")
rerankers: Registry[Reranker] = Registry("reranker", "reranker.backend")
