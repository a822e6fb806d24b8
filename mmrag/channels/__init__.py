"""Retrieval channels: one module per channel, all through one registry."""

from mmrag.channels.base import (
    Channel,
    Indexable,
    Models,
    SparseValue,
    VectorKind,
    VectorSpec,
    VectorValue,
    narrow,
    payload_field,
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
    "build_channels",
    "Indexable",
    "Models",
    "SparseValue",
    "VectorKind",
    "VectorSpec",
    "VectorValue",
    "channel_names",
    "narrow",
    "payload_field",
    "register",
    "registered",
    "unregister",
]
