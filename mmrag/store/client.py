"""Qdrant through qdrant-client: a server, a cluster, Qdrant Cloud, or ``:memory:``.

Same schema as the embedded adapter. For a cluster the collection is created with
the configured shard number, replication factor and write consistency.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from mmrag.errors import StoreError
from mmrag.settings import StoreSettings
from mmrag.store.base import (
    IMAGE_VECTOR,
    INTEGER_FIELDS,
    KEYWORD_FIELDS,
    SPARSE_VECTOR,
    TENANT_FIELD,
    TEXT_VECTOR,
    ChannelQuery,
    CollectionSchema,
    PointFilter,
    ScoredPoint,
    VectorStore,
)
from mmrag.types import StoredPoint


def client_filter(where: PointFilter | None) -> Any:
    from qdrant_client import models

    if not where:
        return None

    def condition(key: str, value: Any) -> models.FieldCondition:
        match = (
            models.MatchAny(any=list(value))
            if isinstance(value, list | tuple)
            else models.MatchValue(value=value)
        )
        return models.FieldCondition(key=key, match=match)

    ranges: list[models.FieldCondition] = [
        models.FieldCondition(key=key, range=models.Range(gte=low, lte=high))
        for key, (low, high) in where.ranges.items()
    ]
    return models.Filter(
        must=[condition(k, v) for k, v in where.match.items()] + ranges or None,
        must_not=[condition(k, v) for k, v in where.exclude.items()] or None,
    )


class QdrantClientStore(VectorStore):
    def __init__(self, *, client: Any, settings: StoreSettings, local: bool) -> None:
        self._client = client
        self._settings = settings
        self._collection = settings.collection
        self._local = local  # qdrant-client's local mode has no payload indexes
        self._exists = False  # once seen, a collection is not asked about again
        # qdrant-client's local mode is not thread-safe (concurrent upsert and delete
        # corrupt it): one call at a time there, as a server applies each request whole.
        self._lock: AbstractContextManager[Any] = threading.RLock() if local else nullcontext()

    @classmethod
    def connect(cls, settings: StoreSettings) -> QdrantClientStore:
        from qdrant_client import QdrantClient

        url = settings.qdrant_url or ""
        if url == ":memory:":
            return cls(client=QdrantClient(location=":memory:"), settings=settings, local=True)
        api_key = settings.api_key.get_secret_value() if settings.api_key else None
        client = QdrantClient(url=url, api_key=api_key, timeout=int(settings.timeout_s))
        return cls(client=client, settings=settings, local=False)

    def _call(self, what: str, function: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a client call; transport and server errors become StoreError."""
        try:
            with self._lock:
                return function(*args, **kwargs)
        except StoreError:
            raise
        except Exception as exc:  # httpx, grpc and UnexpectedResponse share no base class
            raise StoreError(
                f"Qdrant at {self._settings.qdrant_url} failed to {what}: {exc}"
            ) from exc

    def _collection_exists(self) -> bool:
        """Asked of the server until the answer is yes, then remembered: reads on the hot
        path (search, count) cost one round trip, not two."""
        if not self._exists:
            self._exists = bool(
                self._call("check the collection", self._client.collection_exists, self._collection)
            )
        return self._exists

    def ensure_collection(self, schema: CollectionSchema) -> None:
        from qdrant_client import models

        if self._collection_exists():
            self._check(schema)
            return
        vectors = {
            TEXT_VECTOR: models.VectorParams(
                size=schema.text_dimension, distance=models.Distance.COSINE
            )
        }
        if schema.image_dimension:
            vectors[IMAGE_VECTOR] = models.VectorParams(
                size=schema.image_dimension, distance=models.Distance.COSINE
            )
        self._call(
            "create the collection",
            self._client.create_collection,
            self._collection,
            vectors_config=vectors,
            sparse_vectors_config={
                SPARSE_VECTOR: models.SparseVectorParams(modifier=models.Modifier.IDF)
            },
            shard_number=self._settings.shard_number,
            replication_factor=self._settings.replication_factor,
            write_consistency_factor=self._settings.write_consistency_factor,
        )
        if not self._local:
            self._create_indexes()
        self._exists = True

    def _create_indexes(self) -> None:
        from qdrant_client import models

        for name in KEYWORD_FIELDS:
            self._call(
                "index payload",
                self._client.create_payload_index,
                self._collection,
                name,
                field_schema=models.PayloadSchemaType.KEYWORD,
            )
        self._call(
            "index payload",
            self._client.create_payload_index,
            self._collection,
            TENANT_FIELD,
            field_schema=models.KeywordIndexParams(
                type=models.KeywordIndexType.KEYWORD, is_tenant=True
            ),
        )
        for name in INTEGER_FIELDS:
            self._call(
                "index payload",
                self._client.create_payload_index,
                self._collection,
                name,
                field_schema=models.PayloadSchemaType.INTEGER,
            )

    def _check(self, schema: CollectionSchema) -> None:
        info = self._call("read the collection", self._client.get_collection, self._collection)
        vectors = info.config.params.vectors or {}
        text = vectors.get(TEXT_VECTOR)
        if text is None or text.size != schema.text_dimension:
            raise StoreError(
                f"collection {self._collection!r} has text vectors of size "
                f"{getattr(text, 'size', None)}, the text embedder makes {schema.text_dimension}; "
                "use another store.collection"
            )
        image = vectors.get(IMAGE_VECTOR)
        if schema.image_dimension and (image is None or image.size != schema.image_dimension):
            raise StoreError(
                f"collection {self._collection!r} has no {schema.image_dimension}-d image vectors; "
                "it was created without the pixel channel: use another store.collection"
            )

    def upsert(self, points: Sequence[StoredPoint]) -> None:
        from qdrant_client import models

        if not points:
            return
        structs = []
        for point in points:
            vector: dict[str, Any] = dict(point.vectors)
            for name, (indices, values) in point.sparse.items():
                vector[name] = models.SparseVector(indices=indices, values=values)
            structs.append(
                models.PointStruct(id=point.point_id, vector=vector, payload=point.payload)
            )
        self._call(
            "upsert points", self._client.upsert, self._collection, points=structs, wait=True
        )

    def delete(self, where: PointFilter) -> None:
        from qdrant_client import models

        if self._collection_exists():
            self._call(
                "delete points",
                self._client.delete,
                self._collection,
                points_selector=models.FilterSelector(filter=client_filter(where)),
                wait=True,
            )

    def count(self, where: PointFilter | None = None) -> int:
        if not self._collection_exists():
            return 0
        result = self._call(
            "count points",
            self._client.count,
            self._collection,
            count_filter=client_filter(where),
            exact=True,
        )
        return int(result.count)

    def search(self, queries: Sequence[ChannelQuery]) -> list[list[ScoredPoint]]:
        from qdrant_client import models

        if not queries or not self._collection_exists():
            return [[] for _ in queries]
        requests = []
        for query in queries:
            vector: Any = query.vector
            if isinstance(vector, tuple):
                vector = models.SparseVector(indices=vector[0], values=vector[1])
            requests.append(
                models.QueryRequest(
                    query=vector,
                    using=query.vector_name,
                    limit=query.limit,
                    filter=client_filter(query.where),
                    score_threshold=query.score_threshold,
                    with_payload=True,
                )
            )
        responses = self._call(
            "search", self._client.query_batch_points, self._collection, requests=requests
        )
        return [
            [ScoredPoint(str(p.id), float(p.score), dict(p.payload or {})) for p in r.points]
            for r in responses
        ]

    def payloads(self, where: PointFilter, limit: int = 10_000) -> list[dict[str, Any]]:
        if not self._collection_exists():
            return []
        records, _ = self._call(
            "scroll points",
            self._client.scroll,
            self._collection,
            scroll_filter=client_filter(where),
            limit=limit,
            with_payload=True,
        )
        return [dict(record.payload or {}) for record in records]

    def close(self) -> None:
        self._client.close()
