"""SQLAlchemy models of the resumable state. Never content, never a secret.

The schema is versioned from day one: `SCHEMA_VERSION` is stored in
`schema_migrations`, and `state.store.open_store` refuses a database written by a
newer version and upgrades an older one step by step.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA_VERSION = 1

# Item statuses. `vanished`: the source reported it removed; what happens on the
# target is settled at the end of the owner's pass (it may have moved elsewhere).
PENDING, STARTED, DONE, FAILED, SKIPPED, VANISHED, DELETED = (
    "pending",
    "started",
    "done",
    "failed",
    "skipped",
    "vanished",
    "deleted",
)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON}


class SchemaMigration(Base):
    __tablename__ = "schema_migrations"

    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    applied_at: Mapped[datetime] = mapped_column(default=utcnow)


class Run(Base):
    """Who ran what, when, with which options (no secrets), and the summary."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    command: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="running")


class Unit(Base):
    """One container of one owner for one workload, with its delta cursor."""

    __tablename__ = "units"
    __table_args__ = (UniqueConstraint("workload", "owner", "container_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workload: Mapped[str] = mapped_column(String(16))
    owner: Mapped[str] = mapped_column(String(320))
    container_id: Mapped[str] = mapped_column(String(512))
    path: Mapped[str] = mapped_column(Text, default="")
    target_folder: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    next_link: Mapped[str | None] = mapped_column(Text)  # progress marker only
    delta_link: Mapped[str | None] = mapped_column(Text)  # bookmark of a finished enumeration
    source_count: Mapped[int] = mapped_column(Integer, default=0)
    source_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ItemRow(Base):
    """One source item and what the target holds for it."""

    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("unit_id", "source_id"),
        Index("ix_items_owner_source", "workload", "owner", "source_id"),
        Index("ix_items_unit_status", "unit_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    workload: Mapped[str] = mapped_column(String(16))
    owner: Mapped[str] = mapped_column(String(320))
    source_id: Mapped[str] = mapped_column(String(512))
    version: Mapped[str] = mapped_column(String(512), default="")
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)  # listed metadata, no body
    target_folder: Mapped[str | None] = mapped_column(Text)
    target_ref: Mapped[str | None] = mapped_column(String(512))
    fingerprint: Mapped[str | None] = mapped_column(String(1024))
    size: Mapped[int | None] = mapped_column(BigInteger)
    checksum: Mapped[str | None] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Link(Base):
    """Cross-workload id map (a drive item -> its migrated URL), for reference rewriting."""

    __tablename__ = "links"
    __table_args__ = (UniqueConstraint("workload", "source_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workload: Mapped[str] = mapped_column(String(16))
    source_id: Mapped[str] = mapped_column(String(512))
    target: Mapped[str] = mapped_column(Text)
