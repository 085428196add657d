"""access: one throttle for every credential form and token, and server-side sign-in sessions

Revision ID: 0610
Revises: 0600
Create Date: 2026-12-10

`throttle` replaces `login_failure`: a count per key that one statement checks and raises, so parallel
attempts cannot pass a limit together. `web_session` holds each signed-in browser, so signing out ends it
for every copy of its cookie and a session has an absolute lifetime.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import registry.types

revision = "0610"
down_revision = "0600"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "throttle",
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("started_at", registry.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_throttle_started_at", "throttle", ["started_at"])
    op.create_table(
        "web_session",
        sa.Column("id_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("created_at", registry.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("seen_at", registry.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id_hash"),
    )
    op.create_index("ix_web_session_created_at", "web_session", ["created_at"])
    op.create_index("ix_web_session_user", "web_session", ["user_id"])
    op.create_index("ix_web_session_customer", "web_session", ["customer_id"])
    op.drop_index("ix_login_failure_key", table_name="login_failure")
    op.drop_table("login_failure")


def downgrade() -> None:
    op.create_table(
        "login_failure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("ip", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("at", registry.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_login_failure_key", "login_failure", ["email", "ip", "at"])
    op.drop_index("ix_web_session_customer", table_name="web_session")
    op.drop_index("ix_web_session_user", table_name="web_session")
    op.drop_index("ix_web_session_created_at", table_name="web_session")
    op.drop_table("web_session")
    op.drop_index("ix_throttle_started_at", table_name="throttle")
    op.drop_table("throttle")
