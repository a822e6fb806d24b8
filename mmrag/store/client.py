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
    INTEGER_FIELDS,
    KEYWORD_FIELDS,
    TENANT_FIELD,
    ChannelQuery,
    CollectionSchema,
    PointFilter,
    ScoredPoint,
    VectorKind,
    VectorSpec,
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


def _vector(value: Any) -> Any:
    """A sparse (indices, values) pair becomes a SparseVector; dense and multi pass as lists."""
    from qdrant_client import models

    if isinstance(value, tuple):
        return models.SparseVector(indices=value[0], values=value[1])
    return value


def _prefetch(first: ChannelQuery | None) -> Any:
    from qdrant_client import models

    if first is None:
        return None
    return models.Prefetch(
        query=_vector(first.vector),
        using=first.vector_name,
        limit=first.limit,
        filter=client_filter(first.where),
        prefetch=_prefetch(first.prefetch),
    )


def _vector_params(spec: VectorSpec) -> Any:
    """Dense and multi-vector parameters; a vector that is only rescored gets no graph."""
    from qdrant_client import models

    return models.VectorParams(
        size=spec.size,
        distance=models.Distance.COSINE,
        multivector_config=(
            models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM)
            if spec.kind == VectorKind.MULTI
            else None
        ),
        hnsw_config=None if spec.indexed else models.HnswConfigDiff(m=0),
        datatype=models.Datatype.FLOAT16 if spec.half else None,
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
        self._call(
            "create the collection",
            self._client.create_collection,
            self._collection,
            vectors_config={
                v.name: _vector_params(v) for v in schema.vectors if v.kind != VectorKind.SPARSE
            },
            sparse_vectors_config={
                v.name: models.SparseVectorParams(modifier=models.Modifier.IDF)
                for v in schema.vectors
                if v.kind == VectorKind.SPARSE
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
        """A server cannot add named vectors to a collection: each configured one must be
        there already, of the same kind and size."""
        info = self._call("read the collection", self._client.get_collection, self._collection)
        dense = info.config.params.vectors or {}
        sparse = info.config.params.sparse_vectors or {}
        for spec in schema.vectors:
            if spec.kind == VectorKind.SPARSE:
                problem = None if spec.name in sparse else "no such sparse vector"
            else:
                found = dense.get(spec.name)
                multi = found is not None and found.multivector_config is not None
                if found is None:
                    problem = "no such vector"
                elif found.size != spec.size or multi != (spec.kind == VectorKind.MULTI):
                    kind = "multi" if multi else "dense"
                    problem = f"{kind} vectors of size {found.size}"
                else:
                    problem = None
            if problem:
                raise StoreError(
                    f"collection {self._collection!r} cannot hold the {spec.kind.value} "
                    f"{spec.name!r} vectors of size {spec.size} the configured channels need "
                    f"({problem}); it was created with other models or channels: use another "
                    "store.collection"
                )

    def upsert(self, points: Sequence[StoredPoint]) -> None:
        from qdrant_client import models

        if not points:
            return
        structs = [
            models.PointStruct(
                id=point.point_id,
                vector={name: _vector(value) for name, value in point.vectors.items()},
                payload=point.payload,
            )
            for point in points
        ]
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
        requests = [
            models.QueryRequest(
                query=_vector(query.vector),
                using=query.vector_name,
                prefetch=_prefetch(query.prefetch),
                limit=query.limit,
                filter=client_filter(query.where),
                score_threshold=query.score_threshold,
                with_payload=True,
            )
            for query in queries
        ]
        responses = self._call(
            "search", self._client.query_batch_points, self._collection, requests=requests
        )
        return [
            [ScoredPoint(str(p.id), float(p.score), dict(p.payload or {})) for p in r.points]
            for r in responses
        ]

    def vectors(self, point_ids: Sequence[str], name: str) -> dict[str, Any]:
        if not point_ids or not self._collection_exists():
            return {}
        records = self._call(
            "read vectors",
            self._client.retrieve,
            self._collection,
            ids=list(point_ids),
            with_payload=False,
            with_vectors=[name],
        )
        found = ((str(r.id), (r.vector or {}).get(name)) for r in records)
        return {point: vector for point, vector in found if vector is not None}

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
