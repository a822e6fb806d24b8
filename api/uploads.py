"""Uploads: saved under the data directory, checked, queued, ingested by one background
thread (the embedded store has one writer; a Qdrant server can take several workers).

An upload keeps its file name: uploading ``report.pdf`` again is a new version of the
same document, and an unchanged file is recognised at once with no model work.
"""

from __future__ import annotations

import logging
import queue
import re
import shutil
import threading
import uuid
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

from fastapi import HTTPException

from api.metrics import Metrics
from mmrag.errors import UnsupportedFileError
from mmrag.parsing.filetypes import detect_file_type
from mmrag.pipeline import content_hash, document_id_for
from mmrag.services import Services
from mmrag.types import DocumentRecord, DocumentStatus

logger = logging.getLogger("mmrag.api")
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")
_CHUNK = 1 << 20


def safe_name(filename: str) -> str:
    """The base name with anything odd replaced; never empty, never a path."""
    name = _UNSAFE.sub("_", Path(filename.replace("\\", "/")).name).strip(" .")
    return name or "upload"


class IngestQueue:
    def __init__(self, *, services: Services, metrics: Metrics) -> None:
        self._services = services
        self._metrics = metrics
        self._queue: queue.Queue[Path | None] = queue.Queue()
        self._folder = services.settings.files_dir / "uploads"
        self._thread = threading.Thread(target=self._run, name="mmrag-ingest", daemon=True)

    def start(self) -> None:
        self._folder.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=60)

    def join(self) -> None:
        """Wait until every queued upload is processed (tests, graceful shutdown)."""
        self._queue.join()

    def accept(self, filename: str, stream: BinaryIO, max_bytes: int) -> tuple[str, str]:
        """Save, check and queue one upload; returns (document id, status)."""
        path = self._folder / safe_name(filename)
        # Saved under its own name in a private folder first: the type check reads the
        # extension, and a half-written or refused file never replaces an accepted one.
        incoming = self._folder / ".incoming" / uuid.uuid4().hex / path.name
        incoming.parent.mkdir(parents=True)
        try:
            self._save(stream, incoming, max_bytes, filename)
            detect_file_type(incoming)
            incoming.replace(path)
        except UnsupportedFileError as exc:
            raise UnsupportedFileError(filename, exc.reason) from exc
        finally:
            shutil.rmtree(incoming.parent, ignore_errors=True)
        return self._enqueue(path)

    def _save(self, stream: BinaryIO, target: Path, max_bytes: int, filename: str) -> None:
        written = 0
        with target.open("wb") as out:
            while block := stream.read(_CHUNK):
                written += len(block)
                if written > max_bytes:
                    raise HTTPException(
                        413,
                        f"{filename}: larger than api.max_upload_mb ({max_bytes / 2**20:.0f} MB)",
                    )
                out.write(block)

    def _enqueue(self, path: Path) -> tuple[str, str]:
        catalog = self._services.catalog
        tenant = self._services.settings.ingest.tenant
        document_id = document_id_for(tenant, path)
        existing = catalog.get(document_id)
        if (
            existing is not None
            and existing.status is DocumentStatus.INDEXED
            and existing.content_hash == content_hash(path)
        ):
            return document_id, existing.status.value  # unchanged: nothing to do
        record = existing or DocumentRecord.new(
            document_id, str(path.resolve()), DocumentStatus.QUEUED
        )
        catalog.save(tenant, replace(record, status=DocumentStatus.QUEUED, error=""))
        self._queue.put(path)
        self._metrics.queue.set(self._queue.qsize())
        return document_id, DocumentStatus.QUEUED.value

    def _run(self) -> None:
        while (path := self._queue.get()) is not None:
            try:
                result = self._services.ingestor.ingest_file(path)
                self._metrics.ingested.labels(result.outcome).inc()
                if result.outcome == "failed":
                    logger.warning("upload failed: %s", result.error)
            finally:
                self._queue.task_done()
                self._metrics.queue.set(self._queue.qsize())
        self._queue.task_done()
