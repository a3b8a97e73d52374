"""SQLAlchemy models of the resumable state. Never content, never a secret.

The schema is versioned by Alembic (`state/migrations/`): `state.migrate` brings an
older database up to date at start and refuses one written by a newer version.
`SCHEMA_VERSION` is also written to `schema_migrations`, the table versions before
Alembic read, so that they refuse a database they no longer understand.

Identifiers, paths and URLs are `Text`: SharePoint URLs and WebDAV paths run to
hundreds of characters, and PostgreSQL, unlike SQLite, enforces a declared length.
Times that decide who holds what (`expires_at`, `heartbeat_at`...) are seconds since
the epoch by the database's clock (`state.database.clock`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA_VERSION = 2

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


# A unit being enumerated again after its cursor expired (units also use PENDING, DONE
# and FAILED): until the listing's end it may not settle what it has not listed yet.
RESYNC = "resync"


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, datetime: DateTime(timezone=True)}


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
    owner: Mapped[str] = mapped_column(Text)
    container_id: Mapped[str] = mapped_column(Text)
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
    owner: Mapped[str] = mapped_column(Text)
    source_id: Mapped[str] = mapped_column(Text)
    version: Mapped[str] = mapped_column(Text, default="")
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)  # listed metadata, no body
    target_folder: Mapped[str | None] = mapped_column(Text)
    target_ref: Mapped[str | None] = mapped_column(Text)
    fingerprint: Mapped[str | None] = mapped_column(Text)
    size: Mapped[int | None] = mapped_column(BigInteger)
    checksum: Mapped[str | None] = mapped_column(Text)
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
    source_id: Mapped[str] = mapped_column(Text)  # a SharePoint web URL reaches ~900 chars
    target: Mapped[str] = mapped_column(Text)


class Claim(Base):
    """A container that several owners list, held by the one whose listing claimed it
    first: a Teams chat that every member sees is migrated under one member only. The
    unique row makes the claim atomic when two members' jobs list the chat at once; it
    moves to another member only when its holder can no longer carry it, by an update
    conditioned on the old holder (`claims.StoreClaims.move`)."""

    __tablename__ = "claims"
    __table_args__ = (UniqueConstraint("workload", "container_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workload: Mapped[str] = mapped_column(String(16))
    container_id: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(Text)  # the owner's UPN


# A run that ended with items or owners still failed (its own or earlier passes').
INCOMPLETE = "incomplete"

# Job statuses. A job is one owner of one workload within a run.
QUEUED, RUNNING, FINISHED, FATAL, ERROR, INTERRUPTED = (
    "queued",
    "running",
    "finished",  # its tally says what was copied, skipped or failed
    "fatal",  # a fatal error (authentication refused, quota...): the run stops
    "error",  # an unexpected exception (a bug): the run stops
    "interrupted",  # its run was interrupted before it ran
)
OPEN_JOBS = (QUEUED, RUNNING)


class StateIdentity(Base):
    """This state's own id (one row, made with the schema): tasks on a shared broker name
    it, so a worker of one state never runs another state's jobs."""

    __tablename__ = "state_identity"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)


class StateLock(Base):
    """The one run at a time over this state: held by a live process, renewed by it."""

    __tablename__ = "state_lock"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    run_id: Mapped[int | None] = mapped_column(Integer)
    command: Mapped[str] = mapped_column(String(32))
    holder: Mapped[str] = mapped_column(Text)
    host: Mapped[str] = mapped_column(Text)
    pid: Mapped[int] = mapped_column(Integer)
    pid_start: Mapped[int | None] = mapped_column(BigInteger)
    acquired_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)


class Job(Base):
    """One owner of one workload in one run: scheduled, leased, retried and reported."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_run_status", "run_id", "status"),
        Index("ix_jobs_lease_key", "lease_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    mode: Mapped[str] = mapped_column(String(16))  # run | sync | retry-failed
    workload: Mapped[str] = mapped_column(String(16))
    owner: Mapped[str] = mapped_column(Text)  # the owner's UPN (or team:, site: name)
    owner_id: Mapped[str] = mapped_column(Text, default="")
    display_name: Mapped[str] = mapped_column(Text, default="")
    target_login: Mapped[str] = mapped_column(Text, default="")
    lease_key: Mapped[str] = mapped_column(Text)  # owners that share a Graph budget share it
    position: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default=QUEUED)
    holder: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    dispatched_at: Mapped[float | None] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float)
    items_total: Mapped[int] = mapped_column(BigInteger, default=0)
    items_done: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_done: Mapped[int] = mapped_column(BigInteger, default=0)
    tally: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)


class Lease(Base):
    """Who moves an owner now. Held by one worker, renewed by its heartbeat, and free
    again once `expires_at` has passed (or, on the holder's own machine, once its
    process is gone)."""

    __tablename__ = "leases"

    key: Mapped[str] = mapped_column(Text, primary_key=True)
    budget: Mapped[str] = mapped_column(String(32))  # the Graph budget its owner draws on
    run_id: Mapped[int | None] = mapped_column(Integer)
    holder: Mapped[str] = mapped_column(Text)
    host: Mapped[str] = mapped_column(Text)
    pid: Mapped[int] = mapped_column(Integer)
    pid_start: Mapped[int | None] = mapped_column(BigInteger)
    acquired_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)


class WorkerRow(Base):
    """A process that runs owners: a local worker of `run --workers`, or a cluster node."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # local | cluster
    host: Mapped[str] = mapped_column(Text)
    pid: Mapped[int] = mapped_column(Integer)
    pid_start: Mapped[int | None] = mapped_column(BigInteger)
    capacity: Mapped[int] = mapped_column(Integer, default=1)  # owners at once
    busy: Mapped[int] = mapped_column(Integer, default=0)
    run_id: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[float] = mapped_column(Float)
    heartbeat_at: Mapped[float] = mapped_column(Float)
    stopped_at: Mapped[float | None] = mapped_column(Float)
