"""SOP workspace: publish notes and source YAML, drafts, retirements and the history of each SOP

Revision ID: 0650
Revises: 0640
Create Date: 2026-12-02

`sopversion` keeps the note its publisher wrote and the YAML exactly as written; `sop_draft` holds work
in progress owned by its author; `sop_retirement` lists SOPs that take no new concerns; `sop_event`
records every publish, retirement, reinstatement and draft shared for review, with who and why.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import registry.types

revision = "0650"
down_revision = "0640"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sopversion", sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False,
                                          server_default=""))
    op.add_column("sopversion", sa.Column("source_yaml", sa.Text(), nullable=True))
    op.create_table(
        "sop_draft",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sop_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("author_email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("author_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("base_version", sa.Integer(), nullable=True),
        sa.Column("source_yaml", sa.Text(), nullable=False),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("shared_note", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("published_version", sa.Integer(), nullable=True),
        sa.Column("created_at", registry.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", registry.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sop_draft_sop", "sop_draft", ["sop_id", "updated_at"], unique=False)
    op.create_table(
        "sop_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sop_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("draft_id", sa.Integer(), nullable=True),
        sa.Column("actor_email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("at", registry.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sop_event_sop", "sop_event", ["sop_id", "at"], unique=False)
    op.create_table(
        "sop_retirement",
        sa.Column("sop_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("retired_by", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("retired_at", registry.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sop_id"),
    )


def downgrade() -> None:
    op.drop_table("sop_retirement")
    op.drop_index("ix_sop_event_sop", table_name="sop_event")
    op.drop_table("sop_event")
    op.drop_index("ix_sop_draft_sop", table_name="sop_draft")
    op.drop_table("sop_draft")
    op.drop_column("sopversion", "source_yaml")
    op.drop_column("sopversion", "note")
