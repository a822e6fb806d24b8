"""Running `unstructured` partitioners offline and turning their elements into ours."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from mmrag.errors import CorruptFileError
from mmrag.types import ElementKind, TextElement

logger = logging.getLogger(__name__)

SKIPPED_CATEGORIES = {"PageBreak", "Image", "Header", "Footer", "PageNumber"}


@cache
def prepare_unstructured() -> None:
    """Make unstructured's text heuristics run without downloading a spaCy model.

    unstructured classifies paragraphs with spaCy's ``en_core_web_sm``, which it
    downloads from GitHub on first use; that fails offline and air-gapped. When the
    model is not installed we give unstructured a blank English pipeline with a rule
    sentencizer: sentence splitting works, POS-based title/narrative guesses are
    coarser. Installing ``en_core_web_sm`` restores them; nothing else changes.
    """
    # unstructured logs an advertisement on every partition unless told not to.
    os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")
    import spacy
    from unstructured.nlp import tokenize

    if spacy.util.is_package("en_core_web_sm"):
        return
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    tokenize._get_nlp = lambda: nlp  # type: ignore[assignment]  # looked up on every call
    logger.info(
        "spaCy en_core_web_sm not installed: unstructured runs with a blank English "
        "pipeline (install en_core_web_sm for finer element types)"
    )


def table_text(html: str) -> str:
    """A table as text a text embedder can read: one line per row, cells split by ' | '."""
    from bs4 import BeautifulSoup

    rows = []
    for row in BeautifulSoup(html, "html.parser").find_all("tr"):
        cells = [" ".join(cell.get_text(" ").split()) for cell in row.find_all(["td", "th"])]
        if any(cells):
            rows.append(" | ".join(cells))
    return "\n".join(rows)


def to_text_elements(elements: Sequence[Any]) -> Iterator[TextElement]:
    """unstructured elements (any partitioner) as our text elements, page numbers kept."""
    for element in elements:
        category = element.category
        text = (element.text or "").strip()
        if category in SKIPPED_CATEGORIES or not text:
            continue
        page = element.metadata.page_number or 1
        if category == "Table":
            html = element.metadata.text_as_html
            yield TextElement(
                text=table_text(html) if html else text,
                page=page,
                category=category,
                kind=ElementKind.TABLE,
            )
        else:
            yield TextElement(text=text, page=page, category=category)


def partition(
    partitioner: Callable[..., list[Any]],
    path: Path,
    file_type: str,
    errors: tuple[type[BaseException], ...] = (),
    **options: Any,
) -> list[Any]:
    """Run one unstructured partitioner, translating its failures into ours."""
    import zipfile

    prepare_unstructured()
    translated: tuple[type[BaseException], ...] = (
        zipfile.BadZipFile,
        KeyError,
        ValueError,
        OSError,
        UnicodeDecodeError,
        *errors,
    )
    try:
        return partitioner(filename=str(path), **options)
    except translated as exc:
        raise CorruptFileError(
            path, f"cannot parse as {file_type.upper()} ({type(exc).__name__}: {exc})"
        ) from exc
