"""audit: hash-chained clock events, the staff audit log and recorded verifications

Revision ID: 0660
Revises: 0650
Create Date: 2026-12-20

`clockevent` gains `prev_hash` and `row_hash` (one chain per concern, see registry/chain.py), and the clock events
already there are sealed here, in `seq` order per concern. `auditentry` is the staff audit log, one chain whose head
(`auditchain`, one row) its writers lock to take turns; `verification` keeps every recorded evaluation of the figures
against Temporal's history. Columns are added with plain ALTER TABLE (no SQLite batch copy).
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import registry.types

revision = "0660"
down_revision = "0650"
branch_labels = None
depends_on = None

GENESIS = "0" * 64


def upgrade() -> None:
    op.add_column("clockevent", sa.Column("prev_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
    op.add_column("clockevent", sa.Column("row_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
    op.create_table(
        "auditentry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", registry.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column("target", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("ip", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("user_agent", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("prev_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("row_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("seq"),
    )
    op.create_index("ix_auditentry_at", "auditentry", ["at"])
    op.create_index("ix_auditentry_actor", "auditentry", ["actor", "at"])
    op.create_index("ix_auditentry_action", "auditentry", ["action", "at"])
    head = op.create_table(
        "auditchain",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("last_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "last_hash": GENESIS}])
    op.create_table(
        "verification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", registry.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("range_from", registry.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("range_to", registry.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("concern_id", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("concerns", sa.Integer(), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("mismatches", sa.JSON(), nullable=False),
        sa.Column("anchors", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    from registry.audit import seal_all

    seal_all(op.get_bind())


def downgrade() -> None:
    op.drop_table("verification")
    op.drop_table("auditchain")
    op.drop_index("ix_auditentry_action", table_name="auditentry")
    op.drop_index("ix_auditentry_actor", table_name="auditentry")
    op.drop_index("ix_auditentry_at", table_name="auditentry")
    op.drop_table("auditentry")
    op.drop_column("clockevent", "row_hash")
    op.drop_column("clockevent", "prev_hash")
