"""HTML, Markdown and plain text: text through unstructured, images from ``<img>`` tags.

unstructured drops data-URI images and keeps no pixels, so images are read from the
markup: data URIs are decoded; relative paths are read from beside the document
(never outside its folder, links resolved first); remote URLs are not fetched. An
image source that comes again is not decoded again.

Limits before work: the file's size (parsing.max_text_mb) before it is read; the
longest line of text and Markdown (parsing.max_line_chars); the nesting of HTML
elements and Markdown blocks (parsing.max_depth), found in the same linear pass that
collects the images, before unstructured's parse. Markdown is parsed once, by
markdown-it (CommonMark, linear where Python-Markdown was quadratic on brackets), into
the HTML that unstructured then partitions.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmrag.errors import LimitExceededError
from mmrag.parsing.base import ParsedFile
from mmrag.parsing.images import embedded_image
from mmrag.parsing.unstructured_adapter import partition, read_text, to_text_elements
from mmrag.settings import ParsingSettings
from mmrag.types import Element, ElementKind, ImageElement

MIB = 1024 * 1024
LINE_BREAK = re.compile(r"\r\n?|\n")
# markdown-it's CommonMark default for inline nesting (links in links, emphasis): its
# cost on a run of brackets grows with this bound, so blocks get parsing.max_depth and
# inline markup keeps 20.
INLINE_NESTING = 20


@dataclass(frozen=True)
class ImageTag:
    """An ``<img>`` found in the markup: the ``number``-th, the first with its source."""

    number: int
    source: str
    alt_text: str


def parse_html(path: Path, settings: ParsingSettings) -> ParsedFile:
    from unstructured.partition.html import partition_html

    markup = _read_limited(path, "html", settings)
    images = scan_markup(path, markup, "the HTML", settings)
    texts = list(to_text_elements(partition(partition_html, path, "html", text=markup)))
    return _with_images("html", path, images, texts, settings)


def parse_markdown(path: Path, settings: ParsingSettings) -> ParsedFile:
    from unstructured.partition.html import partition_html

    source = _read_limited(path, "markdown", settings)
    check_lines(path, source, settings)
    markup = markdown_html(path, source, settings)
    images = scan_markup(path, markup, "the Markdown's HTML", settings)
    texts = list(to_text_elements(partition(partition_html, path, "markdown", text=markup)))
    return _with_images("markdown", path, images, texts, settings)


def parse_text(path: Path, settings: ParsingSettings) -> ParsedFile:
    from unstructured.partition.text import partition_text

    text = _read_limited(path, "text", settings)
    check_lines(path, text, settings)
    texts = list(to_text_elements(partition(partition_text, path, "text", text=text)))
    return ParsedFile(file_type="text", page_count=1, elements=iter(texts))


def _read_limited(path: Path, file_type: str, settings: ParsingSettings) -> str:
    """The file's text, refused before reading when it is over parsing.max_text_mb."""
    size = path.stat().st_size
    if size > settings.max_text_mb * MIB:
        raise LimitExceededError(
            path,
            f"the file is {size / MIB:,.1f} MB, over parsing.max_text_mb "
            f"({settings.max_text_mb:,g})",
        )
    return read_text(path, file_type)


def check_lines(path: Path, text: str, settings: ParsingSettings) -> None:
    """Refuse text with a line over parsing.max_line_chars (one pass, no copies).

    Refused, not wrapped: a line of a million characters is data, not prose, and
    cutting Markdown lines would change what they mean (tables, links, code).
    """
    limit = settings.max_line_chars
    if len(text) <= limit:
        return
    longest = start = 0
    for match in LINE_BREAK.finditer(text):
        longest = max(longest, match.start() - start)
        start = match.end()
    longest = max(longest, len(text) - start)
    if longest > limit:
        raise LimitExceededError(
            path,
            f"a line has {longest:,} characters, over parsing.max_line_chars ({limit:,})",
        )


def markdown_html(path: Path, source: str, settings: ParsingSettings) -> str:
    """Markdown as HTML, once, by markdown-it (CommonMark and pipe tables); refused when
    its blocks nest deeper than parsing.max_depth."""
    from markdown_it import MarkdownIt

    # Blocks may nest one past the limit, so going past it shows in the tokens (deeper
    # than maxNesting, markdown-it silently drops the rest).
    markdown = MarkdownIt("commonmark", {"maxNesting": settings.max_depth + 1}).enable("table")
    markdown.core.ruler.before("inline", "inline_nesting", _limit_inline_nesting)
    environment: dict[str, Any] = {}
    try:
        tokens = markdown.parse(source, environment)
    except RecursionError as exc:  # parsing.max_depth set higher than Python can recurse
        raise LimitExceededError(
            path,
            f"the Markdown nests blocks too deep to parse, under parsing.max_depth "
            f"({settings.max_depth:,})",
        ) from exc
    depth = max((token.level + 1 for token in tokens if token.nesting == 1), default=0)
    if depth > settings.max_depth:
        raise LimitExceededError(
            path,
            f"the Markdown nests blocks {depth:,} deep, over parsing.max_depth "
            f"({settings.max_depth:,})",
        )
    return str(markdown.renderer.render(tokens, markdown.options, environment))


def _limit_inline_nesting(state: Any) -> None:
    """A markdown-it core rule run between the block and the inline stage."""
    state.md.options["maxNesting"] = INLINE_NESTING


class _MarkupScanner:
    """lxml parser target: how deep elements nest, and the ``<img>`` tags in order; an
    image source that comes again adds nothing and is not decoded again."""

    def __init__(self) -> None:
        self.depth = 0
        self.deepest = 0
        self.images: list[ImageTag] = []
        self._tags = 0
        self._sources: set[str] = set()

    def start(self, tag: str, attributes: dict[str, str]) -> None:
        self.depth += 1
        self.deepest = max(self.deepest, self.depth)
        if tag == "img":
            self._tags += 1
            source = attributes.get("src") or ""
            if source not in self._sources:
                self._sources.add(source)
                alt = " ".join(attributes.get(name) or "" for name in ("alt", "title")).strip()
                self.images.append(ImageTag(self._tags, source, alt))

    def end(self, tag: str) -> None:
        self.depth -= 1

    def close(self) -> None:
        return None


def scan_markup(path: Path, markup: str, what: str, settings: ParsingSettings) -> list[ImageTag]:
    """The ``<img>`` tags of ``markup`` (one per source); refused when its elements nest
    deeper than parsing.max_depth.

    libxml2 reads the markup as unstructured will (the same HTML parser, so the same
    implied and closed elements) but builds no tree: one pass, nothing kept but the
    images. Unstructured's own parse stops at a depth of 256 and drops the rest.
    """
    from lxml import etree

    scanner = _MarkupScanner()
    # huge_tree: no cap on depth (counted here) nor on an attribute (a big data URI).
    parser = etree.HTMLParser(target=scanner, huge_tree=True, encoding="utf-8")
    parser.feed(markup.encode("utf-8", errors="replace"))
    parser.close()
    if scanner.deepest > settings.max_depth:
        raise LimitExceededError(
            path,
            f"{what} nests elements {scanner.deepest:,} deep, over parsing.max_depth "
            f"({settings.max_depth:,})",
        )
    return scanner.images


def _with_images(
    file_type: str,
    path: Path,
    images: list[ImageTag],
    texts: Sequence[Element],
    settings: ParsingSettings,
) -> ParsedFile:
    parsed = ParsedFile(file_type=file_type, page_count=1, elements=iter(()))

    def elements() -> Iterator[Element]:
        yield from texts
        yield from _markup_images(path, images, settings, parsed.warnings)

    parsed.elements = elements()
    return parsed


def _markup_images(
    path: Path, images: list[ImageTag], settings: ParsingSettings, warnings: list[str]
) -> Iterator[Element]:
    for tag in images:
        source = _image_source(path, tag.source, warnings, tag.number)
        if source is None:
            continue
        image = embedded_image(
            source,
            document=path,
            where=f"image {tag.number}",
            settings=settings,
            warnings=warnings,
        )
        if image is not None:
            yield ImageElement(image=image, page=1, kind=ElementKind.IMAGE, alt_text=tag.alt_text)


def _image_source(path: Path, source: str, warnings: list[str], number: int) -> bytes | Path | None:
    """A data URI's bytes, or a local file beside the document (opened lazily, so only
    its header is read before its size is checked); None for anything else."""
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
    target = (folder / source.split("?")[0].split("#")[0]).resolve()  # links followed here
    if not target.is_relative_to(folder) or not target.is_file():
        warnings.append(f"image {number}: {source!r} not found beside the document; skipped")
        return None
    return target
