"""Tiny late-interaction models built once per session (the others come from
``tiny_models`` in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_colqwen2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random ColQwen2 retriever saved with its processor."""
    from mmrag.testing.tiny_retrievers import build_tiny_colqwen2

    return build_tiny_colqwen2(tmp_path_factory.mktemp("models") / "colqwen2")
