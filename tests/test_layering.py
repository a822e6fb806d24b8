"""Imports run one way: the library never imports the programs or their frameworks."""

from __future__ import annotations

import subprocess
import sys

import pytest

FORBIDDEN = ("api", "ingest", "eval", "fastapi", "typer", "click", "rich", "uvicorn")


@pytest.mark.parametrize(
    "module",
    [
        "mmrag",
        "mmrag.services",
        "mmrag.pipeline",
        "mmrag.models.captioners",
        "mmrag.models.image",
        "mmrag.parsing.office",
        "mmrag.store.client",
    ],
)
def test_library_does_not_import_programs(module: str) -> None:
    code = f"import sys, {module}; print(sorted(m for m in {FORBIDDEN!r} if m in sys.modules))"
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert output == "[]"


def test_import_mmrag_stays_light() -> None:
    code = "import sys, mmrag; print('torch' in sys.modules, 'transformers' in sys.modules)"
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert output == "False False"
