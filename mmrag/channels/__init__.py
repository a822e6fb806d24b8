"""Retrieval channels: one module per channel, all through one registry."""

from mmrag.channels.base import (
    Channel,
    Encoded,
    Indexable,
    Models,
    SparseValue,
    VectorKind,
    VectorSpec,
    VectorValue,
    narrow,
)
from mmrag.channels.registry import (
    build_channels,
    channel_names,
    register,
    registered,
    unregister,
)

__all__ = [
    "Channel",
    "Encoded",
    "build_channels",
    "Indexable",
    "Models",
    "SparseValue",
    "VectorKind",
    "VectorSpec",
    "VectorValue",
    "channel_names",
    "narrow",
    "register",
    "registered",
    "unregister",
]
