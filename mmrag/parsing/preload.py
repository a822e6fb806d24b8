"""Imported by the parser fork server only (see `mmrag.parsing.sandbox`).

Importing it loads every parser and warms what they build lazily on first use
(unstructured's language profiles and tokenizer: about a second), so each child
forked for a file starts warm instead of paying that per file.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from mmrag.errors import MmragError
from mmrag.parsing import parse_file
from mmrag.settings import ParsingSettings

_SAMPLES = {
    "warm.txt": "A short paragraph of plain text, in English, to warm the parsers.\n",
    "warm.html": "<html><body><h1>Title</h1><p>A paragraph of text in English.</p></body></html>",
    "warm.md": "# Title\n\nA paragraph of text in English.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n",
}


def _warm_up() -> None:
    settings = ParsingSettings(ocr=False, isolate=False)
    with tempfile.TemporaryDirectory(prefix="mmrag-warm-") as folder:
        for name, text in _SAMPLES.items():
            path = Path(folder) / name
            path.write_text(text, encoding="utf-8")
            try:
                list(parse_file(path, settings).elements)
            except MmragError as exc:  # a cold start is slower, never wrong
                logging.getLogger(__name__).debug("warm-up of %s failed: %s", name, exc)


_warm_up()
