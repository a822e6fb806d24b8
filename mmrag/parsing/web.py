"""HTML, Markdown and plain text: text through unstructured, images from ``<img>`` tags.

unstructured drops data-URI images and keeps no pixels, so images are read from the
markup: data URIs are decoded; relative paths are read from beside the document
(never outside its folder); remote URLs are not fetched.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Sequence
from pathlib import Path

from mmrag.parsing.base import ParsedFile
from mmrag.parsing.images import embedded_image
from mmrag.parsing.unstructured_adapter import partition, to_text_elements
from mmrag.settings import ParsingSettings
from mmrag.types import Element, ElementKind, ImageElement


def parse_html(path: Path, settings: ParsingSettings) -> ParsedFile:
    from unstructured.partition.html import partition_html

    texts = list(to_text_elements(partition(partition_html, path, "html")))
    markup = path.read_text(encoding="utf-8", errors="replace")
    return _with_images("html", path, markup, texts, settings)


def parse_markdown(path: Path, settings: ParsingSettings) -> ParsedFile:
    import markdown
    from unstructured.partition.md import partition_md

    texts = list(to_text_elements(partition(partition_md, path, "markdown")))
    source = path.read_text(encoding="utf-8", errors="replace")
    return _with_images(
        "markdown", path, markdown.markdown(source, extensions=["tables"]), texts, settings
    )


def parse_text(path: Path, settings: ParsingSettings) -> ParsedFile:
    from unstructured.partition.text import partition_text

    texts = list(to_text_elements(partition(partition_text, path, "text")))
    return ParsedFile(file_type="text", page_count=1, elements=iter(texts))


def _with_images(
    file_type: str,
    path: Path,
    markup: str,
    texts: Sequence[Element],
    settings: ParsingSettings,
) -> ParsedFile:
    parsed = ParsedFile(file_type=file_type, page_count=1, elements=iter(()))

    def elements() -> Iterator[Element]:
        yield from texts
        yield from _markup_images(path, markup, settings, parsed.warnings)

    parsed.elements = elements()
    return parsed


def _markup_images(
    path: Path, markup: str, settings: ParsingSettings, warnings: list[str]
) -> Iterator[Element]:
    from bs4 import BeautifulSoup

    for number, tag in enumerate(BeautifulSoup(markup, "html.parser").find_all("img"), start=1):
        source = str(tag.get("src") or "")
        blob = _image_bytes(path, source, warnings, number)
        if blob is None:
            continue
        image = embedded_image(
            blob, document=path, where=f"image {number}", settings=settings, warnings=warnings
        )
        if image is not None:
            alt = " ".join(str(tag.get(name) or "") for name in ("alt", "title")).strip()
            yield ImageElement(image=image, page=1, kind=ElementKind.IMAGE, alt_text=alt)


def _image_bytes(path: Path, source: str, warnings: list[str], number: int) -> bytes | None:
    if source.startswith("data:"):
        header, _, data = source.partition(",")
        try:
            return base64.b64decode(data) if ";base64" in header else data.encode()
        except (binascii.Error, ValueError):
            warnings.append(f"image {number}: malformed data URI; skipped")
            return None
    if not source or "://" in source or source.startswith("//"):
        return None  # remote images are not fetched
    folder = path.parent.resolve()
    target = (folder / source.split("?")[0].split("#")[0]).resolve()
    if not target.is_relative_to(folder) or not target.is_file():
        warnings.append(f"image {number}: {source!r} not found beside the document; skipped")
        return None
    return target.read_bytes()
