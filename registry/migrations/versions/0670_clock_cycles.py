"""SLA report: one row per clock cycle, kept by the projection beside the clock events

Revision ID: 0670
Revises: 0690
Create Date: 2026-12-10

`clockcycle` holds each SLA clock from its start to its stop with the concern's facts the report groups
by, written in the same transaction as the clock events (see `registry/clock_cycles.py`). The report reads
it instead of replaying every clock event; it is filled here from the clock events already recorded.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import registry.types

revision = "0670"
down_revision = "0690"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ts = registry.types.UTCDateTime(timezone=True)
    s = sqlmodel.sql.sqltypes.AutoString
    op.create_table(
        "clockcycle",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("concern_id", s(length=20), nullable=False),
        sa.Column("clock", s(length=40), nullable=False),
        sa.Column("start_seq", sa.Integer(), nullable=False),
        sa.Column("end_seq", sa.Integer(), nullable=True),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("workflow_id", s(length=100), nullable=False),
        sa.Column("run_id", s(length=64), nullable=False),
        sa.Column("status", s(length=10), nullable=False),
        sa.Column("outcome", s(length=10), nullable=False),
        sa.Column("warned", sa.Boolean(), nullable=False),
        sa.Column("breached", sa.Boolean(), nullable=False),
        sa.Column("started_at", ts, nullable=False),
        sa.Column("warned_at", ts, nullable=True),
        sa.Column("breached_at", ts, nullable=True),
        sa.Column("stopped_at", ts, nullable=True),
        sa.Column("last_at", ts, nullable=False),
        sa.Column("due_at", ts, nullable=True),
        sa.Column("elapsed_seconds", sa.Integer(), nullable=False),
        sa.Column("target_seconds", sa.Integer(), nullable=False),
        sa.Column("used_permille", sa.Integer(), nullable=True),
        sa.Column("start_event_id", sa.Integer(), nullable=False),
        sa.Column("warn_event_id", sa.Integer(), nullable=True),
        sa.Column("breach_event_id", sa.Integer(), nullable=True),
        sa.Column("stop_event_id", sa.Integer(), nullable=True),
        sa.Column("policy", s(length=60), nullable=True),
        sa.Column("priority", s(length=10), nullable=True),
        sa.Column("sop_id", s(length=100), nullable=True),
        sa.Column("sop_version", sa.Integer(), nullable=True),
        sa.Column("channel", s(length=20), nullable=True),
        sa.Column("category", s(length=60), nullable=True),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("tier", s(length=20), nullable=True),
        sa.Column("level", sa.Integer(), nullable=True),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("agent_name", s(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("concern_id", "start_seq"),
    )
    op.create_index("ix_clockcycle_concern_clock", "clockcycle", ["concern_id", "clock", "start_seq"])
    op.create_index("ix_clockcycle_started", "clockcycle", ["started_at"])
    op.create_index("ix_clockcycle_stopped", "clockcycle", ["stopped_at"])
    from registry.clock_cycles import rebuild_cycles

    rebuild_cycles(op.get_bind())


def downgrade() -> None:
    op.drop_index("ix_clockcycle_stopped", table_name="clockcycle")
    op.drop_index("ix_clockcycle_started", table_name="clockcycle")
    op.drop_index("ix_clockcycle_concern_clock", table_name="clockcycle")
    op.drop_table("clockcycle")
