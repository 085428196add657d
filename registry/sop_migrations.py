"""The record of each migration of running concerns between SOP versions, and each concern's part in it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, Session, SQLModel, col, select

from registry.models import Interaction
from registry.types import JSONType, UTCDateTime, utcnow

# planned: in the plan, not sent yet; waiting: accepted, moves at the concern's next safe point;
# moved / undone: the concern's timeline says so; refused: the workflow (or the plan) said no, with the reason.
ITEM_STATES = ("planned", "waiting", "moved", "refused", "undone")
OPEN_STATES = ("planned", "waiting")


class SopMigration(SQLModel, table=True):
    """One migration: which concerns of a SOP move from one version to another, how, by whom and why."""

    __tablename__ = "sop_migration"
    __table_args__ = (Index("ix_sop_migration_sop", "sop_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    sop_id: str = Field(max_length=100)
    from_version: int
    to_version: int
    filter: dict = Field(default_factory=dict, sa_type=JSONType)
    mapping: dict = Field(default_factory=dict, sa_type=JSONType)
    clocks: str = Field(default="keep", max_length=10)
    when_unsafe: str = Field(default="wait", max_length=10)
    reason: str = Field(default="", max_length=2000)
    by_email: str = Field(default="", max_length=320)
    by_id: int | None = None
    undo_of: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SopMigrationItem(SQLModel, table=True):
    """One concern in a migration: where it was, where it goes, its clocks before and after, and how it went."""

    __tablename__ = "sop_migration_item"
    __table_args__ = (UniqueConstraint("migration_id", "concern_id"), Index("ix_sop_migration_item_concern",
                                                                           "concern_id", "state"))

    id: int | None = Field(default=None, primary_key=True)
    migration_id: int = Field(foreign_key="sop_migration.id")
    concern_id: str = Field(max_length=20)
    from_step: str = Field(max_length=60)
    to_step: str | None = Field(default=None, max_length=60)
    state: str = Field(default="planned", max_length=10)
    reason: str = Field(default="", max_length=1000)
    clocks_before: list[dict] = Field(default_factory=list, sa_type=JSONType)
    clocks_after: list[dict] = Field(default_factory=list, sa_type=JSONType)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


def get_migration(*, session: Session, sop_id: str, migration_id: int) -> SopMigration | None:
    row = session.get(SopMigration, migration_id)
    return row if row is not None and row.sop_id == sop_id else None


def list_migrations(*, session: Session, sop_id: str) -> list[SopMigration]:
    """Every migration of a SOP, newest first."""
    return list(session.exec(select(SopMigration).where(SopMigration.sop_id == sop_id)
                             .order_by(col(SopMigration.id).desc())))


def items(*, session: Session, migration_id: int) -> list[SopMigrationItem]:
    return list(session.exec(select(SopMigrationItem).where(SopMigrationItem.migration_id == migration_id)
                             .order_by(SopMigrationItem.concern_id)))


def busy_concerns(*, session: Session, concern_ids: list[str]) -> dict[str, int]:
    """Of `concern_ids`, those another migration is still moving (planned or waiting): concern -> migration."""
    if not concern_ids:
        return {}
    rows = session.exec(select(SopMigrationItem.concern_id, SopMigrationItem.migration_id).where(
        col(SopMigrationItem.concern_id).in_(concern_ids), col(SopMigrationItem.state).in_(OPEN_STATES)))
    return {cid: mid for cid, mid in rows}


def set_state(*, session: Session, item: SopMigrationItem, state: str, reason: str = "") -> None:
    item.state, item.reason, item.updated_at = state, reason[:1000], utcnow()
    session.add(item)


def refresh(*, session: Session, migration: SopMigration) -> list[SopMigrationItem]:
    """The items, brought up to date from the concerns' timelines (the workflow writes there when it moves one)."""
    rows = items(session=session, migration_id=migration.id)
    pending = {r.concern_id: r for r in rows if r.state in ("waiting", "moved")}
    if not pending:
        return rows
    entries = session.exec(select(Interaction).where(
        col(Interaction.concern_id).in_(list(pending)),
        col(Interaction.kind).in_(("migrated", "migration_refused"))).order_by(Interaction.id))
    for entry in entries:
        meta = entry.meta or {}
        row = pending[entry.concern_id]
        if entry.kind == "migrated" and meta.get("migration_id") == migration.id and row.state == "waiting":
            set_state(session=session, item=row, state="moved")
            row.to_step = meta.get("to_step") or row.to_step
        elif entry.kind == "migration_refused" and meta.get("migration_id") == migration.id:
            set_state(session=session, item=row, state="refused", reason=meta.get("reason", ""))
        elif entry.kind == "migrated" and meta.get("undo_of") == migration.id and row.state == "moved":
            set_state(session=session, item=row, state="undone", reason=f"undone by migration {meta['migration_id']}")
    return rows


def progress(rows: list[SopMigrationItem]) -> dict[str, int]:
    """How many concerns are in each state."""
    counts = {state: 0 for state in ITEM_STATES}
    for row in rows:
        counts[row.state] = counts.get(row.state, 0) + 1
    return counts
