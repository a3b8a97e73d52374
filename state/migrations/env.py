"""Alembic's environment for the state: run by `state.migrate` on a connection it hands over.

No `alembic.ini`: the connection and the script location come from the caller. Every
migration runs in one transaction, which first takes the database's migration lock
(an advisory lock on PostgreSQL, the write lock on SQLite), so that workers starting
together upgrade the schema once.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from hirondelle.state.schema import Base

MIGRATION_LOCK = 0x6869726F  # pg_advisory_xact_lock key: "hiro"

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    transactional_ddl=True,  # SQLite too: the driver leaves BEGIN to us (state.database)
)
with context.begin_transaction():
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
    context.run_migrations()
