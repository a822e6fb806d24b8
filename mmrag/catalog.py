"""The document catalog and the caption cache (SQLite by default, PostgreSQL when
``catalog.url`` names one).

The catalog is the source of truth for document status and versions; the vector
store holds the points. Every document read and write names its tenant: a document
of another tenant is simply not found.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Table, and_, delete, func, select, update

from mmrag.db import captions, documents, open_engine
from mmrag.errors import DocumentNotFoundError
from mmrag.types import DocumentRecord, DocumentStatus

_FIELDS = (
    "path",
    "filename",
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
    "run_id",
)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # SQLite drops the zone


def _record(row: Any) -> DocumentRecord:
    return DocumentRecord(
        document_id=row.document_id,
        path=row.path,
        filename=row.filename,
        content_hash=row.content_hash,
        status=DocumentStatus(row.status),
        version=row.version,
        file_type=row.file_type,
        error=row.error,
        warnings=tuple(json.loads(row.warnings)),
        pages=row.pages,
        chunks=row.chunks,
        images=row.images,
        points=row.points,
        run_id=row.run_id,
        created_at=_aware(row.created_at),
        updated_at=_aware(row.updated_at),
    )


def _values(record: DocumentRecord) -> dict[str, Any]:
    values = {name: getattr(record, name) for name in _FIELDS}
    values["status"] = record.status.value
    values["warnings"] = json.dumps(list(record.warnings))
    return values


class Catalog:
    """Documents (id, path, hash, status, version, counts) and cached captions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> Catalog:
        return cls(open_engine(url))

    def get(self, tenant: str, document_id: str) -> DocumentRecord | None:
        query = select(documents).where(
            and_(documents.c.document_id == document_id, documents.c.tenant == tenant)
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return _record(row) if row else None

    def require(self, tenant: str, document_id: str) -> DocumentRecord:
        record = self.get(tenant, document_id)
        if record is None:
            raise DocumentNotFoundError(document_id)
        return record

    def list(
        self, tenant: str, *, limit: int | None = None, offset: int = 0
    ) -> list[DocumentRecord]:
        query = (
            select(documents)
            .where(documents.c.tenant == tenant)
            .order_by(documents.c.path, documents.c.document_id)
            .limit(limit)
            .offset(offset)
        )
        with self.engine.connect() as connection:
            return [_record(row) for row in connection.execute(query)]

    def count(self, tenant: str) -> int:
        query = select(func.count()).select_from(documents).where(documents.c.tenant == tenant)
        with self.engine.connect() as connection:
            return int(connection.execute(query).scalar_one())

    @staticmethod
    def _update_row(connection: Connection, tenant: str, record: DocumentRecord) -> bool:
        changed = connection.execute(
            update(documents)
            .where(
                and_(documents.c.document_id == record.document_id, documents.c.tenant == tenant)
            )
            .values(**_values(record), updated_at=_now())
        ).rowcount
        return bool(changed)

    def _insert(self, table: Table) -> Any:
        """The dialect's INSERT, which has ON CONFLICT (SQLite and PostgreSQL alike)."""
        from sqlalchemy.dialects import postgresql, sqlite

        if self.engine.dialect.name == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def save(self, tenant: str, record: DocumentRecord) -> DocumentRecord:
        """Insert or replace a record in one statement (safe when two processes save the
        same new document at once); created_at is kept, updated_at is now."""
        now = _now()
        values = _values(record)
        statement = (
            self._insert(documents)
            .values(
                document_id=record.document_id,
                tenant=tenant,
                **values,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_update(
                index_elements=[documents.c.document_id],
                set_={**values, "updated_at": now},
                where=documents.c.tenant == tenant,  # an id of another tenant is not touched
            )
        )
        with self.engine.begin() as connection:
            written = connection.execute(statement).rowcount
        if not written:
            raise DocumentNotFoundError(record.document_id)
        return self.require(tenant, record.document_id)

    def update(self, tenant: str, record: DocumentRecord) -> bool:
        """Change an existing record only: a deleted document is never re-created (a
        worker finishing a job whose document was deleted meanwhile)."""
        with self.engine.begin() as connection:
            return self._update_row(connection, tenant, record)

    def delete(self, tenant: str, document_id: str) -> bool:
        with self.engine.begin() as connection:
            removed = connection.execute(
                delete(documents).where(
                    and_(documents.c.document_id == document_id, documents.c.tenant == tenant)
                )
            ).rowcount
        return bool(removed)

    def cached_captions(self, cache_key: str, image_ids: Iterable[str]) -> dict[str, str]:
        ids = list(dict.fromkeys(image_ids))
        found: dict[str, str] = {}
        with self.engine.connect() as connection:
            for start in range(0, len(ids), 500):  # bound-parameter limits
                part = ids[start : start + 500]
                rows = connection.execute(
                    select(captions.c.image_id, captions.c.caption).where(
                        and_(captions.c.cache_key == cache_key, captions.c.image_id.in_(part))
                    )
                )
                found.update({row.image_id: row.caption for row in rows})
        return found

    def store_captions(self, cache_key: str, texts: dict[str, str]) -> None:
        if not texts:
            return
        known = self.cached_captions(cache_key, texts)
        fresh = [
            {"cache_key": cache_key, "image_id": image_id, "caption": caption}
            for image_id, caption in texts.items()
            if image_id not in known
        ]
        if not fresh:
            return
        # Another worker may cache some of the same images meanwhile (the same text).
        statement = self._insert(captions).on_conflict_do_nothing()
        with self.engine.begin() as connection:
            connection.execute(statement, fresh)

    def close(self) -> None:
        self.engine.dispose()
