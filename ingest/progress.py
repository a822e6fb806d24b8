"""A rich progress display for `mmrag ingest` at a terminal."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from mmrag.pipeline import IngestResult


class RichObserver:
    """Two bars: files overall, pages of the current file; counts of chunks and images."""

    def __init__(self, console: Console, files: int) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self._files: TaskID = self._progress.add_task("files", total=files, detail="")
        self._pages: TaskID = self._progress.add_task("pages", total=None, detail="")
        self._chunks = 0
        self._images = 0
        self._console = console

    def __enter__(self) -> RichObserver:
        self._progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def _detail(self) -> str:
        return f"{self._chunks} chunks, {self._images} images"

    def file_started(self, path: Path, pages: int) -> None:
        self._progress.reset(
            self._pages, total=pages, description=f"pages of {path.name[:40]}", detail=""
        )

    def advanced(self, *, pages: int = 0, chunks: int = 0, images: int = 0) -> None:
        self._chunks += chunks
        self._images += images
        self._progress.update(self._pages, advance=pages)
        self._progress.update(self._files, detail=self._detail())

    def file_finished(self, result: IngestResult) -> None:
        self._progress.update(self._files, advance=1)
        for warning in result.warnings:
            self._console.print(
                f"[yellow]warning[/yellow] {result.path}: {warning}", highlight=False
            )
