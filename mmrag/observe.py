"""Progress reporting for long ingests: a bar at a terminal, log lines in a worker."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from mmrag.pipeline import IngestResult

logger = logging.getLogger("mmrag.ingest")


class IngestObserver(Protocol):
    def file_started(self, path: Path, pages: int) -> None: ...

    def advanced(self, *, pages: int = 0, chunks: int = 0, images: int = 0) -> None: ...

    def file_finished(self, result: IngestResult) -> None: ...


class NullObserver:
    def file_started(self, path: Path, pages: int) -> None:
        pass

    def advanced(self, *, pages: int = 0, chunks: int = 0, images: int = 0) -> None:
        pass

    def file_finished(self, result: IngestResult) -> None:
        pass


class LoggingObserver(NullObserver):
    """One log line per file: what a worker without a terminal should print."""

    def file_finished(self, result: IngestResult) -> None:
        if result.outcome == "failed":
            logger.warning("failed: %s", result.error)
            return
        logger.info(
            "%s %s: %d pages, %d chunks, %d images, %d points in %.1fs",
            result.outcome,
            result.path,
            result.pages,
            result.chunks,
            result.images,
            result.points,
            result.seconds,
        )
        for warning in result.warnings:
            logger.warning("%s: %s", result.path, warning)
