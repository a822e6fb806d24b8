"""Files to elements: pick the parser by content, open and check the file, stream elements."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mmrag.parsing.base import ParsedFile
from mmrag.parsing.filetypes import SUPPORTED, detect_file_type
from mmrag.settings import ParsingSettings

Parser = Callable[[Path, ParsingSettings], ParsedFile]


def _parsers() -> dict[str, Parser]:
    from mmrag.parsing.images import parse_image_file
    from mmrag.parsing.office import parse_docx, parse_pptx
    from mmrag.parsing.pdf import parse_pdf
    from mmrag.parsing.web import parse_html, parse_markdown, parse_text

    return {
        "pdf": parse_pdf,
        "docx": parse_docx,
        "pptx": parse_pptx,
        "html": parse_html,
        "markdown": parse_markdown,
        "text": parse_text,
        "image": parse_image_file,
    }


def parse_file(path: Path, settings: ParsingSettings) -> ParsedFile:
    """Open ``path`` with the parser its content calls for.

    Raises a `DocumentError` subclass naming the file when it cannot be parsed; a file
    over a ``parsing.*`` limit (pages, package size and parts, text size, line length,
    nesting) raises `LimitExceededError` before the work it would cost, naming the
    setting and the value found.
    """
    detected = detect_file_type(path)
    parsed = _parsers()[detected.file_type](path, settings)
    if detected.warning:
        parsed.warnings.insert(0, detected.warning)
    return parsed


__all__ = ["SUPPORTED", "ParsedFile", "parse_file"]
