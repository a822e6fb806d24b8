"""The Qdrant adapter: embedded by default, qdrant-client for a server or cluster."""

from __future__ import annotations

from pathlib import Path

from mmrag.settings import StoreSettings
from mmrag.store.base import (
    ChannelQuery,
    CollectionSchema,
    PointFilter,
    ScoredPoint,
    VectorKind,
    VectorSpec,
    VectorStore,
    point_id,
)


def open_store(settings: StoreSettings, *, embedded_root: Path) -> VectorStore:
    """The embedded engine under ``embedded_root`` unless ``qdrant_url`` names a server
    (or ``:memory:``, qdrant-client's in-process mode)."""
    if settings.qdrant_url:
        from mmrag.store.client import QdrantClientStore

        return QdrantClientStore.connect(settings)
    from mmrag.store.edge import EdgeStore

    return EdgeStore(
        root=embedded_root,
        collection=settings.collection,
        index_after_points=settings.index_after_points,
    )


__all__ = [
    "ChannelQuery",
    "CollectionSchema",
    "ScoredPoint",
    "PointFilter",
    "VectorKind",
    "VectorSpec",
    "VectorStore",
    "open_store",
    "point_id",
]
