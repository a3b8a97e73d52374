"""Opening the state database: the engine, SQLite's settings for several processes, the
database's own clock, and the schema brought up to date by Alembic.

Several processes (the workers of `run --workers N`) and several machines (a cluster
over PostgreSQL) share one state. On SQLite that holds when every transaction that
writes takes the write lock when it begins (`BEGIN IMMEDIATE`): a transaction that
read first and wrote later could otherwise fail at once with "database is locked"
instead of waiting. Reads stay deferred, so they never wait for a writer (WAL mode).

Times that decide who holds what (leases, the state lock, heartbeats) are read from
the database's clock, as seconds since the epoch, so machines whose clocks drift
apart still agree on when a lease expires.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, func, literal_column, make_url, select
from sqlalchemy.engine import Connection
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.sql.elements import ColumnElement

from ..migrator.errors import ConfigError

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite

WRITE_OPTION = "hirondelle_write"  # execution option: this connection's transactions write


def open_engine(url: str) -> Engine:
    """An SQLAlchemy engine for the state at `url`, with the settings several processes need.

    A password in the URL is refused: it would sit in the configuration file.
    PostgreSQL reads it from `PGPASSWORD` or `~/.pgpass` instead (libpq's own rules).
    """
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if str(path) != ":memory:":
            private_file(path)
    try:
        engine = create_engine(url, future=True, pool_pre_ping=not url.startswith("sqlite"))
    except ModuleNotFoundError as exc:
        raise ConfigError(
            "state.url",
            f"{url.split(':', 1)[0]} needs the {exc.name} module: "
            "pip install 'hirondelle[postgresql]'",
        ) from None
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy raises several kinds for a bad URL
        raise ConfigError("state.url", f"cannot use {url!r}: {exc}") from None
    if engine.url.password or any("password" in key.lower() for key in engine.url.query):
        raise ConfigError(
            "state.url",
            "holds a password: secrets are not accepted in the file; "
            "PostgreSQL reads it from PGPASSWORD or ~/.pgpass",
        )
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def driver_modules(url: str) -> list[str]:
    """The modules an engine for `url` imports, its SQLAlchemy dialect and its driver, for
    a fork server to import once for every worker it forks (`migrator.zygote`); none when
    `url` is not one SQLAlchemy can use: opening the state says why."""
    try:
        dialect = make_url(url).get_dialect()
        return [dialect.__module__, dialect.import_dbapi().__name__]
    except Exception:  # noqa: BLE001 - open_engine reports a bad URL or a missing driver
        return []


def private_file(path: Path) -> None:
    """Create `path` readable by this user only (its folder too, when created here): the
    state names every mailbox and file. SQLite gives its -wal and -shm files the same
    mode as the database."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return
    except OSError as exc:
        raise ConfigError("state.url", f"cannot create {path}: {exc.strerror}") from None


def upsert_insert(engine: Engine) -> Callable[[Any], postgresql.Insert | sqlite.Insert]:
    """The `insert` of `engine`'s dialect, the one with `on_conflict_do_*`. Only that dialect
    is imported: the engine has loaded SQLite's already, and PostgreSQL's costs a SQLite
    state about 50 ms of CPU in every process."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert
    from sqlalchemy.dialects import sqlite

    return sqlite.insert


def writer(engine: Engine) -> Engine:
    """The same engine, for transactions that write (`BEGIN IMMEDIATE` on SQLite)."""
    return engine.execution_options(**{WRITE_OPTION: True})


def _sqlite_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    # SQLAlchemy's recipe: the driver emits no BEGIN of its own, `_sqlite_begin` does.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # The wait first: switching a new file to WAL takes its lock, which processes that
    # open one state together contend for (https://sqlite.org/pragma.html#pragma_busy_timeout).
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    writes = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


def clock(dialect: str) -> ColumnElement[Any]:
    """The database's current time in seconds since the epoch, as an SQL expression."""
    if dialect == "postgresql":
        return func.extract("epoch", func.clock_timestamp())
    if dialect == "sqlite":
        return literal_column("((julianday('now') - 2440587.5) * 86400.0)")
    return func.extract("epoch", func.current_timestamp())


def database_now(engine: Engine) -> float:
    """The database's clock, read once."""
    with engine.connect() as connection:
        return float(connection.scalar(select(clock(engine.dialect.name))) or 0.0)
