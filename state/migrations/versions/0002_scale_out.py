"""Several processes and machines over one state: jobs, leases, workers and the state lock;
identifiers, paths and URLs as Text; times with their time zone.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03

SQLite ignores declared lengths and keeps no time zone, so the column changes apply to
PostgreSQL only (there, a SharePoint URL of ~900 characters overflowed `String(512)`).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

WIDENED = {
    "units": ("owner", "container_id"),
    "items": ("owner", "source_id", "version", "target_ref", "fingerprint", "checksum"),
    "links": ("source_id",),
}
TIMES = {
    "schema_migrations": ("applied_at",),
    "runs": ("started_at", "finished_at"),
    "units": ("updated_at",),
    "items": ("updated_at",),
}


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, columns in WIDENED.items():
            for column in columns:
                op.alter_column(table, column, type_=sa.Text())
        for table, columns in TIMES.items():
            for column in columns:
                op.alter_column(
                    table,
                    column,
                    type_=sa.DateTime(timezone=True),
                    postgresql_using=f"{column} AT TIME ZONE 'UTC'",
                )
    op.create_table(
        "state_lock",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("command", sa.String(32), nullable=False),
        *_holder(),
        sa.Column("acquired_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("workload", sa.String(16), nullable=False),
        sa.Column("owner", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("target_login", sa.Text(), nullable=False),
        sa.Column("lease_key", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("holder", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("dispatched_at", sa.Float(), nullable=True),
        sa.Column("started_at", sa.Float(), nullable=True),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("items_total", sa.BigInteger(), nullable=False),
        sa.Column("items_done", sa.BigInteger(), nullable=False),
        sa.Column("bytes_done", sa.BigInteger(), nullable=False),
        sa.Column("tally", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
    )
    op.create_index("ix_jobs_run_status", "jobs", ["run_id", "status"])
    op.create_index("ix_jobs_lease_key", "jobs", ["lease_key"])
    op.create_table(
        "leases",
        sa.Column("key", sa.Text(), primary_key=True),
        sa.Column("budget", sa.String(32), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        *_holder(),
        sa.Column("acquired_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "workers",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("host", sa.Text(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("pid_start", sa.BigInteger(), nullable=True),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("busy", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("heartbeat_at", sa.Float(), nullable=False),
        sa.Column("stopped_at", sa.Float(), nullable=True),
    )
    # Who this state is: tasks name it, so a worker never runs another state's jobs.
    op.create_table("state_identity", sa.Column("id", sa.String(36), primary_key=True))
    identity = sa.table("state_identity", sa.column("id"))
    op.bulk_insert(identity, [{"id": str(uuid.uuid4())}])
    # Versions before Alembic read only this table: version 2 makes them refuse the state.
    versions = sa.table("schema_migrations", sa.column("version"), sa.column("applied_at"))
    op.bulk_insert(versions, [{"version": 2, "applied_at": datetime.now(UTC)}])


def _holder() -> list[sa.Column[object]]:
    """Who holds a lock or a lease: an id, and the host and process for liveness."""
    return [
        sa.Column("holder", sa.Text(), nullable=False),
        sa.Column("host", sa.Text(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("pid_start", sa.BigInteger(), nullable=True),
    ]


def downgrade() -> None:
    for table in ("state_identity", "workers", "leases", "jobs", "state_lock"):
        op.drop_table(table)
    op.execute(sa.text("DELETE FROM schema_migrations WHERE version = 2"))
