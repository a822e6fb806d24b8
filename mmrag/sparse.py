"""Sparse BM25 term weights for the keyword channel.

Documents get saturated term frequencies, queries get 1.0 per term; Qdrant applies
IDF at search time (the sparse vector is configured with Modifier.IDF), so the
corpus statistics stay correct as documents come and go. Tokenising, stemming and
hashing are Qdrant's own (qdrant-edge's Bm25), identical for both store modes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mmrag.types import SparseValue


class SparseEncoder:
    def __init__(self, *, language: str = "english") -> None:
        import qdrant_edge

        self._model: Any = qdrant_edge.Bm25(qdrant_edge.Bm25Config(language=language))

    def embed_documents(self, texts: Sequence[str]) -> list[SparseValue]:
        return [self._unpack(self._model.embed_document(text)) for text in texts]

    def embed_query(self, text: str) -> SparseValue:
        return self._unpack(self._model.embed_query(text))

    @staticmethod
    def _unpack(vector: Any) -> SparseValue:
        return list(vector.indices), list(vector.values)
