"""A LangChain retriever over mmrag: ``MmragRetriever(retriever=services.retriever)``.

Returns LangChain ``Document``s whose ``page_content`` is the hit's text (an image's
caption and OCR text for image hits) and whose metadata carries every hit field.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from mmrag.retrieval import Retriever, SearchFilters
from mmrag.types import Hit


def hit_metadata(hit: Hit) -> dict[str, Any]:
    return {**hit.as_dict(), "caption": hit.caption}


class MmragRetriever(BaseRetriever):
    """Multi-channel mmrag search as a LangChain retriever."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retriever: Retriever
    tenant: str = "default"
    limit: int = 8
    filters: SearchFilters | None = None

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        result = self.retriever.search(
            query, tenant=self.tenant, limit=self.limit, filters=self.filters
        )
        return [
            Document(page_content=hit.text, metadata=hit_metadata(hit), id=hit.point_id)
            for hit in result.hits
        ]
