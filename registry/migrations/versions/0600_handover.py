"""intake outbox: hand-overs to Temporal that intake stored with the concern or message

Revision ID: 0600
Revises: 0510
Create Date: 2026-12-01

A workflow start or a customer message is written as a pending hand-over in the same transaction as
the concern or message, and marked delivered once Temporal has it; a failed hand-over is finished by
a later try in any web, worker or SMTP process.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import registry.types

revision = "0600"
down_revision = "0510"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "handover",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("concern_id", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("interaction_id", sa.Integer(), nullable=True),
        sa.Column("created_at", registry.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
        sa.Column("last_tried_at", registry.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", registry.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.ForeignKeyConstraint(["concern_id"], ["concern.id"]),
        sa.ForeignKeyConstraint(["interaction_id"], ["interaction.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_handover_pending", "handover", ["delivered_at", "concern_id", "id"])
    # Concerns registered before this revision whose workflow never started get their start handed over.
    op.execute("INSERT INTO handover (concern_id, kind, created_at, attempts) "
               "SELECT id, 'start', created_at, 0 FROM concern WHERE status = 'new'")


def downgrade() -> None:
    op.drop_index("ix_handover_pending", table_name="handover")
    op.drop_table("handover")
