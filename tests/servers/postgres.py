"""Real servers for the cluster tests: PostgreSQL (the shared state) and Redis (the broker).

`PostgresServer` makes a private cluster with `initdb` in a temporary directory (as the
`postgres` system user: PostgreSQL refuses to run as root), starts `postgres` on a free
127.0.0.1 port with durability off (tests only), and hands out fresh databases:

    with postgres_server() as server:
        url = server.new_database()   # postgresql+psycopg://postgres@127.0.0.1:PORT/db_N

`RedisServer` runs `redis-server` without persistence on a free port; `restart()` stops
it and starts it again on the same port (what a broker restart loses, a run must not).
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hirondelle.tests.servers import HOST, ServerUnavailable, _poll, _port_open, free_port

_databases = itertools.count(1)


def _postgres_bin(name: str) -> str:
    found = shutil.which(name)
    if found and name == "initdb":
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if candidates:
        return candidates[0]
    if found:
        return found
    raise ServerUnavailable(f"{name} is not installed: apt-get install postgresql")


class PostgresServer:
    """A private PostgreSQL for one test session."""

    def __init__(self, start_timeout: float = 30.0) -> None:
        self.port = 0
        self.root = Path()
        self._process: subprocess.Popen[bytes] | None = None
        self._start_timeout = start_timeout

    def start(self) -> None:
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            raise ServerUnavailable("no postgres system user: apt-get install postgresql") from None
        self.root = Path(tempfile.mkdtemp(prefix="hirondelle-postgres-"))
        os.chown(self.root, account.pw_uid, account.pw_gid)
        data = self.root / "data"
        as_postgres = {"user": account.pw_uid, "group": account.pw_gid}
        subprocess.run(
            [
                _postgres_bin("initdb"),
                "-D",
                str(data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            **as_postgres,  # type: ignore[arg-type]
        )
        self.port = free_port()
        log = open(self.root / "postgres.log", "wb")  # noqa: SIM115 - kept open while it runs
        os.chown(self.root / "postgres.log", account.pw_uid, account.pw_gid)
        self._process = subprocess.Popen(
            [
                _postgres_bin("postgres"),
                "-D",
                str(data),
                "-h",
                HOST,
                "-p",
                str(self.port),
                "-k",
                str(self.root),
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            **as_postgres,  # type: ignore[arg-type]
        )
        log.close()
        deadline = time.monotonic() + self._start_timeout
        _poll(self._ready, deadline, "PostgreSQL did not start", self.root / "postgres.log")

    def _ready(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            raise ServerUnavailable(f"postgres exited with {self._process.returncode}")
        try:
            self.execute("SELECT 1")
        except Exception:  # noqa: BLE001 - not accepting connections yet
            return False
        return True

    def execute(self, sql: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(
            host=HOST,
            port=self.port,
            user="postgres",
            dbname=database,
            autocommit=True,
            connect_timeout=2,
        ) as connection:
            connection.execute(sql)  # type: ignore[arg-type]

    def new_database(self) -> str:
        """A fresh, empty database; its SQLAlchemy URL."""
        name = f"hirondelle_{os.getpid()}_{next(_databases)}"
        self.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@{HOST}:{self.port}/{name}"

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.send_signal(2)  # SIGINT: PostgreSQL's fast shutdown
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self.root != Path() and self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()


def _pong(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A `redis-server` without persistence, for one test session (or one test)."""

    def __init__(self, start_timeout: float = 15.0) -> None:
        self.port = 0
        self.root = Path()
        self._process: subprocess.Popen[bytes] | None = None
        self._start_timeout = start_timeout

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServerUnavailable("redis-server is not installed: apt-get install redis-server")
        if self.root == Path():
            self.root = Path(tempfile.mkdtemp(prefix="hirondelle-redis-"))
            self.port = free_port()
        self._process = subprocess.Popen(
            [
                binary,
                "--bind",
                HOST,
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.root),
                "--logfile",
                str(self.root / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + self._start_timeout
        _poll(lambda: _pong(self.port), deadline, "Redis did not start", self.root / "redis.log")

    def stop(self, remove: bool = True) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            deadline = time.monotonic() + 10
            _poll(lambda: not _port_open(self.port), deadline, "Redis port stays open")
        if remove and self.root != Path() and self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)

    def restart(self) -> None:
        """Stop and start again on the same port: everything queued is lost."""
        self.stop(remove=False)
        self.start()


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()


class RabbitMqServer:
    """A private RabbitMQ node (Debian's `rabbitmq-server`) on a free 127.0.0.1 port, run as
    the `rabbitmq` system user; the `guest` account works from loopback. Erlang's port mapper
    (`epmd`), which the node starts when none runs, is left running: other nodes share it."""

    def __init__(self, start_timeout: float = 90.0) -> None:
        self.port = 0
        self.root = Path()
        self._process: subprocess.Popen[bytes] | None = None
        self._start_timeout = start_timeout

    def url(self, user: str = "guest") -> str:
        return f"amqp://{user}@{HOST}:{self.port}//"

    def start(self) -> None:
        binary = "/usr/lib/rabbitmq/bin/rabbitmq-server"
        if not Path(binary).exists():
            raise ServerUnavailable(
                "rabbitmq-server is not installed: apt-get install rabbitmq-server"
            )
        account = pwd.getpwnam("rabbitmq")
        self.root = Path(tempfile.mkdtemp(prefix="hirondelle-rabbitmq-"))
        self.port = free_port()
        (self.root / "enabled_plugins").write_text("[].\n")
        (self.root / "rabbitmq.conf").write_text("loopback_users.guest = true\n")
        for path in (self.root, self.root / "enabled_plugins", self.root / "rabbitmq.conf"):
            os.chown(path, account.pw_uid, account.pw_gid)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.root),
            "RABBITMQ_NODENAME": f"hirondelle{self.port}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": HOST,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_MNESIA_BASE": str(self.root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.root / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.root / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.root / "rabbitmq"),
        }
        with open(self.root / "server.log", "wb") as log:
            self._process = subprocess.Popen(
                [binary],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                user=account.pw_uid,
                group=account.pw_gid,
                start_new_session=True,
            )
        deadline = time.monotonic() + self._start_timeout
        _poll(self._ready, deadline, "RabbitMQ did not start", self.root / "server.log")

    def _ready(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            raise ServerUnavailable(f"rabbitmq-server exited with {self._process.returncode}")
        return _port_open(self.port) and b"completed" in (self.root / "server.log").read_bytes()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            try:
                os.killpg(process.pid, 15)
                process.wait(timeout=60)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(process.pid, 9)
                process.wait()
            deadline = time.monotonic() + 30
            _poll(lambda: not _port_open(self.port), deadline, "RabbitMQ port stays open")
        if self.root != Path() and self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def rabbitmq_server() -> Iterator[RabbitMqServer]:
    server = RabbitMqServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()
