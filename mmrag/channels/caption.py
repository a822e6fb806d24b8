"""``caption``: the dense text embedder over what is said about images and pages."""

from __future__ import annotations

from mmrag.channels.registry import register
from mmrag.channels.text import DenseTextChannel
from mmrag.types import ElementKind


@register
class CaptionChannel(DenseTextChannel):
    name = "caption"
    summary = "dense text embedding against images' and page renders' captions, alt and OCR text"
    kinds = frozenset({ElementKind.IMAGE, ElementKind.PAGE})
