"""The state's schema brought to this version at start, by Alembic (`state/migrations/`).

A fresh database gets every migration; one written before Alembic (only the
`schema_migrations` table, version 1) is stamped with the first revision, then
upgraded; one written by a newer version of hirondelle is refused with a clear
message, whichever way it is versioned.

A state already at `HEAD` (every start but the first) is recognised with one query,
without importing Alembic: that import costs about 0.3 s of CPU in every process.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, func, inspect, select, text

from ..migrator.errors import ConfigError
from .database import writer
from .schema import SCHEMA_VERSION, SchemaMigration

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

SCRIPTS = Path(__file__).parent / "migrations"
FIRST = "0001"  # the schema versions before Alembic created (schema_migrations 1)
MIGRATION_LOCK = 0x6869726F  # pg_advisory_xact_lock key ("hiro"), as in migrations/env.py
HEAD = "0003"  # the newest revision in migrations/versions (a test holds it to Alembic's)
VERSION_TABLE = "alembic_version"


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
    if _at_head(engine):
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
        versions = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))
        return [row[0] for row in versions] == [HEAD]


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
