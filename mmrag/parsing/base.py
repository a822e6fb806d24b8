"""What every parser returns."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from mmrag.types import Element


@dataclass
class ParsedFile:
    """A file opened and checked; its elements come lazily, page by page.

    Opening validates the file (type, password, page count), so most bad input
    fails before any model work. ``warnings`` grows while ``elements`` is consumed.
    """

    file_type: str
    page_count: int
    elements: Iterator[Element]
    warnings: list[str] = field(default_factory=list)
