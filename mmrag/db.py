"""The shared state's tables and engine: SQLite by default, PostgreSQL for several machines.

One SQLAlchemy 2 Core schema serves both; the catalog (`mmrag.catalog`) and the job
book (`mmrag.jobs`) are thin classes over it. SQLite runs in WAL mode with a busy
timeout so the API, a CLI and a worker process can share one file.
"""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.exc import ArgumentError, OperationalError

from mmrag.errors import ConfigError, StoreError

metadata = MetaData()

documents = Table(
    "documents",
    metadata,
    Column("document_id", String(32), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("path", Text, nullable=False),
    Column("filename", Text, nullable=False, default=""),
    Column("content_hash", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    Column("file_type", String(16), nullable=False, default=""),
    Column("error", Text, nullable=False, default=""),
    Column("warnings", Text, nullable=False, default="[]"),
    Column("pages", Integer, nullable=False, default=0),
    Column("chunks", Integer, nullable=False, default=0),
    Column("images", Integer, nullable=False, default=0),
    Column("points", Integer, nullable=False, default=0),
    Column("run_id", String(32), nullable=False, default=""),  # the run whose points stand
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("documents_tenant_path", "tenant", "path"),
)

captions = Table(
    "captions",
    metadata,
    Column("cache_key", String(64), primary_key=True),
    Column("image_id", String(64), primary_key=True),
    Column("caption", Text, nullable=False),
)

jobs = Table(
    "jobs",
    metadata,
    Column("job_id", String(32), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("document_id", String(32), nullable=False),
    Column("blob_key", Text, nullable=False),
    Column("filename", Text, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("force", Integer, nullable=False, default=0),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("retries", Integer, nullable=False, default=0),
    Column("run_id", String(32), nullable=False, default=""),
    Column("error", Text, nullable=False, default=""),
    Column("error_kind", String(64), nullable=False, default=""),
    Column("progress", Text, nullable=False, default="{}"),
    Column("lease_owner", String(128), nullable=False, default=""),
    Column("lease_expires", Float, nullable=False, default=0.0),  # epoch seconds
    Column("created_at", Float, nullable=False),
    Column("started_at", Float, nullable=False, default=0.0),
    Column("finished_at", Float, nullable=False, default=0.0),
    Index("jobs_state_lease", "state", "lease_expires"),
    Index("jobs_tenant_document", "tenant", "document_id"),
)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def open_engine(url: str) -> Engine:
    """An engine with the schema in place; ``sqlite:///PATH`` creates the folder."""
    try:
        if url.startswith("sqlite"):
            path = url.split(":///", 1)[-1]
            if path and path != ":memory:":
                os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
    except (ArgumentError, ImportError) as exc:
        raise ConfigError(f"catalog.url {_redacted(url)!r} is not usable: {exc}") from exc
    try:
        metadata.create_all(engine)
        _add_missing_columns(engine)
    except OperationalError as exc:
        raise StoreError(f"the catalog at {_redacted(url)} cannot be opened: {exc.orig}") from exc
    return engine


def _add_missing_columns(engine: Engine) -> None:
    """Catalogs written by an older version lack some columns: add them, with defaults."""
    inspector = inspect(engine)
    for table in metadata.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            kind = column.type.compile(engine.dialect)
            default = column.default.arg if column.default is not None else ""  # type: ignore[attr-defined]
            literal = f"'{default}'" if isinstance(default, str) else str(default)
            with engine.begin() as connection:
                connection.execute(
                    text(
                        f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind} "
                        f"NOT NULL DEFAULT {literal}"
                    )
                )


def _redacted(url: str) -> str:
    """The URL without its password, for messages."""
    head, at, tail = url.rpartition("@")
    if not at or ":" not in head.split("//", 1)[-1]:
        return url
    scheme, _, credentials = head.partition("//")
    user = credentials.split(":", 1)[0]
    return f"{scheme}//{user}:***@{tail}"
