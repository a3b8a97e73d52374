"""The state's schema under Alembic: fresh, legacy and newer databases, on SQLite and
PostgreSQL; processes that start together upgrade it once."""

from __future__ import annotations

import multiprocessing
import shutil
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from hirondelle.migrator.errors import ConfigError
from hirondelle.migrator.model import Container, Item
from hirondelle.state.database import open_engine, writer
from hirondelle.state.migrate import HEAD, alembic_config, head
from hirondelle.state.schema import Base
from hirondelle.state.store import open_store

INBOX = Container("mail", "alice@contoso.test", "F-IN", ("Inbox",), "inbox")


def test_a_fresh_state_matches_the_models(state_url: str) -> None:
    store = open_store(state_url)
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection)
        assert context.get_current_revision() == head()
        differences = compare_metadata(context, Base.metadata)
    if store.engine.dialect.name == "sqlite":  # SQLite keeps neither lengths nor time zones
        differences = [d for d in differences if not _type_change(d)]
    assert differences == []
    assert store.identity() and store.identity() == open_store(state_url).identity()
    store.engine.dispose()


def test_the_head_a_start_recognises_without_alembic_is_alembics() -> None:
    """A state at `HEAD` is not upgraded: a migration added without moving `HEAD` would
    never run on a state at the previous one."""
    assert head() == HEAD


def _type_change(difference: object) -> bool:
    changes = difference if isinstance(difference, list) else [difference]
    return all(isinstance(c, tuple) and c[0] == "modify_type" for c in changes)


def _legacy(url: str) -> None:
    """A state as versions before Alembic left it: the first schema, no alembic_version."""
    engine = open_engine(url)
    config = alembic_config()
    with writer(engine).connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.commit()
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE alembic_version"))
        connection.execute(
            text(
                "INSERT INTO units (workload, owner, container_id, path, status, source_count,"
                " source_bytes, updated_at) VALUES ('mail', 'alice@contoso.test', 'F-IN',"
                " 'Inbox', 'done', 3, 0, CURRENT_TIMESTAMP)"
            )
        )
    engine.dispose()


def test_a_state_from_before_alembic_is_upgraded_in_place(state_url: str) -> None:
    _legacy(state_url)
    store = open_store(state_url)
    assert store.unit_for(INBOX).status == "done"  # the old row, kept
    assert {"jobs", "leases", "state_lock", "workers"} <= set(
        inspect(store.engine).get_table_names()
    )
    ids = store.mark_started(store.unit_for(INBOX).id, INBOX, [(Item("m1", "v"), None)])
    assert set(ids) == {"m1"}
    store.engine.dispose()


def test_a_newer_state_is_refused(state_url: str) -> None:
    store = open_store(state_url)
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    store.engine.dispose()
    with pytest.raises(ConfigError, match="newer than this version"):
        open_store(state_url)


def test_a_newer_state_from_before_alembic_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/state.sqlite"
    _legacy(url)
    engine = open_engine(url)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO schema_migrations VALUES (99, CURRENT_TIMESTAMP)"))
    engine.dispose()
    with pytest.raises(ConfigError, match="newer than this version"):
        open_store(url)


def _open(url: str, barrier: Any, identities: Any) -> None:
    barrier.wait()  # every process opens the fresh state at the same moment
    store = open_store(url)
    identities.put(store.identity())
    store.engine.dispose()


def test_processes_that_start_together_upgrade_once(state_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    barrier, identities = context.Barrier(5), context.Queue()
    processes = [
        context.Process(target=_open, args=(state_url, barrier, identities)) for _ in range(5)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0
    assert len({identities.get(timeout=5) for _ in processes}) == 1  # one schema, made once


LATER_MIGRATION = """
import sqlalchemy as sa
from alembic import op

revision = "9001"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("later", sa.Text(), nullable=True))
        batch.alter_column("status", existing_type=sa.String(16), nullable=True)
    op.create_index("ix_units_later", "units", ["owner", "status"])
"""


@pytest.fixture
def other_url(state_url: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A second fresh database beside `state_url`, on the same server."""
    if state_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path}/other.sqlite"
    return str(request.getfixturevalue("postgres").new_database())


def _migrated(url: str, scripts: Path | None = None) -> None:
    """Every migration up to the newest of `scripts` (the state's own by default)."""
    engine = open_engine(url)
    config = alembic_config()
    if scripts is not None:
        config.set_main_option("script_location", str(scripts))
    with writer(engine).connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        connection.commit()
    engine.dispose()


def _described(url: str) -> dict[str, Any]:
    """Everything a schema holds that a start or a migration can tell apart: each table's
    columns (declared type, nullability, default), keys, foreign keys, indexes, unique
    and check constraints; and the rows that version it."""
    engine = open_engine(url)
    found = inspect(engine)
    tables: dict[str, Any] = {}
    for name in sorted(found.get_table_names()):
        tables[name] = {
            "columns": sorted(
                (c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                for c in found.get_columns(name)
            ),
            "primary key": found.get_pk_constraint(name),
            "foreign keys": sorted(map(repr, found.get_foreign_keys(name))),
            "indexes": sorted(map(repr, found.get_indexes(name))),
            "unique": sorted(map(repr, found.get_unique_constraints(name))),
            "checks": sorted(map(repr, found.get_check_constraints(name))),
        }
    with engine.connect() as connection:
        rows = {
            "revision": connection.scalars(text("SELECT version_num FROM alembic_version")).all(),
            "versions": connection.scalars(
                text("SELECT version FROM schema_migrations ORDER BY version")
            ).all(),
            "identities": connection.scalar(text("SELECT count(*) FROM state_identity")),
        }
    engine.dispose()
    return {"tables": tables, "rows": rows}


def test_a_fresh_state_is_made_as_the_migrations_make_it(
    state_url: str, other_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first start makes the schema from the models, without Alembic: it must be the one
    the migrations build, and take a later migration as that one does."""
    _migrated(other_url)
    with monkeypatch.context() as patch:  # the start must not reach Alembic at all
        patch.setattr("hirondelle.state.migrate.alembic_config", _no_alembic)
        open_store(state_url).engine.dispose()
    made, migrated = _described(state_url), _described(other_url)
    assert made == migrated
    assert migrated["rows"] == {"revision": [HEAD], "versions": [1, 2], "identities": 1}

    scripts = tmp_path / "later"
    shutil.copytree(alembic_config().get_main_option("script_location") or "", scripts)
    (scripts / "versions" / "9001_later.py").write_text(LATER_MIGRATION.format(head=HEAD))
    _migrated(state_url, scripts)
    _migrated(other_url, scripts)
    made, migrated = _described(state_url), _described(other_url)
    assert made == migrated
    assert ("later", "TEXT", True, "None") in made["tables"]["items"]["columns"]
    assert made["rows"]["revision"] == ["9001"]


def _no_alembic() -> None:
    raise AssertionError("a fresh state was migrated by Alembic")
