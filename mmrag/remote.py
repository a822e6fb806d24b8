"""A client of a running mmrag service, for the adapters (LangChain, LlamaIndex) and
scripts: search over HTTP, hits returned as the API gives them, with absolute URLs.

    client = MmragClient("http://127.0.0.1:8000", api_key="k-acme")
    hits = client.search("turbine output", limit=5, filters={"kinds": ["table"]})

Errors come back as `RemoteError` with the service's status, type and message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from mmrag.errors import MmragError
from mmrag.retrieval import SearchFilters


class RemoteError(MmragError):
    """The service refused or failed a request."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        self.status, self.kind = status, kind
        super().__init__(f"mmrag service: {status} {kind}: {message}")


def filters_json(filters: SearchFilters | Mapping[str, Any] | None) -> dict[str, Any]:
    """The API's ``filters`` object from library filters or a plain mapping."""
    if filters is None:
        return {}
    if isinstance(filters, SearchFilters):
        chosen = {
            "document_ids": list(filters.document_ids),
            "kinds": list(filters.kinds),
            "file_types": list(filters.file_types),
            "page_from": filters.page_from,
            "page_to": filters.page_to,
            "metadata": dict(filters.metadata),
        }
        return {key: value for key, value in chosen.items() if value not in (None, [], {})}
    return dict(filters)


class MmragClient:
    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        http: httpx.Client | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = http or httpx.Client(timeout=timeout_s)
        self._headers = headers

    def search(
        self,
        query: str,
        *,
        limit: int = 8,
        filters: SearchFilters | Mapping[str, Any] | None = None,
        channels: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Ranked hits (``POST /v1/search``), their ``image_url`` and ``page_url`` made
        absolute."""
        body: dict[str, Any] = {"query": query, "limit": limit, "filters": filters_json(filters)}
        if channels is not None:
            body["channels"] = list(channels)
        response = self._http.post(f"{self.base_url}/v1/search", json=body, headers=self._headers)
        if response.status_code != 200:
            raise self._error(response)
        hits: list[dict[str, Any]] = response.json()["hits"]
        for hit in hits:
            for key in ("image_url", "page_url"):
                if hit.get(key):
                    hit[key] = self.base_url + hit[key]
        return hits

    def _error(self, response: httpx.Response) -> RemoteError:
        try:
            error = response.json()["error"]
            return RemoteError(response.status_code, error["type"], error["message"])
        except (ValueError, KeyError, TypeError):
            return RemoteError(response.status_code, "http", response.text[:200])

    def close(self) -> None:
        self._http.close()
