"""Device and dtype choice shared by every model backend."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmrag.errors import ConfigError

if TYPE_CHECKING:
    import torch


def resolve_device(name: str) -> str:
    """Turn a device setting into a torch device string: ``auto`` picks CUDA > MPS > CPU."""
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"device {name!r} requested but CUDA is not available; use 'auto' or 'cpu'"
        )
    if name not in {"cpu", "mps"} and not name.startswith("cuda"):
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps")
    return name


def preferred_dtype(device: str) -> torch.dtype:
    """bf16 on GPUs (half the memory, tensor cores); fp32 elsewhere for accuracy."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32
