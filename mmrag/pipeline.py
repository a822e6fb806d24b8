"""Ingest: files -> parse -> chunk / enrich -> embed -> upsert, as a batched stream.

Memory is bounded by the batch size plus one page. Every point id is deterministic
(tenant, document, content hash, element index) and every point carries the id of
the run that wrote it; a run ends by deleting the document's points from other runs.
So a retried, interrupted (even ``kill -9``) or repeated ingest never duplicates,
and a changed file replaces its old points only once the new ones are in.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from mmrag.catalog import Catalog
from mmrag.enrich import ImageEnricher
from mmrag.errors import DocumentError, EmptyDocumentError
from mmrag.observe import IngestObserver, NullObserver
from mmrag.parsing import parse_file
from mmrag.parsing.chunking import Chunker
from mmrag.pointing import PointBuilder, PointContext
from mmrag.settings import Settings
from mmrag.store import PointFilter, VectorStore
from mmrag.types import (
    Chunk,
    DocumentRecord,
    DocumentStatus,
    Element,
    ImageElement,
    TextElement,
)

logger = logging.getLogger(__name__)

_DOCUMENT_NAMESPACE = uuid.UUID("0d9a7c34-5f1e-4b2a-8c6d-3e7f9a1b2c4d")


@dataclass(frozen=True)
class IngestResult:
    """The outcome for one file: ``indexed``, ``unchanged`` or ``failed``."""

    path: Path
    outcome: str
    document_id: str | None = None
    error: str = ""
    warnings: tuple[str, ...] = ()
    pages: int = 0
    chunks: int = 0
    images: int = 0
    points: int = 0
    seconds: float = 0.0


def content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def document_id_for(tenant: str, path: Path) -> str:
    """One id per (tenant, file location): a changed file keeps its id and gets a new version."""
    return uuid.uuid5(_DOCUMENT_NAMESPACE, f"{tenant}/{path.resolve()}").hex[:16]


def expand_paths(inputs: Iterable[str | Path]) -> tuple[list[Path], list[str]]:
    """Files, folders (recursive) and glob patterns to a sorted file list, plus inputs
    that matched nothing."""
    found: dict[Path, None] = {}
    missing: list[str] = []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_file():
            found[path] = None
        elif path.is_dir():
            found.update((p, None) for p in sorted(path.rglob("*")) if p.is_file())
        else:
            anchor = Path(path.anchor) if path.is_absolute() else Path()
            pattern = str(path.relative_to(anchor)) if path.is_absolute() else str(path)
            matches = sorted(p for p in anchor.glob(pattern) if p.is_file())
            if not matches:
                missing.append(str(item))
            found.update((p, None) for p in matches)
    return [p for p in found if not p.name.startswith(".")], missing


@dataclass
class _Batch:
    chunks: list[Chunk]
    images: list[ImageElement]

    def __len__(self) -> int:
        return len(self.chunks) + len(self.images)

    def take(self, size: int) -> _Batch:
        """Remove and return up to ``size`` items, chunks first."""
        chunks, self.chunks = self.chunks[:size], self.chunks[size:]
        room = size - len(chunks)
        images, self.images = self.images[:room], self.images[room:]
        return _Batch(chunks, images)


@dataclass
class _Tally:
    chunks: int = 0
    images: int = 0
    points: int = 0
    next_index: int = 0
    image_files: set[Path] = field(default_factory=set)


def document_heading(source: str, first: TextElement, limit: int = 120) -> str:
    """The document's file name and first line of text, for chunk context."""
    line = " ".join(first.text.split())[:limit]
    return f"{Path(source).stem.replace('_', ' ')}: {line}"


def image_folder(settings: Settings, document_id: str) -> Path:
    """Where a document's extracted images live (removed with the document)."""
    return settings.images_dir / document_id


def original_folder(settings: Settings, document_id: str) -> Path:
    """Where the copy of a document's original file lives (removed with the document)."""
    return settings.files_dir / document_id


def delete_document(
    *, settings: Settings, catalog: Catalog, store: VectorStore, document_id: str
) -> DocumentRecord:
    """Remove a document's points, stored images and catalog entry; no model needed."""
    record = catalog.require(document_id)
    store.delete(PointFilter(match={"document_id": document_id}))
    shutil.rmtree(image_folder(settings, document_id), ignore_errors=True)
    shutil.rmtree(original_folder(settings, document_id), ignore_errors=True)
    if Path(record.path).is_relative_to(settings.data_dir.resolve()):
        Path(record.path).unlink(missing_ok=True)  # an upload: the data directory owns it
    catalog.delete(document_id)
    return record


class Ingestor:
    """Runs files through the pipeline; one failing file never stops the batch."""

    def __init__(
        self,
        *,
        settings: Settings,
        catalog: Catalog,
        store: VectorStore,
        enricher: ImageEnricher,
        points: PointBuilder,
    ) -> None:
        self._settings = settings
        self._catalog = catalog
        self._store = store
        self._enricher = enricher
        self._points = points
        self._chunker = Chunker(
            chunk_size=settings.parsing.chunk_size, chunk_overlap=settings.parsing.chunk_overlap
        )
        self._tenant = settings.ingest.tenant
        self._store.ensure_collection(points.schema())

    def ingest(
        self, paths: Iterable[Path], observer: IngestObserver | None = None, *, force: bool = False
    ) -> list[IngestResult]:
        """Ingest files in order; ``force`` re-indexes unchanged files too."""
        observer = observer or NullObserver()
        results = []
        for path in paths:
            result = self.ingest_file(path, observer, force=force)
            results.append(result)
            observer.file_finished(result)
        return results

    def ingest_file(
        self, path: Path, observer: IngestObserver | None = None, *, force: bool = False
    ) -> IngestResult:
        """The per-document boundary: any failure is recorded with its reason, and the
        points of the failed run are removed so the previous version stays intact."""
        observer = observer or NullObserver()
        started = time.monotonic()
        document_id = document_id_for(self._tenant, path)
        run_id = uuid.uuid4().hex
        try:
            return self._ingest(path, document_id, run_id, observer, force, started)
        except DocumentError as exc:
            error = str(exc)
        except Exception as exc:  # the one boundary where an unexpected error is contained
            logger.exception("unexpected failure ingesting %s", path)
            error = f"{path}: unexpected {type(exc).__name__}: {exc}"
        return self._fail(path, document_id, run_id, error, started)

    def _ingest(
        self,
        path: Path,
        document_id: str,
        run_id: str,
        observer: IngestObserver,
        force: bool,
        started: float,
    ) -> IngestResult:
        self._check_size(path)
        digest = content_hash(path)
        existing = self._catalog.get(document_id)
        if (
            existing is not None
            and not force
            and existing.content_hash == digest
            and existing.status is DocumentStatus.INDEXED
        ):
            return IngestResult(
                path,
                "unchanged",
                document_id,
                warnings=existing.warnings,
                pages=existing.pages,
                chunks=existing.chunks,
                images=existing.images,
                points=existing.points,
                seconds=time.monotonic() - started,
            )
        version = 1 if existing is None else existing.version + (existing.content_hash != digest)
        record = self._catalog.save(
            self._tenant,
            DocumentRecord(
                document_id=document_id,
                path=str(path.resolve()),
                content_hash=digest,
                status=DocumentStatus.PROCESSING,
                version=version,
            ),
        )
        parsed = parse_file(path, self._settings.parsing)
        inside = path.resolve().is_relative_to(self._settings.data_dir.resolve())
        if self._settings.ingest.keep_originals and not inside:  # uploads are kept already
            self._keep_original(path, document_id)
        observer.file_started(path, parsed.page_count)
        context = PointContext(
            tenant=self._tenant,
            document_id=document_id,
            content_hash=digest,
            run_id=run_id,
            version=version,
            source=record.path,
            file_type=parsed.file_type,
            data_dir=self._settings.data_dir,
        )
        tally = self._index(parsed.elements, context, observer)
        if tally.points == 0:
            raise EmptyDocumentError(path, self._nothing_found(tally))
        # The new version is complete: now drop whatever earlier runs left behind.
        self._store.delete(
            PointFilter(match={"document_id": document_id}, exclude={"run_id": run_id})
        )
        for stale in set(self.image_folder(document_id).glob("*.png")) - tally.image_files:
            stale.unlink()
        points = self._store.count(PointFilter(match={"document_id": document_id}))
        self._catalog.save(
            self._tenant,
            replace(
                record,
                status=DocumentStatus.INDEXED,
                file_type=parsed.file_type,
                warnings=tuple(parsed.warnings),
                pages=parsed.page_count,
                chunks=tally.chunks,
                images=tally.images,
                points=points,
            ),
        )
        return IngestResult(
            path,
            "indexed",
            document_id,
            warnings=tuple(parsed.warnings),
            pages=parsed.page_count,
            chunks=tally.chunks,
            images=tally.images,
            points=points,
            seconds=time.monotonic() - started,
        )

    def _nothing_found(self, tally: _Tally) -> str:
        parsing = self._settings.parsing
        if tally.images:
            return (
                f"{tally.images} image(s) but no text in or about them, and the pixel "
                "channel is off (image_embedder.backend=none): nothing could be indexed"
            )
        hints = [f"images under parsing.min_image_side={parsing.min_image_side} px are skipped"]
        if not parsing.ocr:
            hints.append("parsing.ocr is off, so scanned pages give no text")
        return f"no text and no usable images were found ({'; '.join(hints)})"

    def _keep_original(self, path: Path, document_id: str) -> None:
        """Copy the file into the data directory, replacing an older version's copy."""
        folder = original_folder(self._settings, document_id)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        shutil.copy2(path, folder / path.name)

    def _check_size(self, path: Path) -> None:
        size_mb = path.stat().st_size / 2**20
        if size_mb > self._settings.ingest.max_file_mb:
            raise DocumentError(
                path,
                f"file is {size_mb:.0f} MB, over ingest.max_file_mb "
                f"({self._settings.ingest.max_file_mb:.0f})",
            )

    def _index(
        self, elements: Iterator[Element], context: PointContext, observer: IngestObserver
    ) -> _Tally:
        """Stream elements into batches: text is chunked a page at a time."""
        tally = _Tally()
        pending = _Batch([], [])
        page_texts: list[TextElement] = []
        page = 0
        size = self._settings.ingest.batch_size
        for element in elements:
            if element.page != page and page_texts:
                pending.chunks.extend(self._chunker.chunk(page_texts))
                page_texts = []
            if element.page > page:
                observer.advanced(pages=element.page - page)
                page = element.page
            if isinstance(element, TextElement):
                if not context.heading and self._settings.parsing.chunk_context:
                    context = replace(context, heading=document_heading(context.source, element))
                page_texts.append(element)
            else:
                pending.images.append(element)
            while len(pending) >= size:
                self._flush(pending.take(size), context, tally, observer)
        pending.chunks.extend(self._chunker.chunk(page_texts))
        while len(pending):
            self._flush(pending.take(size), context, tally, observer)
        return tally

    def _flush(
        self, batch: _Batch, context: PointContext, tally: _Tally, observer: IngestObserver
    ) -> None:
        if not len(batch):
            return
        assets = self._enricher.enrich(batch.images, self.image_folder(context.document_id))
        points = self._points.build(
            batch.chunks,
            assets,
            [e.image for e in batch.images],
            context=context,
            first_index=tally.next_index,
        )
        self._store.upsert(points)
        tally.image_files.update(asset.path for asset in assets)
        tally.points += len(points)
        tally.next_index += len(batch)
        tally.chunks += len(batch.chunks)
        tally.images += len(assets)
        observer.advanced(chunks=len(batch.chunks), images=len(assets))

    def image_folder(self, document_id: str) -> Path:
        return image_folder(self._settings, document_id)

    def _fail(
        self, path: Path, document_id: str, run_id: str, error: str, started: float
    ) -> IngestResult:
        self._store.delete(PointFilter(match={"document_id": document_id, "run_id": run_id}))
        existing = self._catalog.get(document_id)
        points = self._store.count(PointFilter(match={"document_id": document_id}))
        record = existing or DocumentRecord.new(
            document_id, str(path.resolve()), DocumentStatus.FAILED
        )
        self._catalog.save(
            self._tenant, replace(record, status=DocumentStatus.FAILED, error=error, points=points)
        )
        return IngestResult(
            path,
            "failed",
            document_id,
            error=error,
            points=points,
            seconds=time.monotonic() - started,
        )
