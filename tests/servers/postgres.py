"""PostgreSQL for the cluster tests (the shared state).

`PostgresServer` makes a private cluster with `initdb` in a temporary directory (as the
`postgres` system user: PostgreSQL refuses to run as root), starts `postgres` on a free
127.0.0.1 port with durability off (tests only), and hands out fresh databases:

    with postgres_server() as server:
        url = server.new_database()   # postgresql+psycopg://postgres@127.0.0.1:PORT/db_N
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from contextlib import AbstractContextManager
from pathlib import Path

from hirondelle.tests.servers.process import (
    HOST,
    Server,
    ServerUnavailable,
    free_port,
    poll,
    running,
)

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


class PostgresServer(Server):
    """A private PostgreSQL for one test session."""

    name = "PostgreSQL"
    start_timeout = 30

    def start(self) -> None:
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            raise ServerUnavailable("no postgres system user: apt-get install postgresql") from None
        self.root = Path(tempfile.mkdtemp(prefix="hirondelle-postgres-"))
        os.chown(self.root, account.pw_uid, account.pw_gid)
        data = self.root / "data"
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
            user=account.pw_uid,
            group=account.pw_gid,
        )
        self.port = free_port()
        log = open(self.root / "postgres.log", "wb")  # kept open while it runs
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
            user=account.pw_uid,
            group=account.pw_gid,
        )
        log.close()
        deadline = time.monotonic() + self._start_timeout
        poll(self._ready, deadline, "PostgreSQL did not start", self.root / "postgres.log")

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
            connection.execute(sql)

    def new_database(self) -> str:
        """A fresh, empty database; its SQLAlchemy URL."""
        name = f"hirondelle_{os.getpid()}_{next(_databases)}"
        self.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@{HOST}:{self.port}/{name}"

    def _stop_process(self) -> None:
        """SIGINT, not the SIGTERM of the other servers; no wait for the port to close."""
        process, self._process = self._process, None
        if process is not None:
            process.send_signal(2)  # SIGINT: PostgreSQL's fast shutdown
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def postgres_server() -> AbstractContextManager[PostgresServer]:
    return running(PostgresServer())
