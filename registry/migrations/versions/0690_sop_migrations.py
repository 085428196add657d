"""SOP migrations: the record of moving running concerns between versions, and each concern's part in it

Revision ID: 0690
Revises: 0660
Create Date: 2026-12-09

`sop_migration` holds each migration (from and to version, filter, step mapping, clocks kept or restarted,
who and why); `sop_migration_item` each concern in it (steps, clocks before and after, planned, waiting,
moved, refused with the reason, or undone).
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import registry.types

revision = "0690"
down_revision = "0660"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sop_migration",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sop_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("from_version", sa.Integer(), nullable=False),
        sa.Column("to_version", sa.Integer(), nullable=False),
        sa.Column("filter", sa.JSON(), nullable=False),
        sa.Column("mapping", sa.JSON(), nullable=False),
        sa.Column("clocks", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("when_unsafe", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("by_email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("by_id", sa.Integer(), nullable=True),
        sa.Column("undo_of", sa.Integer(), nullable=True),
        sa.Column("created_at", registry.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sop_migration_sop", "sop_migration", ["sop_id", "created_at"], unique=False)
    op.create_table(
        "sop_migration_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("migration_id", sa.Integer(), nullable=False),
        sa.Column("concern_id", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("from_step", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column("to_step", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=True),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("clocks_before", sa.JSON(), nullable=False),
        sa.Column("clocks_after", sa.JSON(), nullable=False),
        sa.Column("updated_at", registry.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["migration_id"], ["sop_migration.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("migration_id", "concern_id"),
    )
    op.create_index("ix_sop_migration_item_concern", "sop_migration_item", ["concern_id", "state"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_sop_migration_item_concern", table_name="sop_migration_item")
    op.drop_table("sop_migration_item")
    op.drop_index("ix_sop_migration_sop", table_name="sop_migration")
    op.drop_table("sop_migration")
