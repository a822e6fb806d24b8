"""Fixtures with real Redis and PostgreSQL servers (see `mmrag.testing.servers`).

One server of each kind per test session, started on first use; each test gets an empty
Redis (`redis_url`) or a database of its own (`postgres_url`). Register with
``pytest_plugins = ["tests.servers_fixtures"]`` or ``pytest -p tests.servers_fixtures``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
import redis
from psycopg import sql

from mmrag.testing.servers import RunningServer, postgres_database_url, run_postgres, run_redis


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A redis-server with its append-only file on, for the whole session."""
    with run_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A fresh PostgreSQL cluster with role and database ``mmrag``, for the whole session."""
    with run_postgres(tmp_path_factory.mktemp("postgres")) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RunningServer) -> str:
    """The URL of the session's Redis, emptied (FLUSHALL) for this test."""
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
    return redis_server.url


@pytest.fixture
def postgres_url(postgres_server: RunningServer) -> Iterator[str]:
    """The SQLAlchemy URL of a new, empty database owned by ``mmrag``, dropped after the test."""
    name = f"t_{uuid.uuid4().hex}"
    admin_url = postgres_server.url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield postgres_database_url(postgres_server.port, name)
    if not postgres_server.running:  # a test stopped the server and did not start it again
        return
    with psycopg.connect(admin_url, autocommit=True) as connection:
        # FORCE: connections the test left open (an engine not disposed) must not block the drop.
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
