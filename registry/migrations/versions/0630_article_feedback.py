"""knowledge: how customers use the help centre, per article (views and "was this helpful?" answers)

Revision ID: 0630
Revises: 0620
Create Date: 2026-12-08

One row per article that customers have opened, with its view count and how many answered "yes" and "no" to
"was this helpful?"; popular articles in the portal and the counts on the staff article page come from it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import registry.types

revision = "0630"
down_revision = "0620"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "articlefeedback",
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("views", sa.Integer(), nullable=False),
        sa.Column("helpful", sa.Integer(), nullable=False),
        sa.Column("not_helpful", sa.Integer(), nullable=False),
        sa.Column("updated_at", registry.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["article.id"]),
        sa.PrimaryKeyConstraint("article_id"),
    )


def downgrade() -> None:
    op.drop_table("articlefeedback")
