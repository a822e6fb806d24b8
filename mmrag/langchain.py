"""LangChain retrievers over mmrag: in process, or over HTTP from a running service.

    MmragRetriever(retriever=services.retriever, data_dir=services.settings.blob_root)
    MmragHttpRetriever(url="http://127.0.0.1:8000", api_key="k-acme")

Both return ``Document``s whose ``page_content`` is the hit's text (an image's caption
and OCR text for image hits) and whose metadata carries every hit field; the in-process
one gives ``image_path`` as an absolute path, the HTTP one absolute ``image_url`` and
``page_url``. Per call, ``retriever.invoke(query, filters={...}, limit=3)`` narrows or
resizes one search (``filters`` as the API's filters object, or `SearchFilters`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, PrivateAttr

from mmrag.remote import MmragClient
from mmrag.retrieval import Retriever, SearchFilters
from mmrag.types import Hit

Filters = SearchFilters | Mapping[str, Any] | None


def hit_metadata(hit: Hit, data_dir: Path | None = None) -> dict[str, Any]:
    metadata = {**hit.as_dict(), "caption": hit.caption}
    if data_dir is not None and hit.image_path:
        metadata["image_path"] = str(data_dir / hit.image_path)
    return metadata


def library_filters(filters: Filters) -> SearchFilters | None:
    """`SearchFilters` from the API's filters object (or library filters, or None)."""
    if filters is None or isinstance(filters, SearchFilters):
        return filters
    known = {"document_ids", "kinds", "file_types", "page_from", "page_to", "metadata"}
    unknown = set(filters) - known
    if unknown:
        raise ValueError(f"unknown filters {sorted(unknown)}; use {sorted(known)}")
    lists = {key: tuple(filters.get(key, ())) for key in ("document_ids", "kinds", "file_types")}
    return SearchFilters(
        **lists,
        page_from=filters.get("page_from"),
        page_to=filters.get("page_to"),
        metadata=dict(filters.get("metadata", {})),
    ).checked()


class _SearchRetriever(BaseRetriever):
    """What both retrievers share: a default limit, and per-call ``filters`` and
    ``limit`` (``retriever.invoke(query, filters=..., limit=...)``)."""

    limit: int = 8

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        filters: Filters = None,
        limit: int | None = None,
    ) -> list[Document]:
        return self._search(query, filters, limit or self.limit)

    def _search(self, query: str, filters: Filters, limit: int) -> list[Document]:
        raise NotImplementedError


class MmragRetriever(_SearchRetriever):
    """Multi-channel mmrag search, in this process, as a LangChain retriever."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retriever: Retriever
    tenant: str = "default"
    filters: SearchFilters | None = None
    data_dir: Path | None = None  # where stored images are (settings.blob_root)

    def _search(self, query: str, filters: Filters, limit: int) -> list[Document]:
        result = self.retriever.search(
            query,
            tenant=self.tenant,
            limit=limit,
            filters=library_filters(filters) if filters is not None else self.filters,
        )
        return [
            Document(
                page_content=hit.text, metadata=hit_metadata(hit, self.data_dir), id=hit.point_id
            )
            for hit in result.hits
        ]


class MmragHttpRetriever(_SearchRetriever):
    """Multi-channel search of a running mmrag service, over HTTP, as a LangChain
    retriever; nothing is loaded in this process."""

    url: str
    api_key: str | None = None
    filters: dict[str, Any] | None = None
    _client: MmragClient | None = PrivateAttr(default=None)

    def client(self) -> MmragClient:
        if self._client is None:
            self._client = MmragClient(self.url, api_key=self.api_key)
        return self._client

    def _search(self, query: str, filters: Filters, limit: int) -> list[Document]:
        chosen = filters if filters is not None else self.filters
        hits = self.client().search(query, limit=limit, filters=chosen)
        return [
            Document(
                page_content=hit["text"],
                metadata={key: value for key, value in hit.items() if key != "text"},
                id=hit["id"],
            )
            for hit in hits
        ]
