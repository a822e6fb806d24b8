"""``pageref``: the question names pages ("the cartoon on page 25", "pages 3 and 5",
"p. 12"), so the dense text embedding is searched on those pages only.

Printed page numbers and a file's page index often differ by one (a cover, a title
page), so each named page brings its neighbours. A question that names no page leaves
the channel out of the search. The channel reads the dense text vector the ``text`` and
``caption`` channels write: it adds nothing to the index.
"""

from __future__ import annotations

import re
from typing import Any

from mmrag.channels.base import Channel, Models, narrow
from mmrag.channels.registry import register
from mmrag.channels.text import DenseTextChannel
from mmrag.settings import Settings
from mmrag.store.base import ChannelQuery, PointFilter
from mmrag.types import ElementKind

# "page 25", "pages 3 and 5", "pages 4-6", "p. 12", "pp. 3, 7"
_REFERENCE = re.compile(
    r"\b(?:pages?|pp?\.)\s*(\d{1,5}(?:\s*(?:,|and|&|-|–|to)\s*\d{1,5})*)", re.IGNORECASE
)
_NUMBER = re.compile(r"\d{1,5}")
_RANGE = re.compile(r"(\d{1,5})\s*(?:-|–|to)\s*(\d{1,5})")
MAX_PAGES = 20  # named pages a question may bring (a range is cut there)
NEIGHBOURS = 1  # pages each side of a named page that count as it


def referenced_pages(text: str) -> list[int]:
    """The page numbers a question names, with their neighbours, in order."""
    named: list[int] = []
    for match in _REFERENCE.finditer(text):
        span = match.group(1)
        for low, high in _RANGE.findall(span):
            first, last = int(low), int(high)
            if first <= last:
                named.extend(range(first, min(last, first + MAX_PAGES) + 1))
        named.extend(int(number) for number in _NUMBER.findall(_RANGE.sub("", span)))
    pages = {
        page + offset for page in named[:MAX_PAGES] for offset in range(-NEIGHBOURS, NEIGHBOURS + 1)
    }
    return sorted(page for page in pages if page >= 1)


@register
class PageReferenceChannel(DenseTextChannel):
    name = "pageref"
    summary = "dense text embedding on the pages the question names (page 25, pp. 3-5)"
    kinds = frozenset(ElementKind)

    @classmethod
    def create(cls, models: Models, settings: Settings) -> Channel | None:
        return cls(models.text_embedder)

    @property
    def query_key(self) -> str:
        return self.name  # its query carries page numbers: not shared with ``text``

    def encode_query(self, text: str) -> Any:
        pages = referenced_pages(text)
        return (pages, super().encode_query(text)) if pages else None

    def request(
        self,
        vector: Any,
        where: PointFilter,
        limit: int,
        score_threshold: float | None = None,
    ) -> ChannelQuery:
        pages, dense = vector
        where = narrow(where, self.kinds)
        on_pages = PointFilter(
            match={**where.match, "page": pages}, exclude=where.exclude, ranges=where.ranges
        )
        return ChannelQuery(self.vector, dense, limit, on_pages, score_threshold)
