"""Sparse BM25 term weights for the keyword channel.

Documents get saturated term frequencies, queries get 1.0 per term; Qdrant applies
IDF at search time (the sparse vector is configured with Modifier.IDF), so the
corpus statistics stay correct as documents come and go. Tokenising, stemming and
hashing are Qdrant's own (qdrant-edge's Bm25), identical for both store modes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mmrag.errors import ConfigError
from mmrag.settings import SparseSettings
from mmrag.types import SparseValue


class SparseEncoder:
    def __init__(self, settings: SparseSettings) -> None:
        import qdrant_edge

        config = qdrant_edge.Bm25Config(
            language=settings.language, k=settings.k1, b=settings.b, avg_len=settings.avg_len
        )
        try:
            self._model: Any = qdrant_edge.Bm25(config)
        except ValueError as exc:
            raise ConfigError(f"sparse.language {settings.language!r}: {exc}") from exc

    def embed_documents(self, texts: Sequence[str]) -> list[SparseValue]:
        return [self._unpack(self._model.embed_document(text)) for text in texts]

    def embed_query(self, text: str) -> SparseValue:
        return self._unpack(self._model.embed_query(text))

    @staticmethod
    def _unpack(vector: Any) -> SparseValue:
        return list(vector.indices), list(vector.values)
