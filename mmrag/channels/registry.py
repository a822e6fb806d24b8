"""The registered channels, by name. The built-in ones register on first use exactly as
an add-on does::

    from mmrag.channels import Channel, register

    @register
    class MyChannel(Channel):
        name = "mine"
        ...
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from mmrag.channels.base import Channel, Models
from mmrag.errors import ConfigError

if TYPE_CHECKING:
    from mmrag.settings import Settings

# Modules whose import registers the built-in channels, in fusion order.
_BUILTIN_MODULES = (
    "mmrag.channels.text",
    "mmrag.channels.sparse",
    "mmrag.channels.caption",
    "mmrag.channels.image",
    "mmrag.channels.page",
)
_channels: dict[str, type[Channel]] = {}
_builtins_loaded = False


def register(channel: type[Channel]) -> type[Channel]:
    """Register a channel class under its ``name`` (a later one with the name replaces it)."""
    _channels[channel.name] = channel
    return channel


def unregister(name: str) -> None:
    _channels.pop(name, None)


def registered() -> dict[str, type[Channel]]:
    """Every registered channel class by name, built-ins first."""
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        for module in _BUILTIN_MODULES:
            importlib.import_module(module)
    return dict(_channels)


def channel_names() -> list[str]:
    return list(registered())


def build_channels(models: Models, settings: Settings) -> list[Channel]:
    """Every registered channel whose models are on, in registration order. A channel
    named in ``retrieval.channels`` must be registered."""
    classes = registered()
    unknown = sorted(set(settings.retrieval.channels) - set(classes))
    if unknown:
        raise ConfigError(
            f"retrieval.channels names unknown channels {unknown}; registered: {', '.join(classes)}"
        )
    built = (cls.create(models, settings) for cls in classes.values())
    return [channel for channel in built if channel is not None]
