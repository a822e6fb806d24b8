"""The real-server fixtures give working servers, restartable, and clean up after themselves."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
import sqlalchemy
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, inspect, select

from mmrag.testing.servers import RunningServer, ServerError, run_postgres, run_redis


def _notes_table(metadata: MetaData) -> Table:
    return Table(
        "notes",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("text", String(200), nullable=False),
    )


def test_redis_round_trip(redis_url: str) -> None:
    with redis.Redis.from_url(redis_url) as client:
        client.set("greeting", "hello")
        assert client.get("greeting") == b"hello"


def test_redis_url_starts_empty(redis_url: str) -> None:
    with redis.Redis.from_url(redis_url) as client:
        assert client.dbsize() == 0
        client.set("left-behind", "1")  # the next test that asks for redis_url must not see it


def test_redis_url_is_flushed_between_tests(redis_url: str) -> None:
    with redis.Redis.from_url(redis_url) as client:
        assert client.get("left-behind") is None


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_redis_data_survives_restart(tmp_path: Path, how: str) -> None:
    with run_redis(tmp_path) as server:
        with redis.Redis.from_url(server.url) as client:
            client.rpush("queue", "job-1", "job-2")
        first_pid = server.process.pid
        getattr(server, how)()  # a clean shutdown, or a crash
        assert not server.running
        server.start()
        assert server.process.pid != first_pid
        with redis.Redis.from_url(server.url) as client:
            assert client.lrange("queue", 0, -1) == [b"job-1", b"job-2"]


def test_redis_stopped_when_the_body_raises(tmp_path: Path) -> None:
    with pytest.raises(KeyError), run_redis(tmp_path) as server:
        raise KeyError("boom")
    assert server.process.poll() is not None


def test_missing_redis_binary_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ServerError, match="install redis-server"), run_redis(tmp_path):
        pass


def test_postgres_create_insert_select(postgres_url: str) -> None:
    engine = sqlalchemy.create_engine(postgres_url)
    metadata = MetaData()
    notes = _notes_table(metadata)
    try:
        metadata.create_all(engine)
        with engine.begin() as connection:
            connection.execute(insert(notes), [{"text": "first"}, {"text": "second"}])
        with engine.connect() as connection:
            rows = connection.execute(select(notes.c.text).order_by(notes.c.id)).scalars().all()
        assert rows == ["first", "second"]
        assert engine.dialect.driver == "psycopg"
    finally:
        engine.dispose()


def test_postgres_url_databases_are_isolated(
    postgres_server: RunningServer, postgres_url: str
) -> None:
    assert postgres_url != postgres_server.url
    engine = sqlalchemy.create_engine(postgres_url)
    other = sqlalchemy.create_engine(postgres_server.url)
    try:
        _notes_table(MetaData()).create(engine)
        assert inspect(engine).has_table("notes")
        assert not inspect(other).has_table("notes")
    finally:
        engine.dispose()
        other.dispose()


def test_postgres_url_is_fresh_per_test(postgres_url: str) -> None:
    engine = sqlalchemy.create_engine(postgres_url)
    try:
        assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()


def test_postgres_data_survives_kill_and_cleans_up(tmp_path: Path) -> None:
    with run_postgres(tmp_path) as server:
        engine = sqlalchemy.create_engine(server.url)
        notes = _notes_table(MetaData())
        notes.create(engine)
        with engine.begin() as connection:
            connection.execute(insert(notes), [{"text": "committed"}])
        engine.dispose()
        server.kill()  # a crash: committed rows must come back after recovery
        server.start()
        with engine.connect() as connection:
            assert connection.execute(select(notes.c.text)).scalars().all() == ["committed"]
        engine.dispose()
        server.restart()
        with engine.connect() as connection:
            assert connection.execute(select(notes.c.text)).scalars().all() == ["committed"]
        engine.dispose()
    assert not server.running
    if server.data_dir.parent != tmp_path:  # as root: a temporary folder the postgres user owns
        assert not server.data_dir.exists()
    with pytest.raises(sqlalchemy.exc.OperationalError):
        sqlalchemy.create_engine(server.url, connect_args={"connect_timeout": 2}).connect()
