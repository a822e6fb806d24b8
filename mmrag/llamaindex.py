"""A LlamaIndex retriever over a running mmrag service (``pip install llama-index-core``):

    retriever = MmragLlamaIndexRetriever(url="http://127.0.0.1:8000", api_key="k-acme")
    engine = RetrieverQueryEngine.from_args(retriever, llm=...)

Nodes carry the hit's text; their metadata every hit field, with absolute ``image_url``
and ``page_url`` to show the evidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from mmrag.remote import MmragClient
from mmrag.retrieval import SearchFilters

SHOWN = ("source", "page", "kind")  # the metadata a prompt shows with the text


class MmragLlamaIndexRetriever(BaseRetriever):
    """Multi-channel mmrag search (over HTTP) as a LlamaIndex retriever."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        limit: int = 8,
        filters: SearchFilters | Mapping[str, Any] | None = None,
        client: MmragClient | None = None,
    ) -> None:
        super().__init__()
        self._client = client or MmragClient(url, api_key=api_key)
        self._limit, self._filters = limit, filters

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self._client.search(query_bundle.query_str, limit=self._limit, filters=self._filters)
        nodes = []
        for hit in hits:
            metadata = {key: value for key, value in hit.items() if key not in ("text", "id")}
            hidden = [key for key in metadata if key not in SHOWN]
            node = TextNode(
                id_=hit["id"],
                text=hit["text"],
                metadata=metadata,
                excluded_llm_metadata_keys=hidden,
                excluded_embed_metadata_keys=hidden,
            )
            nodes.append(NodeWithScore(node=node, score=hit["score"]))
        return nodes
