"""The first schema, as versions before Alembic created it (schema_migrations version 1).

Revision ID: 0001
Revises:
Create Date: 2026-11-01
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schema_migrations",
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("applied_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("command", sa.String(32), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
    )
    op.create_table(
        "units",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("workload", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(320), nullable=False),
        sa.Column("container_id", sa.String(512), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("target_folder", sa.Text(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("next_link", sa.Text(), nullable=True),
        sa.Column("delta_link", sa.Text(), nullable=True),
        sa.Column("source_count", sa.Integer(), nullable=False),
        sa.Column("source_bytes", sa.BigInteger(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("workload", "owner", "container_id"),
    )
    op.create_table(
        "items",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("unit_id", sa.Integer(), sa.ForeignKey("units.id"), nullable=False),
        sa.Column("workload", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(320), nullable=False),
        sa.Column("source_id", sa.String(512), nullable=False),
        sa.Column("version", sa.String(512), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.Column("target_folder", sa.Text(), nullable=True),
        sa.Column("target_ref", sa.String(512), nullable=True),
        sa.Column("fingerprint", sa.String(1024), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("checksum", sa.String(80), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("unit_id", "source_id"),
    )
    op.create_index("ix_items_owner_source", "items", ["workload", "owner", "source_id"])
    op.create_index("ix_items_unit_status", "items", ["unit_id", "status"])
    op.create_table(
        "links",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("workload", sa.String(16), nullable=False),
        sa.Column("source_id", sa.String(512), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.UniqueConstraint("workload", "source_id"),
    )
    versions = sa.table("schema_migrations", sa.column("version"), sa.column("applied_at"))
    op.bulk_insert(versions, [{"version": 1, "applied_at": datetime.now(UTC)}])


def downgrade() -> None:
    for table in ("links", "items", "units", "runs", "schema_migrations"):
        op.drop_table(table)
