"""The document catalog and the caption cache, in one SQLite file under the data directory.

The catalog is the source of truth for document status and versions; the vector
store holds the points. SQLite in WAL mode lets the API and a CLI read while one
writer ingests.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from mmrag.errors import DocumentNotFoundError
from mmrag.types import DocumentRecord, DocumentStatus

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    document_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    path TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    status TEXT NOT NULL,
    version INTEGER NOT NULL,
    file_type TEXT NOT NULL DEFAULT '',
    error TEXT NOT NULL DEFAULT '',
    warnings TEXT NOT NULL DEFAULT '[]',
    pages INTEGER NOT NULL DEFAULT 0,
    chunks INTEGER NOT NULL DEFAULT 0,
    images INTEGER NOT NULL DEFAULT 0,
    points INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_tenant ON documents (tenant, path);
CREATE TABLE IF NOT EXISTS captions (
    cache_key TEXT NOT NULL,
    image_id TEXT NOT NULL,
    caption TEXT NOT NULL,
    PRIMARY KEY (cache_key, image_id)
);
"""
_COLUMNS = (
    "document_id",
    "path",
    "content_hash",
    "status",
    "version",
    "file_type",
    "error",
    "warnings",
    "pages",
    "chunks",
    "images",
    "points",
    "created_at",
    "updated_at",
)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _record(row: sqlite3.Row) -> DocumentRecord:
    return DocumentRecord(
        document_id=row["document_id"],
        path=row["path"],
        content_hash=row["content_hash"],
        status=DocumentStatus(row["status"]),
        version=row["version"],
        file_type=row["file_type"],
        error=row["error"],
        warnings=tuple(json.loads(row["warnings"])),
        pages=row["pages"],
        chunks=row["chunks"],
        images=row["images"],
        points=row["points"],
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
    )


class Catalog:
    """Documents (id, path, hash, status, version, counts) and cached captions."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.executescript(_SCHEMA)

    def get(self, document_id: str) -> DocumentRecord | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM documents WHERE document_id = ?", (document_id,)
            ).fetchone()
        return _record(row) if row else None

    def require(self, document_id: str) -> DocumentRecord:
        record = self.get(document_id)
        if record is None:
            raise DocumentNotFoundError(document_id)
        return record

    def list(self, tenant: str) -> list[DocumentRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM documents WHERE tenant = ? ORDER BY path", (tenant,)
            ).fetchall()
        return [_record(row) for row in rows]

    def save(self, tenant: str, record: DocumentRecord) -> DocumentRecord:
        """Insert or replace a record; created_at is kept, updated_at is now."""
        now = _now()
        existing = self.get(record.document_id)
        created = existing.created_at if existing and existing.created_at else now
        values = {name: getattr(record, name) for name in _COLUMNS[:-2]}
        values["status"] = record.status.value
        values["warnings"] = json.dumps(list(record.warnings))
        with self._lock:
            self._db.execute(
                f"INSERT OR REPLACE INTO documents (tenant, {', '.join(_COLUMNS)}) "
                f"VALUES (?, {', '.join('?' * len(_COLUMNS))})",
                (tenant, *values.values(), created.isoformat(), now.isoformat()),
            )
        return self.require(record.document_id)

    def delete(self, document_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM documents WHERE document_id = ?", (document_id,))

    def cached_captions(self, cache_key: str, image_ids: Iterable[str]) -> dict[str, str]:
        ids = list(dict.fromkeys(image_ids))
        found: dict[str, str] = {}
        for start in range(0, len(ids), 500):  # SQLite's bound-parameter limit
            part = ids[start : start + 500]
            with self._lock:
                rows = self._db.execute(
                    f"SELECT image_id, caption FROM captions WHERE cache_key = ? AND image_id IN "
                    f"({', '.join('?' * len(part))})",
                    (cache_key, *part),
                ).fetchall()
            found.update({row["image_id"]: row["caption"] for row in rows})
        return found

    def store_captions(self, cache_key: str, captions: dict[str, str]) -> None:
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO captions (cache_key, image_id, caption) VALUES (?, ?, ?)",
                [(cache_key, image_id, caption) for image_id, caption in captions.items()],
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()
