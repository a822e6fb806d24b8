"""What the pipeline reports while it indexes one file: the job runner turns it into
published progress (and stops the pipeline when the job is cancelled)."""

from __future__ import annotations

from typing import Protocol


class IngestObserver(Protocol):
    def file_started(self, name: str, pages: int) -> None: ...

    def advanced(self, *, pages: int = 0, chunks: int = 0, images: int = 0) -> None:
        """Called after each page and each stored batch; may raise `JobCancelled`."""


class NullObserver:
    def file_started(self, name: str, pages: int) -> None:
        pass

    def advanced(self, *, pages: int = 0, chunks: int = 0, images: int = 0) -> None:
        pass
