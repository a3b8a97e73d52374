"""The state's schema brought to this version at start, by Alembic (`state/migrations/`).

A database of an earlier version gets the migrations it lacks; one written before
Alembic (only the `schema_migrations` table, version 1) is stamped with the first
revision, then upgraded; one written by a newer version of hirondelle is refused with
a clear message, whichever way it is versioned.

A state already at `HEAD` (every start but the first) is recognised with one query,
without importing Alembic: that import costs about 0.3 s of CPU in every process. A
database with no table at all (a first start) gets `HEAD`'s schema made from the models
and stamped, again without Alembic: replaying every migration cost about 0.25 s of CPU
before the first job could be queued. A test holds the two ways to the same tables,
columns, keys, indexes and rows, on SQLite and on PostgreSQL, and applies a later
migration on top of both.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    func,
    insert,
    inspect,
    select,
    text,
)

from ..migrator.errors import ConfigError
from .database import writer
from .schema import SCHEMA_VERSION, Base, SchemaMigration, StateIdentity

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

SCRIPTS = Path(__file__).parent / "migrations"
FIRST = "0001"  # the schema versions before Alembic created (schema_migrations 1)
MIGRATION_LOCK = 0x6869726F  # pg_advisory_xact_lock key ("hiro"), as in migrations/env.py
HEAD = "0003"  # the newest revision in migrations/versions (a test holds it to Alembic's)
VERSION_TABLE = "alembic_version"
# The columns the migrations declare with a length that they widen to Text on PostgreSQL
# only (0001, 0002): on SQLite a fresh state keeps the declared type the migrations
# leave, which batch migrations copy when they rebuild a table.
SQLITE_LENGTHS = {
    ("units", "owner"): 320,
    ("units", "container_id"): 512,
    ("items", "owner"): 320,
    ("items", "source_id"): 512,
    ("items", "version"): 512,
    ("items", "target_ref"): 512,
    ("items", "fingerprint"): 1024,
    ("items", "checksum"): 80,
    ("links", "source_id"): 512,
}


def alembic_config() -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(SCRIPTS))
    return config


def head() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def upgrade(engine: Engine) -> None:
    """Bring the state at `engine` to this version's schema, or refuse a newer one.

    The version is read, and the migrations run, in one transaction that first takes the
    database's migration lock: processes that start together upgrade the schema once.
    """
    if _at_head(engine) or _created(engine):
        return
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    config = alembic_config()
    scripts = ScriptDirectory.from_config(config)
    target = scripts.get_current_head()
    if _current(engine) == target:
        return
    known = {script.revision for script in scripts.walk_revisions()}
    with writer(engine).connect() as connection, connection.begin():
        if connection.dialect.name == "postgresql":
            connection.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
        current = MigrationContext.configure(connection).get_current_revision()
        if current == target:
            return
        if current is not None and current not in known:
            raise _newer(f"revision {current}")
        config.attributes["connection"] = connection
        if current is None and _legacy_version(connection) is not None:
            command.stamp(config, FIRST)
        command.upgrade(config, "head")


def _at_head(engine: Engine) -> bool:
    """Whether the state's one recorded revision is `HEAD`, read without Alembic."""
    with engine.connect() as connection:
        if not inspect(connection).has_table(VERSION_TABLE):
            return False
        return _versions(connection) == [HEAD]


def _created(engine: Engine) -> bool:
    """Give a database without any table `HEAD`'s schema and rows, as the migrations
    would, in one transaction under the migration lock; whether the state is now at
    `HEAD` (False where it held tables already and is not: Alembic takes it from there)."""
    with writer(engine).connect() as connection, connection.begin():
        if connection.dialect.name == "postgresql":
            connection.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
        tables = inspect(connection).get_table_names()
        if tables:  # made by a process that started with this one, or older: Alembic's
            return VERSION_TABLE in tables and _versions(connection) == [HEAD]
        _models(connection.dialect.name).create_all(connection)
        version = _version_table()
        version.create(connection)
        connection.execute(insert(version).values(version_num=HEAD))
        applied = datetime.now(UTC)
        connection.execute(
            insert(SchemaMigration),
            [{"version": v, "applied_at": applied} for v in range(1, SCHEMA_VERSION + 1)],
        )
        connection.execute(insert(StateIdentity).values(id=str(uuid.uuid4())))
    return True


def _models(dialect: str) -> MetaData:
    """The models' tables, with SQLite's declared lengths as the migrations leave them."""
    if dialect != "sqlite":
        return Base.metadata
    metadata = MetaData()
    for table in Base.metadata.sorted_tables:
        table.to_metadata(metadata)
    for (table_name, column), length in SQLITE_LENGTHS.items():
        metadata.tables[table_name].c[column].type = String(length)
    return metadata


def _version_table() -> Table:
    """Alembic's version table, as Alembic creates it (`DefaultImpl.version_table_impl`)."""
    return Table(
        VERSION_TABLE,
        MetaData(),
        Column("version_num", String(32), nullable=False),
        PrimaryKeyConstraint("version_num", name=f"{VERSION_TABLE}_pkc"),
    )


def _versions(connection: Connection) -> list[str]:
    return [row[0] for row in connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))]


def _current(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _legacy_version(connection: Connection) -> int | None:
    """The `schema_migrations` version of a state written before Alembic, if any."""
    if not inspect(connection).has_table(SchemaMigration.__tablename__):
        return None
    version = connection.scalar(select(func.max(SchemaMigration.version)))
    if version is not None and version > SCHEMA_VERSION:
        raise _newer(f"schema {version}")
    return None if version is None else int(version)


def _newer(what: str) -> ConfigError:
    return ConfigError(
        "state.url",
        f"the state database has {what}, newer than this version of hirondelle "
        f"understands ({head()}): upgrade hirondelle",
    )
