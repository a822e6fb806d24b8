"""Running `unstructured` partitioners offline and turning their elements into ours."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import IO, Any

from mmrag.errors import CorruptFileError
from mmrag.types import ElementKind, TextElement

logger = logging.getLogger(__name__)

SKIPPED_CATEGORIES = {"PageBreak", "Image", "Header", "Footer", "PageNumber"}


# spaCy's tokenizer strips punctuation off a run without spaces one character at a time,
# each time searching the whole rest for a suffix and copying it: quadratic (200 KB of
# "[" took hours; 629 runs of 1 to 629 backticks, 8 s). Its tokens feed only
# unstructured's element-type guesses, so the suffix search looks at the run's tail (a
# suffix is a few characters; spaCy uses only the match's length) and longer runs are
# cut before spaCy sees them.
MAX_RUN_CHARS = 1000
SUFFIX_WINDOW = 16
_LONG_RUN = re.compile(rf"(?<!\S)\S{{{MAX_RUN_CHARS + 1},}}")  # only from a run's start: linear


class _BoundedRuns:
    """A spaCy pipeline that never sees a run of more than MAX_RUN_CHARS non-spaces
    (unstructured uses ``max_length`` and calls it, nothing else)."""

    def __init__(self, nlp: Any) -> None:
        self.nlp = nlp
        self.max_length = nlp.max_length

    def __call__(self, text: str) -> Any:
        return self.nlp(_LONG_RUN.sub(_cut_run, text))


def _cut_run(match: re.Match[str]) -> str:
    run = match.group()
    return " ".join(run[i : i + MAX_RUN_CHARS] for i in range(0, len(run), MAX_RUN_CHARS))


@cache
def prepare_unstructured() -> None:
    """Make unstructured's text heuristics run offline, and in linear time.

    unstructured classifies paragraphs with spaCy's ``en_core_web_sm``, which it
    downloads from GitHub on first use; that fails offline and air-gapped. When the
    model is not installed we give unstructured a blank English pipeline with a rule
    sentencizer: sentence splitting works, POS-based title/narrative guesses are
    coarser. Installing ``en_core_web_sm`` restores them; nothing else changes. Either
    pipeline sees text with long runs without spaces cut (see `MAX_RUN_CHARS`).
    """
    # unstructured logs an advertisement on every partition unless told not to.
    os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")
    import spacy
    from unstructured.nlp import tokenize

    if spacy.util.is_package("en_core_web_sm"):
        nlp: Any = tokenize._get_nlp()  # unstructured's own loader
    else:
        nlp = spacy.blank("en")
        nlp.add_pipe("sentencizer")
        logger.info(
            "spaCy en_core_web_sm not installed: unstructured runs with a blank English "
            "pipeline (install en_core_web_sm for finer element types)"
        )
    search = nlp.tokenizer.suffix_search
    if search is not None:
        nlp.tokenizer.suffix_search = lambda text: search(text[-SUFFIX_WINDOW:])
    bounded = _BoundedRuns(nlp)
    tokenize._get_nlp = lambda: bounded  # type: ignore[assignment]  # looked up on every call


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
    *,
    text: str | None = None,
    file: IO[bytes] | None = None,
    **options: Any,
) -> list[Any]:
    """Run one unstructured partitioner on the file at ``path`` (or on ``text`` read
    from it, or on ``file``, a version of it made in memory), translating its failures
    into ours.

    Language detection is off: we keep no language metadata, and unstructured detects
    per element (langdetect, 20-30 ms each) whenever a document reads as several
    languages, which made 1 MB of short HTML paragraphs take ten minutes.
    """
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
    options.setdefault("languages", [""])
    try:
        if text is not None:
            return partitioner(text=text, **options)
        if file is not None:
            return partitioner(file=file, **options)
        # A file object, not a name: unstructured encodes the name into its metadata,
        # and a name that is not UTF-8 failed there.
        with path.open("rb") as handle:
            return partitioner(file=handle, **options)
    except translated as exc:
        raise CorruptFileError(
            path, f"cannot parse as {file_type.upper()} ({type(exc).__name__}: {exc})"
        ) from exc


def read_text(path: Path, file_type: str) -> str:
    """The file's text, decoded as unstructured's partitioners decode it (a BOM, UTF-8,
    or a detected encoding)."""
    from unstructured.file_utils.encoding import read_txt_file

    try:
        return read_txt_file(filename=str(path))[1]
    except (OSError, UnicodeError, LookupError) as exc:
        raise CorruptFileError(
            path, f"cannot parse as {file_type.upper()} ({type(exc).__name__}: {exc})"
        ) from exc
