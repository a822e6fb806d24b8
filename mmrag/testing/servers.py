"""Real Redis and PostgreSQL servers for tests and benchmarks, on 127.0.0.1 and a free port.

    with run_redis(tmp_path / "redis") as redis_server:
        client = redis.Redis.from_url(redis_server.url)
    with run_postgres(tmp_path / "postgres") as postgres_server:
        engine = sqlalchemy.create_engine(postgres_server.url)

Each server is a child process of the caller, stopped (and its files removed where they
live outside ``folder``) when the ``with`` block ends, also when the block raises.
`RunningServer.stop`, `.kill` and `.start` restart it on the same port and data, to test
what survives a clean shutdown or a crash. The binaries come from the system packages
``redis-server`` and ``postgresql``, which ``scripts/setup.sh`` installs.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

HOST = "127.0.0.1"
POSTGRES_USER = "mmrag"
POSTGRES_PASSWORD = "mmrag"
POSTGRES_DATABASE = "mmrag"
_POSTGRES_SUPERUSER = "postgres"  # the initdb superuser; trust auth, so no password
_POSTGRES_BIN_GLOB = "/usr/lib/postgresql/*/bin"  # Debian/Ubuntu layout, one folder per version
_LOG_TAIL_CHARS = 2000


class ServerError(RuntimeError):
    """A test server could not be found, started or stopped; the message says which and why."""


class OsUser(NamedTuple):
    """Who a server process runs as, when not as the caller."""

    name: str
    uid: int
    gid: int
    home: str


class RunningServer:
    """A server process on `HOST`:`port` and its connection `url`.

    Its log is `log_path` in `folder`; its data is in `data_dir`. `process` is the current
    server process; it changes when the server is restarted.
    """

    def __init__(
        self,
        *,
        name: str,
        url: str,
        port: int,
        folder: Path,
        data_dir: Path,
        command: list[str],
        is_ready: Callable[[], bool],
        stop_signal: signal.Signals,
        run_as: OsUser | None = None,
        cwd: Path | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        self.name = name
        self.url = url
        self.port = port
        self.folder = folder
        self.data_dir = data_dir
        self.log_path = folder / f"{name}.log"
        self._command = command
        self._is_ready = is_ready
        self._stop_signal = stop_signal
        self._run_as = run_as
        self._cwd = cwd or folder
        self._start_timeout = start_timeout
        self._process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"RunningServer(name={self.name!r}, url={self.url!r}, folder={self.folder!r})"

    @property
    def process(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise ServerError(f"{self.name} is not running")
        return self._process

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, *, timeout: float | None = None) -> None:
        """Start the server (again) on the same port and data; return once it answers."""
        if self.running:
            raise ServerError(f"{self.name} is already running (pid {self.process.pid})")
        run_as = self._run_as
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self._command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self._cwd,
                # Own process group, so kill() also takes the server's children (postgres backends,
                # redis rewrite forks) and a Ctrl-C at the terminal reaches only the test runner.
                start_new_session=True,
                user=run_as.uid if run_as else None,
                group=run_as.gid if run_as else None,
                extra_groups=[] if run_as else None,
                env=_environment(run_as),
            )
        limit = self._start_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        while not self._is_ready():
            if self._process.poll() is not None:
                raise ServerError(
                    f"{self.name} exited with status {self._process.returncode} while starting "
                    f"({' '.join(self._command)}); log {self.log_path}:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                self.kill()
                raise ServerError(
                    f"{self.name} did not answer on {HOST}:{self.port} within "
                    f"{limit:.0f} s; log {self.log_path}:\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.05)

    def stop(self, *, timeout: float = 15.0) -> None:
        """Shut down cleanly (redis writes its append-only file; postgres a fast shutdown).

        Falls back to `kill` when the server has not exited after ``timeout`` seconds.
        """
        if not self.running:
            return
        process = self.process
        process.send_signal(self._stop_signal)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """Kill the server and its children at once, as a crash would (SIGKILL)."""
        # An exited, reaped server's pid (and so group id) may belong to someone else by now.
        if self._process is None or self._process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait()

    def restart(self) -> None:
        """`stop` then `start`: same port, same data."""
        self.stop()
        self.start()

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-_LOG_TAIL_CHARS:]
        except FileNotFoundError:
            return "(no log written)"


@contextlib.contextmanager
def run_redis(folder: Path, *, start_timeout: float = 10.0) -> Iterator[RunningServer]:
    """Run ``redis-server`` with its append-only file and log in ``folder``.

    Yields once the server answers PING at ``redis://127.0.0.1:PORT/0``; stops it on exit.
    """
    import redis

    executable = shutil.which("redis-server")
    if executable is None:
        raise ServerError(
            "redis-server not found on PATH: install redis-server (scripts/setup.sh does)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()

    def is_ready() -> bool:
        client = redis.Redis(host=HOST, port=port, socket_connect_timeout=1, socket_timeout=1)
        try:
            return bool(client.ping())
        except redis.RedisError:  # refused while starting, or still loading the AOF
            return False
        finally:
            client.close()

    # fmt: off
    command = [
        executable, "--bind", HOST, "--port", str(port), "--dir", str(folder.resolve()),
        "--appendonly", "yes", "--save", "", "--daemonize", "no", "--logfile", "",
    ]
    # fmt: on
    server = RunningServer(
        name="redis",
        url=f"redis://{HOST}:{port}/0",
        port=port,
        folder=folder,
        data_dir=folder,
        command=command,
        is_ready=is_ready,
        stop_signal=signal.SIGTERM,  # redis: flush the append-only file and exit
        start_timeout=start_timeout,
    )
    try:
        server.start()
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def run_postgres(
    folder: Path, *, bin_dir: Path | None = None, start_timeout: float = 30.0
) -> Iterator[RunningServer]:
    """Run a fresh PostgreSQL cluster; its log goes to ``folder``.

    Yields once role and database ``mmrag`` (password ``mmrag``) exist, with the SQLAlchemy
    URL ``postgresql+psycopg://mmrag:mmrag@127.0.0.1:PORT/mmrag``. The role may create
    databases. fsync is off: fast, and safe against a server crash (`RunningServer.kill`),
    not against a machine crash.

    PostgreSQL refuses to run as root, so as root the cluster runs as the ``postgres`` OS
    user, in a temporary folder under /tmp it can reach (pytest's tmp folders are 0700);
    that folder is removed on exit. Otherwise the data lives in ``folder / "data"``.
    """
    bin_dir = bin_dir or find_postgres_bin_dir()
    folder.mkdir(parents=True, exist_ok=True)
    run_as = _os_user(_POSTGRES_SUPERUSER) if os.geteuid() == 0 else None
    scratch = Path(tempfile.mkdtemp(prefix="mmrag-postgres-")) if run_as else None
    try:
        if scratch is not None:
            scratch.chmod(0o755)
        data_dir = (scratch or folder) / "data"
        server = _prepare_postgres(bin_dir, data_dir, folder, run_as, start_timeout)
        try:
            server.start()
            _create_mmrag_role(server.port)
            yield server
        finally:
            server.stop()
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def find_postgres_bin_dir() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding initdb, else initdb's on PATH."""
    candidates = [Path(path) for path in Path("/").glob(_POSTGRES_BIN_GLOB.lstrip("/"))]
    candidates = [path for path in candidates if (path / "initdb").is_file()]
    if candidates:
        return max(candidates, key=_version_key)
    on_path = shutil.which("initdb")
    if on_path is not None:
        return Path(on_path).resolve().parent
    raise ServerError(
        f"PostgreSQL not found (no initdb in {_POSTGRES_BIN_GLOB} or on PATH): "
        "install postgresql (scripts/setup.sh does)"
    )


def postgres_database_url(port: int, database: str = POSTGRES_DATABASE) -> str:
    """The SQLAlchemy URL (psycopg 3 driver) of ``database`` as role ``mmrag``."""
    credentials = f"{POSTGRES_USER}:{POSTGRES_PASSWORD}"
    return f"postgresql+psycopg://{credentials}@{HOST}:{port}/{database}"


def free_port() -> int:
    """A TCP port on `HOST` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _prepare_postgres(
    bin_dir: Path, data_dir: Path, folder: Path, run_as: OsUser | None, start_timeout: float
) -> RunningServer:
    """Run initdb into ``data_dir`` and describe (not start) the server on a free port."""
    import psycopg

    for program in ("initdb", "postgres"):
        if not (bin_dir / program).is_file():
            raise ServerError(f"{bin_dir / program} not found: install postgresql")
    data_dir.mkdir(parents=True)
    if run_as is not None:
        os.chown(data_dir, run_as.uid, run_as.gid)
    # --no-sync and locale C keep initdb around one second.
    # fmt: off
    initdb = [
        str(bin_dir / "initdb"), "--pgdata", str(data_dir), "--auth", "trust",
        "--username", _POSTGRES_SUPERUSER, "--encoding", "UTF8", "--locale", "C", "--no-sync",
    ]
    # fmt: on
    result = subprocess.run(
        initdb,
        capture_output=True,
        text=True,
        cwd=data_dir.parent,
        user=run_as.uid if run_as else None,
        group=run_as.gid if run_as else None,
        extra_groups=[] if run_as else None,
        env=_environment(run_as),
    )
    if result.returncode != 0:
        raise ServerError(
            f"initdb failed with status {result.returncode}:\n{result.stdout}{result.stderr}"
        )
    port = free_port()

    def is_ready() -> bool:
        try:
            with psycopg.connect(
                host=HOST, port=port, user=_POSTGRES_SUPERUSER, dbname="postgres", connect_timeout=2
            ):
                return True
        except psycopg.OperationalError:  # refused, or "the database system is starting up"
            return False

    # fmt: off
    command = [
        str(bin_dir / "postgres"), "-D", str(data_dir), "-p", str(port),
        "-c", f"listen_addresses={HOST}", "-c", "unix_socket_directories=",
        # No fsync: commits still reach the OS before they return, so a killed server keeps
        # them (synchronous_commit=off would not); only a machine crash could lose data.
        "-c", "fsync=off", "-c", "full_page_writes=off",
    ]
    # fmt: on
    return RunningServer(
        name="postgres",
        url=postgres_database_url(port),
        port=port,
        folder=folder,
        data_dir=data_dir,
        command=command,
        is_ready=is_ready,
        stop_signal=signal.SIGINT,  # postgres: "fast" shutdown, as pg_ctl stop -m fast
        run_as=run_as,
        cwd=data_dir.parent,
        start_timeout=start_timeout,
    )


def _create_mmrag_role(port: int) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(
        host=HOST, port=port, user=_POSTGRES_SUPERUSER, dbname="postgres", autocommit=True
    ) as connection:
        connection.execute(
            sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                sql.Identifier(POSTGRES_USER), sql.Literal(POSTGRES_PASSWORD)
            )
        )
        connection.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(POSTGRES_DATABASE), sql.Identifier(POSTGRES_USER)
            )
        )


def _os_user(name: str) -> OsUser:
    try:
        entry = pwd.getpwnam(name)
    except KeyError as exc:
        raise ServerError(
            f"no OS user {name!r} to run PostgreSQL as (it refuses to run as root): "
            "install postgresql (scripts/setup.sh does), which creates it"
        ) from exc
    return OsUser(name=name, uid=entry.pw_uid, gid=entry.pw_gid, home=entry.pw_dir)


def _environment(user: OsUser | None) -> dict[str, str] | None:
    """The child's environment: ours, or ours with the identity of ``user``."""
    if user is None:
        return None
    return {**os.environ, "HOME": user.home, "USER": user.name, "LOGNAME": user.name}


def _version_key(bin_dir: Path) -> tuple[int, ...]:
    """``/usr/lib/postgresql/16/bin`` → (16,), so 16 sorts above 9.6."""
    return tuple(int(part) for part in re.findall(r"\d+", bin_dir.parent.name))
