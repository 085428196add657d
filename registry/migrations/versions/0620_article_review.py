"""knowledge: second-person publishing, redaction notes and a history of staff changes to articles

Revision ID: 0620
Revises: 0610
Create Date: 2026-12-01

`article` gains who published it and what personal data was removed from a draft carried forward from a
resolution; `articleevent` records every staff change (created, revised, published, unpublished,
archived, reopened, restored) with who and when. Columns are added with plain ALTER TABLE, never a
SQLite batch copy, which would drop the full-text triggers of revision 0100.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import registry.types  # noqa: F401

revision = "0620"
down_revision = "0610"
branch_labels = None
depends_on = ("0100",)  # the article table of the knowledge branch


def upgrade() -> None:
    op.add_column("article", sa.Column("published_by", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True))
    op.add_column("article", sa.Column("redactions", sa.JSON(), nullable=True))
    op.create_table(
        "articleevent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("actor_email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("at", registry.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["article.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_articleevent_article_id"), "articleevent", ["article_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_articleevent_article_id"), table_name="articleevent")
    op.drop_table("articleevent")
    # Dropping columns on SQLite needs a table copy (which loses the FTS triggers); 3.35+ drops in place.
    op.drop_column("article", "redactions")
    op.drop_column("article", "published_by")
