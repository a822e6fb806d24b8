"""Documents as a tenant sees them: submit a file or an upload (as an ingest job),
delete one. The one place that decides whether a file needs indexing at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

from mmrag.blobs import BlobStore, original_key, renders_prefix, upload_key
from mmrag.catalog import Catalog
from mmrag.errors import DocumentError, UnsupportedFileError
from mmrag.files import content_hash, document_id_for, printable
from mmrag.jobs import IngestJob, JobBook, JobState
from mmrag.parsing.filetypes import detect_file_type
from mmrag.queue import JobQueue
from mmrag.store import PointFilter, VectorStore
from mmrag.types import DocumentRecord, DocumentStatus

_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")
MAX_REGIONS = 10_000  # points shown for one page


def safe_filename(filename: str) -> str:
    """The base name with anything odd replaced; never empty, never a path."""
    name = _UNSAFE.sub("_", Path(filename.replace("\\", "/")).name).strip(" .")
    return name or "upload"


@dataclass(frozen=True)
class Submission:
    """A file after submission: its document, and the job that indexes it (None when
    there is nothing to do: unchanged). A file that could not be submitted at all has
    no record and an ``error``."""

    source: str  # the path or upload name given
    record: DocumentRecord | None
    job: IngestJob | None
    error: str = ""

    @property
    def outcome(self) -> str:
        """indexed, unchanged, failed, or the job's state while it is not finished."""
        if self.record is None or self.error:
            return "failed"
        if self.job is None:
            return "unchanged"
        if self.job.state is JobState.DONE:
            return "indexed"
        if self.job.state is JobState.FAILED:
            return "failed"
        return self.job.state.value

    @property
    def message(self) -> str:
        """Why it failed, if it did."""
        if self.error:
            return self.error
        if self.job is not None and self.job.state is JobState.FAILED:
            return self.job.error
        return ""


class DocumentService:
    """Submits documents as jobs, and deletes them (cancelling their jobs)."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        jobs: JobBook,
        blobs: BlobStore,
        queue: JobQueue,
        store: Callable[[], VectorStore],
    ) -> None:
        self._catalog = catalog
        self._jobs = jobs
        self._blobs = blobs
        self._queue = queue
        self._store = store  # opened only by a delete: submitting needs no store

    def submit_file(
        self, tenant: str, path: Path, *, force: bool = False, dispatch: bool = True
    ) -> Submission:
        """A local file, identified by its absolute path: a changed file is a new version
        of the same document. ``dispatch=False`` leaves running the job to the caller."""
        source = path.resolve()
        digest = content_hash(source)
        document_id = document_id_for(tenant, str(source))
        given = printable(path)
        unchanged = self._unchanged(given, tenant, document_id, digest, force)
        if unchanged is not None:
            return unchanged
        key = original_key(document_id, safe_filename(printable(path.name)))
        self._blobs.copy_in(key, source)
        return self._enqueue(
            given,
            tenant,
            document_id,
            printable(source),
            printable(path.name),
            key,
            digest,
            force,
            dispatch,
        )

    def submit_files(
        self, tenant: str, paths: Iterable[Path], *, force: bool = False, dispatch: bool = True
    ) -> Iterator[Submission]:
        """`submit_file` for each path, one at a time; a file that cannot even be read
        becomes a failed submission with its reason, and the rest go on."""
        for path in paths:
            try:
                yield self.submit_file(tenant, path, force=force, dispatch=dispatch)
            except (DocumentError, OSError) as exc:
                reason = exc.reason if isinstance(exc, DocumentError) else exc.strerror or exc
                yield Submission(printable(path), None, None, f"{printable(path)}: {reason}")

    def submit_upload(
        self, tenant: str, filename: str, stream: BinaryIO, *, max_bytes: int
    ) -> Submission:
        """An uploaded file read from ``stream``, refused past ``max_bytes``
        (`TooLargeError`, nothing kept): stored in the upload area, then `submit_received`."""
        key = upload_key(tenant, safe_filename(filename))
        try:
            self._blobs.write(key, stream, max_bytes=max_bytes)
        except BaseException:
            self._blobs.delete(key.rsplit("/", 1)[0] + "/")
            raise
        return self.submit_received(tenant, filename, key)

    def submit_received(self, tenant: str, filename: str, key: str) -> Submission:
        """An upload already received under ``key`` (an `upload_key`: a folder of its own),
        identified by its content: the same bytes again are unchanged; equal names never
        collide. Its type is checked first, cheaply (no package is opened: parsing is the
        worker's job). The upload is used up: moved to the document's original, or deleted."""
        if not key.startswith("uploads/") or key.count("/") != 3:
            raise ValueError(f"not an upload key: {key!r}")
        name = safe_filename(filename)
        try:
            path = self._blobs.path(key)
            try:
                detect_file_type(path, inspect_packages=False)
            except UnsupportedFileError as exc:
                raise UnsupportedFileError(filename, exc.reason) from exc
            digest = content_hash(path)
            document_id = document_id_for(tenant, f"upload:{digest}")
            unchanged = self._unchanged(filename, tenant, document_id, digest, force=False)
            if unchanged is not None:
                return unchanged
            stored = original_key(document_id, name)
            self._blobs.move(key, stored)
        finally:
            self._blobs.delete(key.rsplit("/", 1)[0] + "/")
        return self._enqueue(
            filename, tenant, document_id, f"upload:{name}", name, stored, digest, False, True
        )

    def _unchanged(
        self, given: str, tenant: str, document_id: str, digest: str, force: bool
    ) -> Submission | None:
        """The one "unchanged" check: indexed with this content, or already on its way."""
        existing = self._catalog.get(tenant, document_id)
        if existing is None or force or existing.content_hash != digest:
            return None
        if existing.status is DocumentStatus.INDEXED:
            return Submission(given, existing, None)
        latest = self._jobs.latest(tenant, document_id)
        if latest is not None and not latest.state.terminal and latest.content_hash == digest:
            return Submission(given, existing, latest)
        return None

    def _enqueue(
        self,
        given: str,
        tenant: str,
        document_id: str,
        origin: str,
        filename: str,
        key: str,
        digest: str,
        force: bool,
        dispatch: bool,
    ) -> Submission:
        self._jobs.cancel(tenant, document_id)  # an older version still queued: superseded
        existing = self._catalog.get(tenant, document_id)
        if existing is None:
            version = 1
            record = DocumentRecord(
                document_id, origin, digest, DocumentStatus.QUEUED, version, filename=filename
            )
        else:
            version = existing.version + (existing.content_hash != digest)
            record = replace(
                existing,
                path=origin,
                filename=filename,
                content_hash=digest,
                status=DocumentStatus.QUEUED,
                version=version,
                error="",
            )
        record = self._catalog.save(tenant, record)
        job = self._jobs.add(
            IngestJob.new(
                tenant=tenant,
                document_id=document_id,
                blob_key=key,
                filename=filename,
                content_hash=digest,
                version=version,
                force=force,
            )
        )
        if dispatch:
            self._queue.dispatch(job.job_id)
        return Submission(given, record, job)

    def regions(self, tenant: str, document_id: str, page: int) -> list[dict[str, Any]]:
        """The payloads indexed on one page of the document's current version, in the
        order the parser found them."""
        record = self._catalog.require(tenant, document_id)
        where = PointFilter(
            match={
                "tenant": tenant,
                "document_id": document_id,
                "run_id": record.run_id,
                "page": page,
            }
        )
        payloads = self._store().payloads(where, limit=MAX_REGIONS)
        return sorted(payloads, key=lambda payload: payload.get("element_index", 0))

    def delete(self, tenant: str, document_id: str) -> DocumentRecord:
        """Cancel the document's jobs, remove its points, images, original and record."""
        record = self._catalog.require(tenant, document_id)
        # The store first: when it cannot be reached (or is held by another process),
        # nothing has changed yet, and a running job goes on.
        self._store().delete(PointFilter(match={"tenant": tenant, "document_id": document_id}))
        self._jobs.cancel(tenant, document_id)
        self._blobs.delete(f"images/{document_id}/")
        self._blobs.delete(f"originals/{document_id}/")
        self._blobs.delete(renders_prefix(document_id))
        self._catalog.delete(tenant, document_id)
        return record
