"""Claims: a container several owners list (a Teams chat) is held by the first owner whose
listing claimed it, so it is migrated once.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04

A new table only: versions that do not know it never read it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "claims",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("workload", sa.String(16), nullable=False),
        sa.Column("container_id", sa.Text(), nullable=False),
        sa.Column("owner", sa.Text(), nullable=False),
        sa.UniqueConstraint("workload", "container_id"),
    )


def downgrade() -> None:
    op.drop_table("claims")
