"""workspace: a session epoch per member of staff and per customer

Revision ID: 0510
Revises: 0500
Create Date: 2026-11-27

A sign-in records the user's or customer's epoch in the session cookie; a new password (or, for staff, a
deactivation) moves the epoch on, which ends every session signed in before it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0510"
down_revision = "0500"
branch_labels = None
depends_on = None


TABLES = ("user", "customer")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("session_epoch", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("session_epoch")
