"""Ingest: files -> parse -> chunk / enrich -> embed -> upsert, as a batched stream.

Memory is bounded by two batches (each `ingest.batch_size` elements and at most
`BATCH_PIXELS` of images: one being written while the next fills) plus one page.
Every point id is deterministic (tenant, document, content hash, element index) and
every point carries the id of the run that wrote it; a run ends by deleting the
document's points from other runs. So a retried, interrupted (even ``kill -9``) or
repeated ingest never duplicates, and a changed file replaces its old points only
once the new ones are in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from mmrag.blobs import BlobStore
from mmrag.catalog import Catalog
from mmrag.enrich import ImageEnricher
from mmrag.errors import DocumentError, EmptyDocumentError, JobCancelled
from mmrag.files import content_hash
from mmrag.jobs import IngestJob
from mmrag.observe import IngestObserver, NullObserver
from mmrag.parsing.chunking import Chunker
from mmrag.parsing.sandbox import parse_untrusted
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

# Images held for one batch, in pixels: with parsing.max_image_pixels per image, this
# bounds the memory a batch of large images takes (about 3 bytes a pixel). Two batches
# are held at once (one written while the next fills): 64 Mpx, about 190 MB, in all.
BATCH_PIXELS = 32_000_000


@dataclass
class _Batch:
    chunks: list[Chunk]
    images: list[ImageElement]

    def __len__(self) -> int:
        return len(self.chunks) + len(self.images)

    @property
    def pixels(self) -> int:
        return sum(element.image.width * element.image.height for element in self.images)

    def take(self, size: int) -> _Batch:
        """Remove and return up to ``size`` items, chunks first."""
        chunks, self.chunks = self.chunks[:size], self.chunks[size:]
        room = size - len(chunks)
        images, self.images = self.images[:room], self.images[room:]
        return _Batch(chunks, images)


@dataclass
class _Written:
    """What one batch added to the index."""

    chunks: int
    images: int
    points: int
    image_keys: set[str]


@dataclass
class _Tally:
    chunks: int = 0
    images: int = 0
    points: int = 0
    next_index: int = 0
    image_keys: set[str] = field(default_factory=set)

    def add(self, written: _Written) -> None:
        self.chunks += written.chunks
        self.images += written.images
        self.points += written.points
        self.image_keys.update(written.image_keys)


class _BackgroundWriter:
    """Embeds and writes batches in one background thread while the caller reads and
    chunks the next: the parser process, the chunker and the models (which release the
    GIL in native code) overlap. One batch at a time is in flight, so memory stays
    bounded. Point indexes are given in submission order; counts and progress are applied
    in the caller's thread. Leaving the block waits for the batch in flight, also on an
    error, so nothing is written after the run has ended."""

    def __init__(
        self,
        write: Callable[[_Batch, PointContext, int], _Written],
        tally: _Tally,
        observer: IngestObserver,
    ) -> None:
        self._write = write
        self._tally = tally
        self._observer = observer
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mmrag-ingest-write")
        self._in_flight: Future[_Written] | None = None

    def submit(self, batch: _Batch, context: PointContext) -> None:
        if not len(batch):
            return
        self._collect()
        self._in_flight = self._pool.submit(self._write, batch, context, self._tally.next_index)
        self._tally.next_index += len(batch)

    def _collect(self) -> None:
        """Wait for the batch in flight; its error, if any, is raised here."""
        if self._in_flight is None:
            return
        written, self._in_flight = self._in_flight.result(), None
        self._tally.add(written)
        self._observer.advanced(chunks=written.chunks, images=written.images)

    def __enter__(self) -> _BackgroundWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        try:
            if exc_type is None:
                self._collect()
        finally:
            self._pool.shutdown(wait=True)  # never leave a write running behind the run


def document_heading(source: str, first: TextElement | None = None, limit: int = 120) -> str:
    """The document's file name and first line of text, for chunk context (the name alone
    before any text is seen)."""
    name = Path(source).stem.replace("_", " ")
    if first is None:
        return name
    return f"{name}: {' '.join(first.text.split())[:limit]}"


class Ingestor:
    """Runs one ingest job through the pipeline. Every failure propagates to the job
    runner (`mmrag.worker`), the per-document boundary, which decides: retry, fail
    the document (`fail`) or drop what a cancelled run wrote (`discard`)."""

    def __init__(
        self,
        *,
        settings: Settings,
        catalog: Catalog,
        store: VectorStore,
        blobs: BlobStore,
        enricher: ImageEnricher,
        points: PointBuilder,
    ) -> None:
        self._settings = settings
        self._catalog = catalog
        self._store = store
        self._blobs = blobs
        self._enricher = enricher
        self._points = points
        # A channel that reads page renders (late interaction) needs every page rendered.
        renders = any(channel.renders_pages for channel in points.channels)
        self._parsing = (
            settings.parsing.model_copy(update={"page_images": "all"})
            if renders and settings.parsing.page_images != "all"
            else settings.parsing
        )
        # Chunks sized in the text embedder's tokens (characters when it has no tokenizer).
        self._chunker = Chunker.for_embedder(settings.parsing, points.text_embedder)
        self._store.ensure_collection(points.schema())

    def run(
        self, job: IngestJob, run_id: str, observer: IngestObserver | None = None
    ) -> DocumentRecord:
        """Index the job's file under ``run_id``; the document's indexed record. Raises
        `DocumentError` for a bad file, `JobCancelled` when the document was deleted or
        superseded, and whatever a model or the store raised."""
        observer = observer or NullObserver()
        record = self._catalog.get(job.tenant, job.document_id)
        if record is None:
            raise JobCancelled(f"{job.filename}: the document was deleted")
        path = self._readable_copy(job, record)
        self._catalog.update(job.tenant, replace(record, status=DocumentStatus.PROCESSING))
        parsed = parse_untrusted(path, self._parsing, name=job.filename)
        observer.file_started(job.filename, parsed.page_count)
        context = PointContext(
            tenant=job.tenant,
            document_id=job.document_id,
            content_hash=job.content_hash,
            run_id=run_id,
            version=job.version,
            source=record.path,
            file_type=parsed.file_type,
        )
        try:
            tally = self._index(parsed.elements, context, observer)
        finally:
            close = getattr(parsed.elements, "close", None)
            if close is not None:
                close()  # a stopped job releases the open file now, not at collection
        if tally.points == 0:
            raise EmptyDocumentError(path, self._nothing_found(tally))
        # The new version is complete: now drop whatever earlier runs left behind.
        self._store.delete(self._document_points(job, exclude_run=run_id))
        for stale in self._blobs.keys(f"images/{job.document_id}/") - tally.image_keys:
            self._blobs.delete(stale)
        indexed = replace(
            record,
            status=DocumentStatus.INDEXED,
            error="",
            file_type=parsed.file_type,
            warnings=tuple(parsed.warnings),
            pages=parsed.page_count,
            chunks=tally.chunks,
            images=tally.images,
            points=self._store.count(self._document_points(job)),
            run_id=run_id,
        )
        if not self._catalog.update(job.tenant, indexed):
            raise JobCancelled(f"{job.filename}: the document was deleted")
        if not self._settings.ingest.keep_originals:
            self._blobs.delete(job.blob_key)
        self._store.index_in_background()  # past store.index_after_points new points
        return indexed

    def _readable_copy(self, job: IngestJob, record: DocumentRecord) -> Path:
        """The file to parse: the original where this worker can read it unchanged (so an
        HTML or Markdown file's relative image links resolve), else the stored blob."""
        original = Path(record.path)
        try:
            readable = original.is_absolute() and original.is_file()
            if readable and content_hash(original) == job.content_hash:
                self._check_size(original, job.filename)
                return original
        except OSError:
            pass  # unreadable here: the blob holds the same bytes
        blob = self._blobs.path(job.blob_key)
        self._check_size(blob, job.filename)
        if content_hash(blob) != job.content_hash:
            raise JobCancelled(f"{job.filename}: superseded by a newer version")
        return blob

    @staticmethod
    def _document_points(job: IngestJob, exclude_run: str | None = None) -> PointFilter:
        exclude = {"run_id": exclude_run} if exclude_run else {}
        return PointFilter(
            match={"tenant": job.tenant, "document_id": job.document_id}, exclude=exclude
        )

    def fail(self, job: IngestJob, error: str) -> DocumentRecord | None:
        """Mark the document failed, keeping only the points of its indexed run (if any),
        so a failed new version leaves the previous one searchable. None when the
        document was deleted meanwhile."""
        record = self._catalog.get(job.tenant, job.document_id)
        self._drop_unfinished(job, record)
        if record is None:
            return None
        failed = replace(
            record,
            status=DocumentStatus.FAILED,
            error=error,
            points=self._store.count(self._document_points(job)),
        )
        self._catalog.update(job.tenant, failed)
        return failed

    def discard(self, job: IngestJob) -> None:
        """After a cancelled or abandoned run: drop what it wrote."""
        self._drop_unfinished(job, self._catalog.get(job.tenant, job.document_id))

    def _drop_unfinished(self, job: IngestJob, record: DocumentRecord | None) -> None:
        """Keep the points of the document's indexed run only; if the document is gone,
        keep nothing of it (points, images, original)."""
        if record is None:
            self._store.delete(self._document_points(job))
            self._blobs.delete(f"images/{job.document_id}/")
            self._blobs.delete(f"originals/{job.document_id}/")
        else:
            standing = record.run_id or "none"  # "none": no indexed run, drop every point
            self._store.delete(self._document_points(job, exclude_run=standing))

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

    def _check_size(self, path: Path, name: str) -> None:
        size_mb = path.stat().st_size / 2**20
        if size_mb > self._settings.ingest.max_file_mb:
            raise DocumentError(
                name,
                f"file is {size_mb:.0f} MB, over ingest.max_file_mb "
                f"({self._settings.ingest.max_file_mb:.0f})",
            )

    def _index(
        self, elements: Iterator[Element], context: PointContext, observer: IngestObserver
    ) -> _Tally:
        """Stream elements into batches: text is chunked a page at a time. Each full
        batch is embedded and written by `_BackgroundWriter` while the next is read."""
        tally = _Tally()
        pending = _Batch([], [])
        page_texts: list[TextElement] = []
        page = 0
        size = self._settings.ingest.batch_size
        chunk_context, titled = self._settings.parsing.chunk_context, False
        if chunk_context:  # the name until the first line of text is seen
            context = replace(context, heading=document_heading(context.source))
        with _BackgroundWriter(self._write, tally, observer) as writer:
            for element in elements:
                if element.page != page and page_texts:
                    pending.chunks.extend(self._chunker.chunk(page_texts, prefix=context.prefix))
                    page_texts = []
                if element.page > page:
                    observer.advanced(pages=element.page - page)
                    page = element.page
                if isinstance(element, TextElement):
                    if chunk_context and not titled:
                        context = replace(
                            context, heading=document_heading(context.source, element)
                        )
                        titled = True
                    page_texts.append(element)
                else:
                    pending.images.append(element)
                while len(pending) >= size:
                    writer.submit(pending.take(size), context)
                if pending.pixels >= BATCH_PIXELS:  # a few large images make a batch
                    writer.submit(pending.take(len(pending)), context)
            pending.chunks.extend(self._chunker.chunk(page_texts, prefix=context.prefix))
            while len(pending):
                writer.submit(pending.take(size), context)
        return tally

    def _write(self, batch: _Batch, context: PointContext, first_index: int) -> _Written:
        """Enrich, embed and upsert one batch (in the writer's thread)."""
        assets = self._enricher.enrich(batch.images, context.document_id)
        points = self._points.build(
            batch.chunks,
            assets,
            [e.image for e in batch.images],
            context=context,
            first_index=first_index,
        )
        self._store.upsert(points)
        return _Written(
            chunks=len(batch.chunks),
            images=len(assets),
            points=len(points),
            image_keys={asset.key for asset in assets},
        )
