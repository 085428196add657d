"""workspace: failed sign-ins, concern presence and two queue indexes

Revision ID: 0500
Revises: 0001
Create Date: 2026-11-27

Failed sign-ins and presence live in the registry rather than in a web process's memory, so rate
limits and collision warnings hold when several web processes serve the desk behind a load balancer.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import registry.types

revision = "0500"
down_revision = "0001"
branch_labels = ("workspace",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_failure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("ip", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("at", registry.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_login_failure_key", "login_failure", ["email", "ip", "at"])
    op.create_table(
        "concern_presence",
        sa.Column("concern_id", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("user_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("seen_at", registry.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("typing_at", registry.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("concern_id", "user_id"),
    )
    op.create_index("ix_concern_presence_seen_at", "concern_presence", ["seen_at"])
    op.create_index("ix_concern_status_due", "concern", ["status", "next_due_at"])
    op.create_index("ix_concern_queue_created", "concern", ["status", "level", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_concern_queue_created", table_name="concern")
    op.drop_index("ix_concern_status_due", table_name="concern")
    op.drop_index("ix_concern_presence_seen_at", table_name="concern_presence")
    op.drop_table("concern_presence")
    op.drop_index("ix_login_failure_key", table_name="login_failure")
    op.drop_table("login_failure")
